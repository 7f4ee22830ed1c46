//! Migration files run by the bare `dynamigrate` binary on DynamoDB Local: TOML operations and
//! JavaScript/TypeScript transforms, exact values, failures confined to their items, checksums,
//! discovery errors, `new`, dry runs, and a binary mixing Rust and file migrations.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue as AV;
use dynamigrate_tests::files::Folder;
use dynamigrate_tests::{
    canonical_item, every_type, get_item, put_items, s, scan_all, seed_items, snapshot, table_exists, World,
};
use serde_json::Value;

const BIG: &str = "12345678901234567890123456789012345678";

const SEED_TS: &str = r#"
export const description = "Add metadata and version 2";
export const select = { sk_prefix: "METADATA", version_below: 2 };
interface Item { pk: string; version?: number; [k: string]: unknown }
export function transform(item: Item): Item | null {
  const n = Number(item.pk.replace("ITEM#", ""));
  return { ...item, metadata: { tags: n % 3 === 0 ? ["important"] : [], category: "general" }, version: 2 };
}
export function down(item: Item) { return { metadata: undefined, version: undefined }; }
"#;

const STATUS_TOML: &str = r#"
description = "Add status and rename description to summary"
up = [
  { add = "status", value = "active" },
  { rename = "description", to = "summary" },
]
[select]
sk_prefix = "METADATA"
"#;

fn json(ran: &dynamigrate_tests::Ran) -> Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran:?}"))
}

#[tokio::test]
async fn a_typescript_and_a_toml_migration_run_from_the_folder_and_roll_back() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(60)).await;
    let before = snapshot(&world.client, &world.table).await;
    let folder = Folder::new();
    folder.write("20250125-add-metadata.ts", SEED_TS).write("20250201-add-status.toml", STATUS_TOML);

    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let item = get_item(&world.client, &world.table, "ITEM#3", "METADATA").await.unwrap();
    assert_eq!(item["version"], AV::N("2".into()));
    assert_eq!(s(&item, "status").as_deref(), Some("active"));
    assert_eq!(s(&item, "summary").as_deref(), Some("Simple description of item 3"));
    assert!(!item.contains_key("description"));
    let AV::M(metadata) = &item["metadata"] else { panic!("metadata is a map: {item:?}") };
    assert_eq!(metadata["tags"], AV::L(vec![AV::S("important".into())]));

    let status = json(&world.files(&folder.dir, &["status", "--json"]).await);
    for entry in status["entries"].as_array().unwrap() {
        assert_eq!(entry["state"], "applied", "{entry}");
        assert_eq!(entry["last_attempt"]["checksum"].as_str().map(str::len), Some(64), "{entry}");
    }

    // Both downs: the TOML one derived, the script's written out; the table is as it was.
    let ran = world.files(&folder.dir, &["down", "--steps", "2"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    dynamigrate_tests::assert_same(&snapshot(&world.client, &world.table).await, &before, "after both downs");
}

#[tokio::test]
async fn every_attribute_type_round_trips_exactly_through_js_and_ts() {
    let world = World::new().await;
    put_items(&world.client, &world.table, (1..=20).map(every_type).collect()).await;
    // DynamoDB Local writes numbers back in its own form (-1.5E-100 as -0.000...15): compare with
    // what it returned before the run, which is what the scripts were given.
    let mut before = HashMap::new();
    for n in 1..=20 {
        before.insert(n, get_item(&world.client, &world.table, &format!("ITEM#{n}"), "METADATA").await.unwrap());
    }
    let folder = Folder::new();
    // The JS one spreads the item back; the TS one rebuilds every value (new Sets, arrays, maps).
    folder.write(
        "20250101-touch-js.js",
        "export const description = 'touch'; export function transform(item) { return { ...item, js: true }; }",
    );
    folder.write(
        "20250102-touch-ts.ts",
        r#"export const description: string = "rebuild";
        export function transform(i: any): any {
          const copy = (v: any): any => v instanceof Set ? new Set([...v].map(copy))
            : v instanceof Uint8Array ? new Uint8Array(v)
            : Array.isArray(v) ? v.map(copy)
            : v && typeof v === "object" && !(v instanceof NumberValue) ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, copy(x)]))
            : v;
          return { ...copy(i), ts: i.big instanceof NumberValue && i.big.value === "12345678901234567890123456789012345678" };
        }"#,
    );
    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    for n in 1..=20 {
        let mut item = get_item(&world.client, &world.table, &format!("ITEM#{n}"), "METADATA").await.unwrap();
        assert_eq!(item.remove("js"), Some(AV::Bool(true)));
        assert_eq!(item.remove("ts"), Some(AV::Bool(true)), "the script saw the big number as a NumberValue");
        assert_eq!(canonical_item(&item), canonical_item(&before[&n]), "ITEM#{n}");
        assert_eq!(item["big"], AV::N(BIG.into()));
    }
}

