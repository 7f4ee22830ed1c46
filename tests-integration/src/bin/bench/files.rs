//! The seed scenario as migration files, for comparison with the same backfill as a Rust closure:
//! a TypeScript transform doing exactly what `fixtures::upgrade` does, and a TOML file setting a
//! constant metadata (what a declarative file can say) beside a closure setting the same constant.
//! Also the transforms' own cost per item, without DynamoDB.

use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::backfill::{Change, Item, Transform};
use dynamigrate::{Migration, MigrationContext, Outcome, RunOptions, WriteMode};
use dynamigrate_files::ops::{apply_all, Op};
use dynamigrate_files::{discover, Limits};
use dynamigrate_script::{Entry, Language, RunInfo, Script};
use dynamigrate_tests::fixtures::{upgrade, BACKFILL_ID};
use dynamigrate_tests::{endpoint, seed_items, unique_name, World};

/// `fixtures::upgrade` in TypeScript.
pub const SEED_TS: &str = r#"
export const description = "seed scenario in TypeScript";
export const select = { sk_prefix: "METADATA" };
const CATEGORIES = ["electronics", "books", "garden"];
export function transform(item: { pk: string; version?: number }) {
  if (item.version === 2) return null;
  const n = Number(item.pk.replace("ITEM#", ""));
  return { metadata: { tags: n % 3 === 0 ? ["important"] : [], category: CATEGORIES[n % 3] }, version: 2 };
}
"#;

/// A constant metadata and version 2, declaratively.
pub const CONSTANT_TOML: &str = r#"
description = "constant metadata in TOML"
up = [
  { set = "metadata", value = { tags = [], category = "general" } },
  { version = 2 },
]
[select]
sk_prefix = "METADATA"
"#;

fn constant_metadata() -> AttributeValue {
    AttributeValue::M(Item::from([
        ("tags".to_string(), AttributeValue::L(Vec::new())),
        ("category".to_string(), AttributeValue::S("general".into())),
    ]))
}

/// The TOML file's change as a Rust closure.
fn constant(item: &Item) -> anyhow::Result<Change> {
    if matches!(item.get("version"), Some(AttributeValue::N(v)) if v == "2") {
        return Ok(Change::Skip);
    }
    Ok(Change::update().set("metadata", constant_metadata()).set("version", AttributeValue::N("2".into())))
}

/// `constant` as a compiled migration.
struct Constant;

#[dynamigrate::async_trait]
impl Migration for Constant {
    fn id(&self) -> &str {
        BACKFILL_ID
    }
    fn description(&self) -> &str {
        "constant metadata as a Rust closure"
    }
    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        Ok(ctx.backfill().sk_prefix("METADATA").run(constant).await?.outcome())
    }
}

/// The migration a variant runs: `ts`, `toml`, or `constant` (the closure beside the TOML one).
fn migration(kind: &str) -> Box<dyn Migration> {
    let (name, text) = match kind {
        "ts" => ("20250201-add-metadata.ts", SEED_TS),
        "toml" => ("20250201-add-metadata.toml", CONSTANT_TOML),
        _ => return Box::new(Constant),
    };
    let dir = std::env::temp_dir().join(unique_name("bench-migrations"));
    std::fs::create_dir_all(&dir).expect("bench folder");
    std::fs::write(dir.join(name), text).expect("bench file");
    let mut found = discover(&dir, Limits::default()).expect("bench migration file");
    let _ = std::fs::remove_dir_all(&dir);
    Box::new(found.remove(0))
}

/// One run of a file variant (or its closure twin) at the bench's settings.
pub async fn run(table: &str, kind: &str, mode: WriteMode, run: RunOptions) -> u64 {
    let mut world = World::new_for_table(table).await;
    world.history = unique_name("bench-history");
    let runner = world.runner_via(&endpoint(), vec![migration(kind)]);
    let mut options = run;
    options.backfill.write_mode = Some(mode);
    let report = runner.run(&options).await.expect("backfill");
    assert!(report.succeeded(), "{report:?}");
    report.migrations[0].outcome.items_modified
}

/// µs per item of each transform alone, one thread, over `items` seed items (after a warm-up).
pub fn transform_cost(items: usize) {
    let seed = seed_items(items);
    let script = Script::load("seed.ts", SEED_TS, Language::TypeScript, Limits::default()).expect("seed script");
    let script_transform: Arc<dyn Transform> =
        Arc::new(script.transform(Entry::Up, vec!["pk".into(), "sk".into()], RunInfo::default()));
    let closure: Arc<dyn Transform> = Arc::new(upgrade);
    let constant_closure: Arc<dyn Transform> = Arc::new(constant);
    let ops = toml_ops(CONSTANT_TOML);
    let toml_ops: Arc<dyn Transform> = Arc::new(move |item: &Item| apply_all(&ops, item).map_err(anyhow::Error::msg));
    for (name, transform) in [
        ("rust closure (seed)", &closure),
        ("typescript (seed)", &script_transform),
        ("rust closure (constant)", &constant_closure),
        ("toml (constant)", &toml_ops),
    ] {
        for item in seed.iter().take(1000) {
            transform.apply(item).expect("warm-up");
        }
        let started = Instant::now();
        for item in &seed {
            transform.apply(item).expect("transform");
        }
        let micros = started.elapsed().as_secs_f64() * 1e6 / items as f64;
        println!("{name:>24}: {micros:>6.2} µs per item");
    }
}

/// A TOML file's `up` operations, as the file reader parses them.
fn toml_ops(text: &str) -> Vec<Op> {
    let table: toml::Table = toml::from_str(text).expect("bench TOML");
    let up = serde_json::to_value(&table["up"]).expect("up as JSON");
    let entries = up.as_array().expect("up is an array");
    entries.iter().enumerate().map(|(i, e)| Op::parse(e, &format!("up[{i}]"), "version").expect("op")).collect()
}
