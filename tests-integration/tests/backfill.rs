//! The backfill engine on DynamoDB Local: types, selection, coverage, idempotence, dry run, and a
//! read-only pass through the same pipeline. With an application writing at the same time:
//! `concurrent.rs`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::backfill::{BackfillSpec, Change, CountingSink, Item, PageSink, Scope, Tally, Verdict, PAGES_HELD};
use dynamigrate::WriteMode;
use dynamigrate_tests::backfills::{migration, num, run, Configure};
use dynamigrate_tests::fixtures::{is_migrated, upgrade};
use dynamigrate_tests::{assert_same, get_item, put_items, s, scan_all, seed_items, snapshot, World};

fn every_type() -> Item {
    let str = |v: &str| AttributeValue::S(v.to_string());
    Item::from([
        ("pk".to_string(), str("TYPES#1")),
        ("sk".to_string(), str("METADATA")),
        ("s".to_string(), str("héllo wörld ✓")),
        ("n_big".to_string(), num("12345678901234567890123456789012345678")),
        ("n_neg".to_string(), num("-98765432109876543210987654321098765432")),
        ("n_frac".to_string(), num("0.12345678901234567890123456789012345678")),
        ("n_tiny".to_string(), num("1E-130")),
        ("b".to_string(), AttributeValue::B(Blob::new(vec![0, 1, 2, 255, 254]))),
        ("ss".to_string(), AttributeValue::Ss(vec!["a".into(), "b".into()])),
        ("ns".to_string(), AttributeValue::Ns(vec!["1".into(), "99999999999999999999999999999999999999".into()])),
        ("bs".to_string(), AttributeValue::Bs(vec![Blob::new(vec![1]), Blob::new(vec![2, 3])])),
        ("t".to_string(), AttributeValue::Bool(true)),
        ("nul".to_string(), AttributeValue::Null(true)),
        (
            "m".to_string(),
            AttributeValue::M(Item::from([
                ("inner".to_string(), AttributeValue::L(vec![num("1"), str("x"), AttributeValue::Null(true)])),
                ("deep".to_string(), AttributeValue::M(Item::from([("n".to_string(), num("3.14"))]))),
            ])),
        ),
        ("l".to_string(), AttributeValue::L(vec![AttributeValue::Ss(vec!["z".into()]), AttributeValue::Bool(false)])),
    ])
}

#[tokio::test]
async fn every_attribute_type_round_trips_exactly_in_every_write_mode() {
    let cases: [(&str, Configure, bool); 3] =
        [("update", |b| b, false), ("batch", |b| b.write_mode(WriteMode::Batch), false), ("put", |b| b, true)];
    for (name, configure, whole_item_put) in cases {
        let world = World::new().await;
        put_items(&world.client, &world.table, vec![every_type()]).await;
        let before = get_item(&world.client, &world.table, "TYPES#1", "METADATA").await.unwrap();
        let transform = move |item: &Item| -> anyhow::Result<Change> {
            if item.contains_key("version") {
                return Ok(Change::Skip);
            }
            if whole_item_put {
                let mut new = item.clone();
                new.insert("version".into(), num("2"));
                return Ok(Change::Put(new));
            }
            Ok(Change::update().set("version", num("2")))
        };
        let summaries = run(&world, vec![migration("20250301_types", transform, configure)], false).await;
        assert_eq!(summaries[0].counts.modified, 1, "{name}: {summaries:?}");
        let mut after = get_item(&world.client, &world.table, "TYPES#1", "METADATA").await.unwrap();
        assert_eq!(after.remove("version"), Some(num("2")), "{name}");
        assert_eq!(after, before, "{name}: every attribute, type and digit must survive");
    }
}

