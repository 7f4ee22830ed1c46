// normalizeItem: brings an item read from DynamoDB up to the current schema version with the same
// upgrade steps dynamigrate's backfill runs (the migration files that export `upgrade_to`), so the
// application reads every item in one shape while old items wait for the backfill, or forever.
// Written by `dynamigrate new --helper`; plain JavaScript, no dependencies, yours to keep.
//
//   import * as v2 from "./migrations/20250201-add-status.js";
//   import * as v3 from "./migrations/20250301-rename-name.js";
//   import { normalizeItem } from "./migrations/normalize-item.js";
//   const item = normalizeItem(await read(key), [v2, v3], { key: ["pk", "sk"] });
//
// A step's answer means what it means to the backfill: null leaves the item as it is, an object
// holding the whole key is the new item, anything else is a patch (an attribute set to undefined
// is removed). Pass `attribute` and `unversioned` when the table's [versions] config does.

export function normalizeItem(item, steps, { key, attribute = "version", unversioned = 1 }) {
  let current = { ...item };
  let version = current[attribute] === undefined ? unversioned : Number(current[attribute]);
  for (const step of [...steps].sort((a, b) => a.upgrade_to - b.upgrade_to)) {
    if (step.upgrade_to <= version) continue;
    if (step.upgrade_to !== version + 1) throw new Error(`no upgrade step from v${version} to v${version + 1}`);
    const context = { migration: "normalizeItem", table: "", startedAt: new Date().toISOString(), dryRun: true };
    const answer = step.transform({ ...current }, context);
    if (answer === undefined) throw new Error(`the step to v${step.upgrade_to} returned undefined`);
    if (answer !== null) {
      const whole = key.every((name) => answer[name] !== undefined);
      current = whole ? { ...answer } : { ...current, ...answer };
      for (const name of Object.keys(current)) if (current[name] === undefined) delete current[name];
    }
    version = step.upgrade_to;
    current[attribute] = version;
  }
  return current;
}