#[tokio::test]
async fn a_misbehaving_script_fails_only_its_items() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(40)).await;
    let folder = Folder::new();
    folder.write(
        "20250101-misbehave.js",
        r#"export const description = "misbehave on some items";
        export function transform(item) {
          const n = Number(item.pk.replace("ITEM#", ""));
          if (n === 3) throw new Error("no item 3 please");
          if (n === 5) for (;;) {}
          if (n === 7) { const a = []; for (;;) a.push(new Array(1 << 20).fill(n)); }
          if (n === 9) return require("fs");
          if (n === 11) return { e: process.env.HOME };
          if (n === 13) return fetch("http://example.com");
          if (n === 15) return import("fs");
          return { touched: true };
        }"#,
    );
    let failures = std::env::temp_dir().join(dynamigrate_tests::unique_name("failures"));
    let failures_arg = failures.to_str().unwrap();
    let ran = world.files(&folder.dir, &["run", "--failures-file", failures_arg]).await;
    assert_eq!(ran.code, 1, "a migration with failed items fails: {ran:?}");
    let items = scan_all(&world.client, &world.table).await;
    let touched = items.iter().filter(|i| i.contains_key("touched")).count();
    assert_eq!(touched, 33, "every other item was written");
    let lines = std::fs::read_to_string(&failures).unwrap();
    let _ = std::fs::remove_file(&failures);
    for expected in [
        "no item 3 please",
        "longer than its limit",
        "memory limit",
        "require is not available",
        "process is not available",
        "fetch is not available",
        "Promise",
    ] {
        assert!(lines.contains(expected), "failures file lacks {expected:?}:\n{lines}");
    }
    assert_eq!(lines.lines().count(), 7, "{lines}");
}

#[tokio::test]
async fn every_toml_operation_and_typed_literal_lands_and_the_derived_down_restores() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(10)).await;
    let before = snapshot(&world.client, &world.table).await;
    let folder = Folder::new();
    folder.write(
        "20250101-typed.toml",
        &format!(
            r#"description = "every literal"
up = [
  {{ add = "big", value = {{ N = "{BIG}" }} }},
  {{ add = "tags", value = {{ SS = ["a", "b"] }} }},
  {{ add = "scores", value = {{ NS = ["1", "{BIG}"] }} }},
  {{ add = "raw", value = {{ B = "AAH/" }} }},
  {{ add = "blobs", value = {{ BS = ["AQ==", "Ag=="] }} }},
  {{ add = "none", value = {{ NULL = true }} }},
  {{ add = "meta", value = {{ tags = [], nested = {{ M = {{ S = {{ N = "2" }} }} }}, on = true }} }},
  {{ copy = "name", to = "title" }},
  {{ rename = "description", to = "summary" }},
]
"#
        ),
    );
    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let item = get_item(&world.client, &world.table, "ITEM#1", "METADATA").await.unwrap();
    assert_eq!(item["big"], AV::N(BIG.into()));
    assert!(matches!(&item["tags"], AV::Ss(v) if v.len() == 2));
    assert!(matches!(&item["scores"], AV::Ns(v) if v.contains(&BIG.to_string())));
    assert_eq!(item["raw"], AV::B(Blob::new(vec![0, 1, 255])));
    assert!(matches!(&item["blobs"], AV::Bs(v) if v.len() == 2));
    assert_eq!(item["none"], AV::Null(true));
    let AV::M(meta) = &item["meta"] else { panic!("{item:?}") };
    assert_eq!(meta["nested"], AV::M(HashMap::from([("S".into(), AV::N("2".into()))])));
    assert_eq!(s(&item, "title"), s(&item, "name"));
    assert!(item.contains_key("summary") && !item.contains_key("description"));

    let ran = world.files(&folder.dir, &["down"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    dynamigrate_tests::assert_same(&snapshot(&world.client, &world.table).await, &before, "after the derived down");
}

#[tokio::test]
async fn a_changed_file_is_modified_and_stops_run_unless_allowed() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(5)).await;
    let folder = Folder::new();
    folder.write("20250201-add-status.toml", STATUS_TOML);
    assert_eq!(world.files(&folder.dir, &["run"]).await.code, 0);

    folder.write("20250201-add-status.toml", &STATUS_TOML.replace("active", "enabled"));
    folder.write("20250301-later.toml", "description = \"later\"\nup = [{ add = \"later\", value = 1 }]\n");
    let status = world.files(&folder.dir, &["status"]).await;
    assert!(status.stdout.contains("modified"), "{status:?}");
    assert_eq!(world.files(&folder.dir, &["status", "--check"]).await.code, 4);

    let refused = world.files(&folder.dir, &["run"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.stderr.contains("20250201_add_status") && refused.stderr.contains("--allow-modified"),
        "{refused:?}"
    );
    let item = get_item(&world.client, &world.table, "ITEM#1", "METADATA").await.unwrap();
    assert!(!item.contains_key("later"), "nothing ran");

    let allowed = world.files(&folder.dir, &["run", "--allow-modified"]).await;
    assert_eq!(allowed.code, 0, "{allowed:?}");
    let status = json(&world.files(&folder.dir, &["status", "--json"]).await);
    let later = &status["entries"][1];
    assert_eq!(later["last_attempt"]["allowed_modified"], serde_json::json!(["20250201_add_status"]), "{later}");
    assert_eq!(status["entries"][0]["state"], "modified");
}

