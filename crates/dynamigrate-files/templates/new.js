// {description}
// A script migration: `transform` runs on each item in a sandbox (no modules, network, file
// system, environment or clock). Run `dynamigrate run --dry-run` to see sample diffs first.

export const description = "{description}";

// Optional, expand -> backfill -> contract: an upgrade step (`transform` brings items from the version
// before to this one; the chain sets the version; `dynamigrate new --helper` writes the module your
// application applies the same steps with), or a phase, and for a contract step what must hold first.
// export const upgrade_to = 2;
// export const phase = "contract";
// export const requires = { version_at_least: 2 };

// Optional: which items (server-side filters), and backfill knobs (the stage and command line win).
export const select = {
  // pk_prefix: "ITEM#",
  // version_below: 2,
};
export const settings = {
  // page_size: 1000,
};

// `item` is a plain object as the AWS SDK's DocumentClient shows it: strings, numbers, booleans,
// null, arrays, objects, Sets and Uint8Arrays. A number a double cannot hold exactly arrives as a
// NumberValue ({ value: "..." }) and goes back unchanged unless you replace it.
// Return null to leave the item as it is, a patch ({ attr: value }, undefined removes it), or the
// whole new item (an object holding the item's key).
export function transform(item, context) {
  // Example: if (item.version >= 2) return null;
  //          return { ...item, metadata: { tags: [], category: "general" }, version: 2 };
  return null;
}

// Optional: export function down(item, context) { ... } to roll back.
