// What a JavaScript application does with dynamigrate's shipped helper: reads items (DynamoDB JSON,
// one per line, on stdin) with the AWS SDK's unmarshall (numbers wrapped, so none loses a digit),
// brings each to the latest version with normalizeItem and the same step files the backfill ran,
// and prints them marshalled back, one per line. Used by tests-integration/tests/versions.rs.
//
//   node normalize.mjs HELPER.js KEY1,KEY2 STEP.js...
import { marshall, unmarshall } from "@aws-sdk/util-dynamodb";
import { createInterface } from "node:readline";
import { pathToFileURL } from "node:url";

const [helper, keys, ...stepFiles] = process.argv.slice(2);
const { normalizeItem } = await import(pathToFileURL(helper).href);
const steps = await Promise.all(stepFiles.map((file) => import(pathToFileURL(file).href)));

// DynamoDB JSON writes binary as base64 text; the SDK's values hold bytes.
const bytes = (text) => Uint8Array.from(Buffer.from(text, "base64"));
const base64 = (data) => Buffer.from(data).toString("base64");
const mapValues = (object, f) => Object.fromEntries(Object.entries(object).map(([k, v]) => [k, f(v)]));
function fromJson(value) {
  if (value.B !== undefined) return { B: bytes(value.B) };
  if (value.BS !== undefined) return { BS: value.BS.map(bytes) };
  if (value.M !== undefined) return { M: mapValues(value.M, fromJson) };
  if (value.L !== undefined) return { L: value.L.map(fromJson) };
  return value;
}
function toJson(value) {
  if (value.B !== undefined) return { B: base64(value.B) };
  if (value.BS !== undefined) return { BS: value.BS.map(base64) };
  if (value.M !== undefined) return { M: mapValues(value.M, toJson) };
  if (value.L !== undefined) return { L: value.L.map(toJson) };
  return value;
}

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const item = unmarshall(mapValues(JSON.parse(line), fromJson), { wrapNumbers: true });
  const current = normalizeItem(item, steps, { key: keys.split(",") });
  console.log(JSON.stringify(mapValues(marshall(current, { removeUndefinedValues: true }), toJson)));
}