#[tokio::test]
async fn a_folder_with_problems_lists_them_all_and_writes_nothing() {
    let world = World::new().await;
    let folder = Folder::new();
    folder
        .write("README.md", "not a migration, left alone")
        .write("helpers.ts", "export const x = 1;")
        .write("20251301-bad-month.ts", SEED_TS)
        .write("20250101-x.py", "")
        .write("20250102-same.toml", STATUS_TOML)
        .write("20250102-same.ts", SEED_TS)
        .write("20250103-broken.toml", "description = \"d\"\nup = [{ set = \"a\" }]")
        .write("20250104-imports.ts", "import fs from 'fs';\nexport const description = 'd';\nexport function transform() { return fs.readFileSync('x'); }")
        .write("20250105-wrong-id.toml", "id = \"20250105_other\"\ndescription = \"d\"\nup = [{ remove = \"a\" }]")
        .write("20250106-no-down-file.js", "export const description = 'd';");
    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    for expected in [
        "7 problems",
        "20251301-bad-month.ts: invalid migration id",
        "20250101-x.py: unknown extension .py",
        "20250102-same.ts: 20250102-same.toml has the same id",
        "20250103-broken.toml: up[0]: `set` needs a `value`",
        "20250104-imports.ts: line 1: import is not available",
        "20250105-wrong-id.toml: its id \"20250105_other\" does not match",
        "20250106-no-down-file.js: it exports no `transform`",
    ] {
        assert!(ran.stderr.contains(expected), "missing {expected:?} in:\n{}", ran.stderr);
    }
    assert!(!table_exists(&world.client, &world.history).await, "nothing was written, not even the history table");
    let named_missing = world.files(&folder.dir.join("nope"), &["status"]).await;
    assert_eq!(named_missing.code, 2);
    assert!(named_missing.stderr.contains("does not exist"), "{named_missing:?}");
}

#[tokio::test]
async fn new_writes_dated_templates_that_run_as_written() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(5)).await;
    let folder = Folder::new();
    let mut paths = Vec::new();
    for (description, flag) in [("add metadata field", "--toml"), ("js example", "--js"), ("ts example", "--ts")] {
        let ran = world.files(&folder.dir, &["new", description, flag]).await;
        assert_eq!(ran.code, 0, "{ran:?}");
        let path = ran.stdout.trim().to_string();
        assert!(std::path::Path::new(&path).exists(), "{path}");
        paths.push(path);
    }
    assert!(paths[0].ends_with("-add-metadata-field.toml"), "{paths:?}");
    let again = world.files(&folder.dir, &["new", "js example", "--ts"]).await;
    assert_eq!(again.code, 2, "one id, one file: {again:?}");
    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 0, "the templates run as written: {ran:?}");
}