#[tokio::test]
async fn key_prefixes_and_filters_select_the_items_the_transform_sees() {
    let world = World::new().await;
    let mut items = seed_items(100);
    for i in 1..=100 {
        let mut order = Item::from([
            ("pk".to_string(), AttributeValue::S(format!("ITEM#{i}"))),
            ("sk".to_string(), AttributeValue::S(format!("ORDER#{i}"))),
        ]);
        if i <= 30 {
            order.insert("status".into(), AttributeValue::S("open".into()));
        }
        items.push(order);
    }
    items.extend((1..=50).map(|i| {
        Item::from([
            ("pk".to_string(), AttributeValue::S(format!("USER#{i}"))),
            ("sk".to_string(), AttributeValue::S("METADATA".into())),
        ])
    }));
    put_items(&world.client, &world.table, items).await;

    let mark = |_item: &Item| -> anyhow::Result<Change> { Ok(Change::update().set("seen", num("1"))) };
    let summaries = run(
        &world,
        vec![
            migration("20250301_items_only", mark, |b| b.pk_prefix("ITEM#").sk_prefix("METADATA").name("items")),
            migration("20250302_open_orders", mark, |b| {
                b.sk_prefix("ORDER#")
                    .filter("#status = :open")
                    .name_placeholder("#status", "status")
                    .value_placeholder(":open", AttributeValue::S("open".into()))
                    .projection(["status"])
                    .name("orders")
            }),
        ],
        false,
    )
    .await;
    assert_eq!((summaries[0].counts.scanned, summaries[0].counts.processed), (250, 100));
    assert_eq!((summaries[1].counts.scanned, summaries[1].counts.processed), (250, 30));
    let all = scan_all(&world.client, &world.table).await;
    let seen =
        |prefix: &str| all.iter().filter(|i| s(i, "pk").unwrap().starts_with(prefix) && i.contains_key("seen")).count();
    assert_eq!(seen("ITEM#"), 130, "100 ITEM metadata items and 30 open orders");
    assert_eq!(seen("USER#"), 0);
    let order = get_item(&world.client, &world.table, "ITEM#1", "ORDER#1").await.unwrap();
    assert_eq!(s(&order, "status").as_deref(), Some("open"), "a projected update keeps what it did not read");
}

#[tokio::test]
async fn a_parallel_scan_hands_every_item_to_the_transform_exactly_once() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(2_000)).await;
    let seen: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let record = seen.clone();
    let transform = move |item: &Item| -> anyhow::Result<Change> {
        *record.lock().unwrap().entry(s(item, "pk").unwrap()).or_default() += 1;
        upgrade(item)
    };
    let summaries =
        run(&world, vec![migration("20250301_all", transform, |b| b.segments(7).page_size(50).concurrency(8))], false)
            .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2_000);
    assert!(seen.values().all(|count| *count == 1), "each item once");
    assert_eq!(summaries[0].segments, 7);
    assert_eq!((summaries[0].counts.processed, summaries[0].counts.modified), (2_000, 2_000));
    assert!(scan_all(&world.client, &world.table).await.iter().all(is_migrated));
    assert!(world.checkpoints().await.is_empty(), "a finished backfill clears its checkpoints");
}

#[tokio::test]
async fn running_the_same_backfill_twice_changes_nothing_the_second_time() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(500)).await;
    let first = run(&world, vec![migration("20250301_first", upgrade, |b| b)], false).await;
    assert_eq!(first[0].counts.modified, 500);
    let before = snapshot(&world.client, &world.table).await;
    let both = vec![migration("20250301_first", upgrade, |b| b), migration("20250302_again", upgrade, |b| b)];
    let second = run(&world, both, false).await;
    assert_eq!((second[0].counts.processed, second[0].counts.modified, second[0].counts.skipped), (500, 0, 500));
    assert_same(&snapshot(&world.client, &world.table).await, &before, "table");
}

#[tokio::test]
async fn a_dry_run_writes_nothing_and_reports_the_count_and_sample_diffs() {
    let world = World::new().await;
    let mut items = seed_items(300);
    for item in items.iter_mut().take(100) {
        item.insert("version".into(), num("2"));
    }
    put_items(&world.client, &world.table, items).await;
    let before = snapshot(&world.client, &world.table).await;
    let summaries = run(&world, vec![migration("20250301_dry", upgrade, |b| b)], true).await;
    let summary = &summaries[0];
    assert!(summary.dry_run);
    assert_eq!((summary.counts.modified, summary.counts.skipped), (200, 100));
    assert_eq!(summary.sample_diffs.len(), 5);
    for diff in &summary.sample_diffs {
        let attributes: Vec<&str> = diff.changes.iter().map(|c| c.attribute.as_str()).collect();
        assert_eq!(attributes, ["metadata", "version"], "{diff:?}");
        assert_eq!(diff.changes[1].before, None);
        assert_eq!(diff.changes[1].after.as_deref(), Some("2"));
    }
    assert_same(&snapshot(&world.client, &world.table).await, &before, "table");
    assert_same(&snapshot(&world.client, &world.history).await, &None, "no history, no checkpoints");
}

