//! The backfill engine on DynamoDB Local: types, selection, coverage, idempotence, dry run,
//! concurrent writers, conflicts, failures, and resuming after SIGKILL and SIGINT.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::backfill::{Backfill, BackfillSummary, Change, Item, Transform};
use dynamigrate::{async_trait, AttemptState, Migration, MigrationContext, Outcome, RunOptions, WriteMode};
use dynamigrate_tests::fixtures::{is_migrated, upgrade, BACKFILL_ID};
use dynamigrate_tests::{assert_same, get_item, n, put_items, s, scan_all, seed_items, snapshot, World};

/// Builder settings a test applies to a backfill.
type Configure = fn(Backfill) -> Backfill;

/// A migration whose `up` is one backfill with the given transform and builder settings.
struct BackfillMigration {
    id: &'static str,
    transform: Arc<dyn Transform>,
    configure: Configure,
}

#[async_trait]
impl Migration for BackfillMigration {
    fn id(&self) -> &str {
        self.id
    }
    fn description(&self) -> &str {
        "test backfill"
    }
    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        let summary = (self.configure)(ctx.backfill()).run_shared(self.transform.clone()).await?;
        Ok(summary.outcome())
    }
}

fn migration(
    id: &'static str,
    transform: impl Fn(&Item) -> anyhow::Result<Change> + Send + Sync + 'static,
    configure: Configure,
) -> Box<dyn Migration> {
    Box::new(BackfillMigration { id, transform: Arc::new(transform), configure })
}

/// Runs migrations in-process and returns the single backfill summary of each.
async fn run(world: &World, migrations: Vec<Box<dyn Migration>>, dry_run: bool) -> Vec<BackfillSummary> {
    let report = world.runner(migrations).run(&RunOptions { dry_run, ..RunOptions::default() }).await.expect("run");
    report.migrations.into_iter().flat_map(|m| m.backfills).collect()
}

/// Makes an application write from inside a (synchronous) transform, so it lands between our read
/// and our write. Needs the multi-threaded runtime.
fn write_now<T, E>(write: impl std::future::Future<Output = Result<T, E>>) -> anyhow::Result<()>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let write = async { write.await.map(drop).map_err(anyhow::Error::from) };
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(write))
}

