// The seed scenario as a migration file: give every ITEM#n / METADATA item a structured
// metadata { tags, category } and mark it version 2. `down` takes both away again.
// Runs in dynamigrate's sandbox: no Node, no compile; types are stripped, not checked.

export const description = "Add metadata { tags, category } to every item and mark it version 2";

export const select = { sk_prefix: "METADATA", version_below: 2 };

interface Item {
  pk: string;
  sk: string;
  version?: number;
  metadata?: { tags: string[]; category: string };
  [attribute: string]: unknown;
}

const CATEGORIES = ["electronics", "books", "garden", "toys"];

// Tags and a category from the item's number, so the demo shows varied, repeatable data.
function metadataFor(item: Item) {
  const n = Number(item.pk.replace("ITEM#", "")) || 0;
  const tags: string[] = [];
  if (n % 3 === 0) tags.push("important");
  if (n % 5 === 0) tags.push("archived");
  return { tags, category: CATEGORIES[n % CATEGORIES.length] };
}

export function transform(item: Item): Item | null {
  if ((item.version ?? 1) >= 2) return null;
  return { ...item, metadata: metadataFor(item), version: 2 };
}

export function down(item: Item): Partial<Item> | null {
  if (item.version !== 2) return null;
  return { metadata: undefined, version: undefined };
}