#[tokio::test]
async fn dry_runs_of_both_forms_show_diffs_and_write_nothing() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(10)).await;
    let before = snapshot(&world.client, &world.table).await;
    let folder = Folder::new();
    folder.write("20250125-add-metadata.ts", SEED_TS).write("20250201-add-status.toml", STATUS_TOML);
    let ran = world.files(&folder.dir, &["run", "--dry-run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    for expected in ["metadata", "version", "status", "summary"] {
        assert!(ran.stdout.contains(expected), "the dry run's diffs show {expected}:\n{}", ran.stdout);
    }
    dynamigrate_tests::assert_same(&snapshot(&world.client, &world.table).await, &before, "after a dry run");
    assert!(!table_exists(&world.client, &world.history).await);
}

#[tokio::test]
async fn a_team_binary_runs_rust_and_file_migrations_together_with_unique_ids() {
    let world = World::new().await;
    let folder = Folder::new();
    folder.write("20250301-add-status.toml", STATUS_TOML);
    let dir = folder.dir.to_str().unwrap();
    let env = [("FIXTURE_WITH_FOLDER", "1"), ("FIXTURE_IDS", "20250101_rust_one")];
    let ran = world.run_with(&["--dir", dir, "run"], &env).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(world.marker_runs("20250101_rust_one").await, Some(1));
    let status = world.run_with(&["--dir", dir, "status", "--json"], &env).await;
    let ids: Vec<String> = json(&status)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}", e["id"].as_str().unwrap(), e["state"].as_str().unwrap()))
        .collect();
    assert_eq!(ids, ["20250101_rust_one applied", "20250301_add_status applied"]);

    let clash = [("FIXTURE_WITH_FOLDER", "1"), ("FIXTURE_IDS", "20250301_add_status")];
    let ran = world.run_with(&["--dir", dir, "status"], &clash).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("also a compiled-in migration"), "{ran:?}");
}

#[tokio::test]
async fn down_refuses_before_running_anything_when_a_file_has_no_down() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(5)).await;
    let folder = Folder::new();
    folder.write("20250101-has-down.toml", STATUS_TOML);
    folder.write("20250102-no-down.toml", "description = \"set only\"\nup = [{ set = \"tier\", value = 1 }]\n");
    assert_eq!(world.files(&folder.dir, &["run"]).await.code, 0);
    let before = snapshot(&world.client, &world.table).await;
    let ran = world.files(&folder.dir, &["down", "--steps", "2"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("20250102_no_down has no down"), "{ran:?}");
    dynamigrate_tests::assert_same(&snapshot(&world.client, &world.table).await, &before, "after a refused down");
}

/// A TOML file is guarded on what its operations read: an application editing random items'
/// `description` throughout the run (which the file neither reads nor writes) causes no conflict,
/// and its last edit of each item is kept. Under the whole-item guard, an edit between our read and
/// our write would have conflicted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toml_file_does_not_conflict_with_writes_to_what_it_does_not_read() {
    const ITEMS: u64 = 3_000;
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS as usize)).await;
    let folder = Folder::new();
    folder.write(
        "20250301-title.toml",
        "description = \"copy name to title\"\nup = [{ copy = \"name\", to = \"title\" }, { version = 2 }]\n",
    );
    let stop = tokio_util::sync::CancellationToken::new();
    let application = {
        let (client, table, stop) = (world.client.clone(), world.table.clone(), stop.clone());
        tokio::spawn(async move {
            let mut last: HashMap<u64, String> = HashMap::new();
            for write in 0u64.. {
                if stop.is_cancelled() {
                    break;
                }
                let n = fastrand::u64(1..=ITEMS);
                let text = format!("edit {write}");
                client
                    .update_item()
                    .table_name(&table)
                    .key("pk", AV::S(format!("ITEM#{n}")))
                    .key("sk", AV::S("METADATA".into()))
                    .update_expression("SET description = :d")
                    .expression_attribute_values(":d", AV::S(text.clone()))
                    .send()
                    .await
                    .expect("application write");
                last.insert(n, text);
            }
            last
        })
    };
    let ran = world.files(&folder.dir, &["run"]).await;
    stop.cancel();
    let last = application.await.unwrap();
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stderr.contains(&format!("modified {ITEMS}, skipped 0, failed 0, conflicts 0,")), "{}", ran.stderr);
    assert!(!last.is_empty());
    for item in scan_all(&world.client, &world.table).await {
        let n: u64 = s(&item, "pk").unwrap().trim_start_matches("ITEM#").parse().unwrap();
        assert_eq!(item["version"], AV::N("2".into()));
        assert_eq!(s(&item, "title"), s(&item, "name"));
        if let Some(text) = last.get(&n) {
            assert_eq!(s(&item, "description").as_ref(), Some(text), "the application's last edit is kept");
        }
    }
}