fn num(v: &str) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_writer_loses_none_of_its_writes_and_every_item_ends_migrated() {
    const ITEMS: usize = 10_000;
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;

    // The "application": increments a counter on random items until the backfill ends.
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (client, table, stop) = (world.client.clone(), world.table.clone(), stop.clone());
        tokio::spawn(async move {
            let mut writes: HashMap<u64, i64> = HashMap::new();
            while !stop.is_cancelled() {
                let n = fastrand::u64(1..=ITEMS as u64);
                client
                    .update_item()
                    .table_name(&table)
                    .key("pk", AttributeValue::S(format!("ITEM#{n}")))
                    .key("sk", AttributeValue::S("METADATA".into()))
                    .update_expression("ADD app_writes :one SET app_note = :note")
                    .expression_attribute_values(":one", num("1"))
                    .expression_attribute_values(":note", AttributeValue::S(format!("written {n}")))
                    .send()
                    .await
                    .expect("application write");
                *writes.entry(n).or_default() += 1;
            }
            writes
        })
    };
    let summaries =
        run(&world, vec![migration("20250301_live", upgrade, |b| b.segments(4).page_size(250).concurrency(16))], false)
            .await;
    stop.cancel();
    let writes = writer.await.unwrap();
    eprintln!("application writes: {}, backfill conflicts: {}", writes.values().sum::<i64>(), summaries[0].conflicts);
    assert!(!writes.is_empty());
    assert_eq!(summaries[0].counts.failed, 0);

    let items = scan_all(&world.client, &world.table).await;
    assert_eq!(items.len(), ITEMS);
    for item in &items {
        assert!(is_migrated(item), "not migrated: {item:?}");
        let number: u64 = s(item, "pk").unwrap().trim_start_matches("ITEM#").parse().unwrap();
        let expected = writes.get(&number).copied();
        assert_eq!(n(item, "app_writes"), expected, "lost application writes on ITEM#{number}");
        assert_eq!(s(item, "name"), Some(format!("My Item {number}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_conflicts_is_reread_and_transformed_again() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(200)).await;
    let calls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (client, table, record) = (world.client.clone(), world.table.clone(), calls.clone());
    // For every tenth item, the first time the transform sees it, the "application" changes an
    // attribute the transform read, between our read and our write: the guarded write must fail
    // and be redone on the fresh item.
    let transform = move |item: &Item| -> anyhow::Result<Change> {
        let pk = s(item, "pk").unwrap();
        let first = {
            let mut calls = record.lock().unwrap();
            let count = calls.entry(pk.clone()).or_default();
            *count += 1;
            *count == 1
        };
        if first && pk.ends_with('0') {
            let write = client
                .update_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(pk.clone()))
                .key("sk", AttributeValue::S("METADATA".into()))
                .update_expression("SET #name = :name")
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", AttributeValue::S("renamed by the application".into()))
                .send();
            write_now(write)?;
        }
        upgrade(item)
    };
    let summaries = run(&world, vec![migration("20250301_conflicts", transform, |b| b)], false).await;
    assert_eq!(summaries[0].conflicts, 20);
    assert_eq!((summaries[0].counts.modified, summaries[0].counts.failed), (200, 0));
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.values().filter(|c| **c == 2).count(), 20, "transformed again after each conflict");
    for item in scan_all(&world.client, &world.table).await {
        assert!(is_migrated(&item));
        if s(&item, "pk").unwrap().ends_with('0') {
            assert_eq!(s(&item, "name").as_deref(), Some("renamed by the application"), "its write survives");
        }
    }
}

#[tokio::test]
async fn failed_items_are_logged_counted_and_filed_and_the_run_goes_on() {
    failed_items_are_filed("update").await;
}

#[tokio::test]
async fn in_batch_mode_a_rejected_batch_is_finished_item_by_item_and_only_the_bad_item_fails() {
    // DynamoDB rejects the whole BatchWriteItem that holds the oversized item; its 24 neighbours
    // are read again and written one by one, and only the oversized one is filed.
    failed_items_are_filed("batch").await;
}

async fn failed_items_are_filed(write_mode: &str) {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(500)).await;
    let failures = std::env::temp_dir().join(format!("{}.jsonl", dynamigrate_tests::unique_name("failures")));
    let env = [("FIXTURE_BACKFILL", "1"), ("FIXTURE_FAIL_EVERY", "50"), ("FIXTURE_TOO_LARGE", "7")];
    let args = ["run", "--failures-file", failures.to_str().unwrap(), "--write-mode", write_mode];
    let ran = world.run_with(&args, &env).await;
    assert_eq!(ran.code, 1, "failed items make the migration fail: {ran:?}");
    assert!(ran.stdout.contains("failed 11"), "{}", ran.stdout);
    assert!(ran.stdout.contains("failed items are listed in"), "{}", ran.stdout);
    assert!(ran.stderr.contains("item pk=\"ITEM#50\" sk=\"METADATA\" failed: transform failed"), "{}", ran.stderr);

    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&failures)
        .expect("failures file")
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 11);
    let too_large = lines.iter().find(|l| l["key"]["pk"]["S"] == "ITEM#7").expect("the oversized item is filed");
    assert!(too_large["error"].as_str().unwrap().contains("size"), "{too_large}");
    assert!(lines.iter().all(|l| l["migration_id"] == BACKFILL_ID && l["key"]["sk"]["S"] == "METADATA"));

    let items = scan_all(&world.client, &world.table).await;
    assert_eq!(items.iter().filter(|i| is_migrated(i)).count(), 489, "the run went on past the failures");
    let attempt = world.attempts().await.pop().unwrap();
    assert_eq!(attempt.state, AttemptState::Failed);
    assert_eq!((attempt.items_processed, attempt.items_modified), (500, 489));
    assert!(world.checkpoints().await.is_empty(), "a finished backfill closes its checkpoints even with failures");
}

#[tokio::test]
async fn past_max_failures_the_run_stops_and_keeps_its_checkpoints() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(1_000)).await;
    let failures = std::env::temp_dir().join(format!("{}.jsonl", dynamigrate_tests::unique_name("failures")));
    let env = [("FIXTURE_BACKFILL", "1"), ("FIXTURE_FAIL_EVERY", "2")];
    let args = ["run", "--max-failures", "5", "--segments", "2", "--batch-size", "20", "--concurrency", "2"];
    let mut args = args.to_vec();
    args.extend(["--failures-file", failures.to_str().unwrap()]);
    let ran = world.run_with(&args, &env).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.contains("more than 5 items failed"), "{}", ran.stdout);
    assert!(!world.checkpoints().await.is_empty(), "checkpoints kept to resume");
    let migrated = scan_all(&world.client, &world.table).await.iter().filter(|i| is_migrated(i)).count();
    assert!(migrated < 500, "stopped early, {migrated} migrated");
}

