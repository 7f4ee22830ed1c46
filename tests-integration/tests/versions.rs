//! Schema versions on DynamoDB Local: upgrade chains applied eagerly by the backfill and lazily by
//! the application (the Rust chain's `normalize`, the shipped JS helper in Node.js), `versions`
//! and its census in `status`, and the sample mode's bound.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue as AV;
use dynamigrate::versions::{self, UpgradeChain, Versioning};
use dynamigrate::{async_trait, Migration, MigrationContext, Outcome, Phase, RunOptions};
use dynamigrate_tests::files::Folder;
use dynamigrate_tests::{
    app_js, canonical_item, every_type, get_item, put_items, s, scan_all, versioned_item, Item, World,
};
use serde_json::Value;

fn json(ran: &dynamigrate_tests::Ran) -> Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran:?}"))
}

const TO_V2: &str = r#"
description = "v2: every item has a status"
upgrade_to = 2
up = [{ default = "status", value = "active" }]
"#;

const TO_V3: &str = r#"
export const description = "v3: name becomes title";
export const upgrade_to = 3;
type Item = Record<string, unknown>;
export function transform(item: Item): Item { return { title: item.name, name: undefined }; }
export function down(item: Item): Item { return { name: item.title, title: undefined }; }
"#;

#[tokio::test]
async fn an_upgrade_chain_brings_items_at_v1_v2_and_without_a_version_to_v3_and_versions_counts_them() {
    let world = World::new().await;
    let seeded: Vec<Item> = (0..30)
        .map(|i| match i % 3 {
            0 => versioned_item(&format!("ITEM#{i}"), None, &[("name", &format!("n{i}"))]),
            1 => versioned_item(&format!("ITEM#{i}"), Some(1), &[("name", &format!("n{i}"))]),
            _ => versioned_item(&format!("ITEM#{i}"), Some(2), &[("name", &format!("n{i}")), ("status", "paused")]),
        })
        .collect();
    put_items(&world.client, &world.table, seeded).await;
    let folder = Folder::new();
    folder.write("20250101-to-v2.toml", TO_V2).write("20250201-to-v3.ts", TO_V3);

    let census = json(&world.files(&folder.dir, &["versions", "--json"]).await);
    assert_eq!(census["items"], 30);
    assert_eq!(census["versions"], serde_json::json!({ "1": 20, "2": 10 }), "{census}");
    assert_eq!(census["without"], 10);
    assert_eq!(world.files(&folder.dir, &["versions", "--at-least", "2"]).await.code, 4);
    assert_eq!(world.files(&folder.dir, &["versions", "--at-least", "1"]).await.code, 0);

    let ran = world.files(&folder.dir, &["run", "--to", "20250101_to_v2"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    // Stragglers an old deployment wrote at v1 after the first upgrade: the second one takes them
    // through both steps in its one backfill.
    let stragglers =
        (0..5).map(|i| versioned_item(&format!("STRAY#{i}"), Some(1), &[("name", &format!("s{i}"))])).collect();
    put_items(&world.client, &world.table, stragglers).await;
    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");

    let items = scan_all(&world.client, &world.table).await;
    assert_eq!(items.len(), 35);
    for item in &items {
        let pk = s(item, "pk").unwrap();
        assert_eq!(item["version"], AV::N("3".into()), "{pk}");
        assert!(!item.contains_key("name"), "{pk}");
        let number = &pk[pk.find('#').unwrap() + 1..];
        let letter = if pk.starts_with("STRAY") { "s" } else { "n" };
        assert_eq!(s(item, "title"), Some(format!("{letter}{number}")), "{pk}");
        let was_v2 = pk.starts_with("ITEM") && number.parse::<u32>().unwrap() % 3 == 2;
        assert_eq!(s(item, "status").as_deref(), Some(if was_v2 { "paused" } else { "active" }), "{pk}");
    }
    let census = world.files(&folder.dir, &["versions", "--at-least", "3", "--json"]).await;
    assert_eq!(census.code, 0, "{census:?}");
    assert_eq!(json(&census)["versions"], serde_json::json!({ "3": 35 }));
    let status = world.files(&folder.dir, &["status", "--json"]).await;
    let censuses = &json(&status)["censuses"];
    assert_eq!(censuses[0]["table"], world.table.as_str());
    assert_eq!(censuses[0]["versions"], serde_json::json!({ "3": 35 }), "{censuses}");
    let entries = &json(&status)["entries"];
    assert_eq!((entries[0]["phase"].as_str(), entries[0]["upgrades_to"].as_u64()), (Some("backfill"), Some(2)));
    let text = world.files(&folder.dir, &["status"]).await.stdout;
    assert!(text.contains("versions (last census):") && text.contains("35 items: v3 100.0%"), "{text}");
    assert!(text.contains("[backfill] v3: name becomes title"), "{text}");

    // The v3 step's down: items at v3 go back to v2, and only those.
    let ran = world.files(&folder.dir, &["down"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let back = get_item(&world.client, &world.table, "STRAY#1", "METADATA").await.unwrap();
    assert_eq!(
        (back["version"].clone(), s(&back, "name"), back.contains_key("title")),
        (AV::N("2".into()), Some("s1".into()), false)
    );
}

const JS_V2: &str = r#"export const description = "v2: status, and the legacy flag goes";
export const upgrade_to = 2;
export function transform(item) { return { status: "active", legacy: undefined, tags: new Set(["a", "b"]) }; }
"#;

const JS_V3: &str = r#"export const description = "v3: text becomes title, and a nested record";
export const upgrade_to = 3;
export function transform(item) {
  const { text, ...rest } = item;
  return { ...rest, title: text, nested: { big: item.big, bytes: item.bytes, when: [item.int, null, true] } };
}
"#;

#[tokio::test]
async fn the_shipped_js_helper_gives_the_items_the_backfill_writes_for_every_attribute_type() {
    let world = World::new().await;
    let items: Vec<Item> = (1..=12)
        .map(|n| {
            let mut item = every_type(n);
            item.insert("legacy".into(), AV::Bool(true));
            if n % 2 == 0 {
                item.insert("version".into(), AV::N("2".into()));
                item.insert("status".into(), AV::S("kept".into()));
            }
            item
        })
        .collect();
    put_items(&world.client, &world.table, items).await;
    let folder = Folder::new();
    folder.write("20250101-to-v2.js", JS_V2).write("20250201-to-v3.js", JS_V3);
    let helper = world.files(&folder.dir, &["new", "--helper", "--js"]).await;
    assert_eq!(helper.code, 0, "{helper:?}");
    let helper = std::path::PathBuf::from(helper.stdout.trim());
    assert_eq!(helper, folder.dir.join("normalize-item.js"));

    // What the application reads: the items as they are before the backfill.
    let before = scan_all(&world.client, &world.table).await;
    let steps = [folder.dir.join("20250101-to-v2.js"), folder.dir.join("20250201-to-v3.js")];
    let lazy = app_js::normalize(&before, &helper, &["pk", "sk"], &steps).await;
    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let eager = scan_all(&world.client, &world.table).await;

    let sorted = |items: &[Item]| {
        let mut all: Vec<String> = items.iter().map(canonical_item).collect();
        all.sort();
        all
    };
    assert_eq!(sorted(&lazy), sorted(&eager), "normalizeItem in Node.js and the backfill agree");
    let one = eager.iter().find(|i| s(i, "pk").as_deref() == Some("ITEM#2")).unwrap();
    assert_eq!(s(one, "status").as_deref(), Some("kept"), "an item at v2 skipped the v2 step");
    let AV::M(nested) = &one["nested"] else { panic!("nested is a map") };
    assert_eq!(nested["big"], AV::N(dynamigrate_tests::BIG_NUMBER.into()));
}

fn rust_chain() -> UpgradeChain {
    UpgradeChain::new(Versioning::default())
        .step(2, |mut item| {
            item.remove("legacy");
            item.entry("status".into()).or_insert(AV::S("active".into()));
            item.insert("tags".into(), AV::Ss(vec!["a".into(), "b".into()]));
            Ok(item)
        })
        .step(3, |mut item| {
            let text = item.remove("text").unwrap_or(AV::Null(true));
            item.insert("title".into(), text);
            let nested =
                HashMap::from([("big".to_string(), item["big"].clone()), ("bytes".to_string(), item["bytes"].clone())]);
            item.insert("nested".into(), AV::M(nested));
            Ok(item)
        })
}

struct ToV3(UpgradeChain);

#[async_trait]
impl Migration for ToV3 {
    fn id(&self) -> &str {
        "20250301_to_v3"
    }
    fn description(&self) -> &str {
        "the Rust chain, eagerly"
    }
    fn phase(&self) -> Option<Phase> {
        Some(Phase::Backfill)
    }
    fn upgrades_to(&self) -> Option<u64> {
        Some(3)
    }
    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        Ok(versions::upgrade::run(ctx.backfill(), &self.0, 3).await?.outcome())
    }
}

#[tokio::test]
async fn the_rust_chain_normalizes_lazily_to_what_its_backfill_writes() {
    let world = World::new().await;
    let items: Vec<Item> = (1..=12)
        .map(|n| {
            let mut item = every_type(n);
            item.insert("legacy".into(), AV::Bool(true));
            if n % 3 == 0 {
                item.insert("version".into(), AV::N("2".into()));
            } else if n % 3 == 1 {
                item.insert("version".into(), AV::N("1".into()));
            }
            item
        })
        .collect();
    put_items(&world.client, &world.table, items).await;
    let before = scan_all(&world.client, &world.table).await;
    let chain = rust_chain();
    let report = world.runner(vec![Box::new(ToV3(chain.clone()))]).run(&RunOptions::default()).await.unwrap();
    assert!(report.succeeded(), "{report:?}");
    let eager: HashMap<String, String> =
        scan_all(&world.client, &world.table).await.iter().map(|i| (s(i, "pk").unwrap(), canonical_item(i))).collect();
    for item in before {
        let pk = s(&item, "pk").unwrap();
        let lazy = chain.normalize(item).unwrap();
        assert_eq!(canonical_item(&lazy), eager[&pk], "{pk}");
    }
}

#[tokio::test]
async fn a_sampled_census_estimates_within_its_margin_from_a_share_of_the_table() {
    let world = World::new().await;
    let items = (0..3000).map(|i| versioned_item(&format!("ITEM#{i}"), (i % 3 != 0).then_some(2), &[])).collect();
    put_items(&world.client, &world.table, items).await;
    let folder = Folder::new();
    let ran = world.files(&folder.dir, &["versions", "--sample", "20", "--json"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let census = json(&ran);
    assert_eq!(census["sample"], serde_json::json!({ "segments": 20, "total_segments": 100 }), "{census}");
    let counted = census["items"].as_u64().unwrap();
    assert!(counted > 200 && counted < 1200, "a fifth of the table was read, about 600 items: {counted}");
    let text = world.files(&folder.dir, &["versions", "--sample", "20"]).await.stdout;
    assert!(text.contains("ESTIMATE from"), "{text}");
    // The estimate of v2 items (2,000 in truth) lies within twice its 95% margin (~4 sigma).
    let mut sampled = dynamigrate::versions::Census {
        table: world.table.clone(),
        versioning: Versioning::default(),
        measured_at: String::new(),
        items: counted,
        versions: serde_json::from_value::<std::collections::BTreeMap<u64, u64>>(census["versions"].clone()).unwrap(),
        without: census["without"].as_u64().unwrap(),
        unknown: Default::default(),
        sample: serde_json::from_value(census["sample"].clone()).unwrap(),
        duration_ms: 0,
    };
    let v2 = sampled.rows().into_iter().find(|r| r.label == "v2").unwrap();
    let (margin, _) = v2.margin.unwrap();
    assert!(v2.items.abs_diff(2000) <= 2 * margin, "estimate {} ± {margin} vs 2000", v2.items);
    sampled.sample = None;
    assert_eq!(sampled.total(), counted);
}