#[tokio::test]
async fn a_counting_pass_reads_through_the_same_pipeline_and_writes_nothing() {
    let world = World::new().await;
    let mut items = seed_items(900);
    for item in items.iter_mut().take(300) {
        item.insert("version".into(), num("2"));
    }
    for item in items.iter_mut().skip(300).take(100) {
        item.insert("version".into(), AttributeValue::S("two".into()));
    }
    items.push(Item::from([
        ("pk".into(), AttributeValue::S("USER#1".into())),
        ("sk".into(), AttributeValue::S("PROFILE".into())),
    ]));
    put_items(&world.client, &world.table, items).await;
    let before = snapshot(&world.client, &world.table).await;

    let mut spec = BackfillSpec::new(&world.table);
    spec.selection.sk_prefix = Some("METADATA".into());
    spec.settings.segments = Some(5);
    spec.settings.page_size = Some(70);
    let sink = Arc::new(CountingSink::by_attribute("version"));
    let report = dynamigrate::backfill::pass(&spec, sink.clone(), &Scope::new(world.client.clone()), None)
        .await
        .expect("a read-only pass");
    assert!(report.completed && report.segments == 5, "{report:?}");
    assert_eq!((report.counts.scanned, report.counts.processed, report.counts.modified), (901, 900, 0));
    let seen = sink.distribution();
    assert_eq!(seen.items, 900);
    assert_eq!(seen.values, [("\"two\"".to_string(), 100), ("2".to_string(), 300)].into_iter().collect());
    assert_eq!(seen.absent, 500);
    assert_same(&snapshot(&world.client, &world.table).await, &before, "table");
    assert_same(&snapshot(&world.client, &world.history).await, &None, "no history");
}

/// A sink that takes its time over each page and notes the most pages it held at once.
#[derive(Default)]
struct SlowPages {
    holding: AtomicUsize,
    most: AtomicUsize,
}

#[dynamigrate::async_trait]
impl PageSink for SlowPages {
    async fn page(&self, items: Vec<Item>, tally: &Arc<Tally>) {
        let now = self.holding.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        tokio::time::sleep(Duration::from_millis(40)).await;
        tally.record(Verdict::Skipped, items.len() as u64);
        self.holding.fetch_sub(1, SeqCst);
    }
}

/// What a pass keeps in memory is bounded by pages, not by segments: 32 segments (16 scanned at
/// once, each writing two pages and reading a third ahead) still hold at most `PAGES_HELD` pages,
/// and every item is seen once.
#[tokio::test]
async fn a_pass_over_many_segments_holds_no_more_pages_than_its_budget() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(600)).await;
    let mut spec = BackfillSpec::new(&world.table);
    spec.settings.segments = Some(32);
    spec.settings.page_size = Some(4);
    let sink = Arc::new(SlowPages::default());
    let report = dynamigrate::backfill::pass(&spec, sink.clone(), &Scope::new(world.client.clone()), None)
        .await
        .expect("a read-only pass");
    assert!(report.completed && report.segments == 32, "{report:?}");
    assert_eq!(report.counts.processed, 600);
    let most = sink.most.load(SeqCst);
    assert!(most <= PAGES_HELD && most > PAGES_HELD / 2, "{most} pages held at once");
}

/// Finished checkpoints are deleted a transaction at a time, 24 segments to one: a run over more
/// segments than that leaves none behind, and every item is migrated.
#[tokio::test]
async fn a_finished_backfill_over_more_segments_than_one_transaction_clears_every_checkpoint() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(300)).await;
    let ran = world.run_with(&["run", "--segments", "30", "--json"], &[("FIXTURE_BACKFILL", "1")]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).expect("the run's JSON report");
    assert_eq!(report["migrations"][0]["backfills"][0]["segments"], 30, "{report}");
    let items = scan_all(&world.client, &world.table).await;
    assert_eq!(items.iter().filter(|i| is_migrated(i)).count(), 300);
    assert!(world.checkpoints().await.is_empty(), "30 segments' checkpoints, cleared in two transactions");
}