/// Waits until the backfill's checkpoints show at least `scanned` items scanned.
async fn wait_for_progress(world: &World, scanned: i64) {
    for _ in 0..600 {
        let total: i64 = world.checkpoints().await.iter().filter_map(|c| n(c, "scanned")).sum();
        if total >= scanned {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the backfill never reached {scanned} scanned items");
}

const SLOW: [&str; 8] = ["--segments", "4", "--batch-size", "100", "--batch-delay-ms", "100", "--concurrency", "4"];

#[tokio::test]
async fn a_run_killed_with_sigkill_resumes_from_its_checkpoints() {
    const ITEMS: usize = 12_000;
    let world = World::new().await.with_config("lease_seconds = 3\n");
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    let mut args = vec!["run"];
    args.extend(SLOW);
    let mut command = world.command(&args);
    command.env("FIXTURE_BACKFILL", "1");
    let mut child = command.spawn().unwrap();
    wait_for_progress(&world, 1_500).await;
    child.start_kill().unwrap(); // SIGKILL
    let killed = dynamigrate_tests::finish(child).await;
    assert_ne!(killed.code, 0);
    assert!(
        get_item(&world.client, &world.history, "LOCK", "LOCK").await.is_some(),
        "a killed runner leaves its lease"
    );

    let resumed = world.run_with(&["run", "--wait", "30"], &[("FIXTURE_BACKFILL", "1")]).await;
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert!(resumed.stderr.contains("took over the expired lease"), "{}", resumed.stderr);
    assert!(resumed.stderr.contains("resuming backfill main from checkpoints"), "{}", resumed.stderr);
    assert!(resumed.stdout.contains("resumed from checkpoints"), "{}", resumed.stdout);

    let items = scan_all(&world.client, &world.table).await;
    assert_eq!(items.len(), ITEMS);
    assert!(items.iter().all(is_migrated), "every item correct after the resume");
    assert!(get_item(&world.client, &world.history, "LOCK", "LOCK").await.is_none(), "lock free");
    assert!(world.checkpoints().await.is_empty());
    let attempts = world.attempts().await;
    assert_eq!(attempts.iter().map(|a| a.state).collect::<Vec<_>>(), [AttemptState::Running, AttemptState::Succeeded]);
    let processed = attempts[1].items_processed;
    assert!(
        (ITEMS as u64..=ITEMS as u64 + 4 * 100).contains(&processed),
        "at most one page per segment is looked at twice: {processed}"
    );
}

#[tokio::test]
async fn sigint_stops_cleanly_releases_the_lock_and_the_next_run_resumes() {
    const ITEMS: usize = 6_000;
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    let mut args = vec!["run"];
    args.extend(SLOW);
    let mut command = world.command(&args);
    command.env("FIXTURE_BACKFILL", "1");
    let child = command.spawn().unwrap();
    wait_for_progress(&world, 1_000).await;
    let pid = child.id().unwrap().to_string();
    let signalled = std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap();
    assert!(signalled.success());
    let stopped = dynamigrate_tests::finish(child).await;
    assert_eq!(stopped.code, 1, "{stopped:?}");
    assert!(stopped.stderr.contains("interrupted: stopping cleanly"), "{}", stopped.stderr);
    assert!(stopped.stdout.contains("checkpoints are kept, `run` again to resume"), "{}", stopped.stdout);
    assert!(get_item(&world.client, &world.history, "LOCK", "LOCK").await.is_none(), "the lock was released");
    assert!(!world.checkpoints().await.is_empty());
    let attempt = world.attempts().await.pop().unwrap();
    assert_eq!(attempt.state, AttemptState::Failed);

    let resumed = world.run_with(&["run"], &[("FIXTURE_BACKFILL", "1")]).await;
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert!(resumed.stdout.contains("resumed from checkpoints"), "{}", resumed.stdout);
    assert!(scan_all(&world.client, &world.table).await.iter().all(is_migrated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_item_put_never_drops_an_attribute_the_application_added_meanwhile() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(20)).await;
    let (client, table) = (world.client.clone(), world.table.clone());
    let transform = move |item: &Item| -> anyhow::Result<Change> {
        if item.contains_key("version") {
            return Ok(Change::Skip);
        }
        let add = client
            .update_item()
            .table_name(&table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("SET app_note = :note")
            .expression_attribute_values(":note", AttributeValue::S("added after the read".into()))
            .send();
        write_now(add)?;
        let mut new = item.clone();
        new.insert("version".into(), num("2"));
        Ok(Change::Put(new))
    };
    let summaries = run(&world, vec![migration("20250301_put", transform, |b| b)], false).await;
    assert_eq!(summaries[0].counts.modified, 20);
    for item in scan_all(&world.client, &world.table).await {
        assert_eq!(n(&item, "version"), Some(2));
        assert_eq!(s(&item, "app_note").as_deref(), Some("added after the read"), "{item:?}");
    }
}
