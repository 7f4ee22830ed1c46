//! Backfills that fail or stop: failed items filed, the failure limit, a panicking transform,
//! SIGKILL and SIGINT, each followed by a run that resumes from the checkpoints, and checkpoints
//! that follow page order when a later page settles first.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use dynamigrate::backfill::{BackfillSpec, Change, Item, PageSink, Scope, Tally, Verdict};
use dynamigrate::ledger::{CheckpointStore, LeaseLock};
use dynamigrate::{AttemptState, Ledger, RunIdentity};
use dynamigrate_tests::backfills::{migration, run, wait_for_progress};
use dynamigrate_tests::fixtures::{is_migrated, upgrade, BACKFILL_ID};
use dynamigrate_tests::{get_item, put_items, scan_all, seed_items, World};
use tokio_util::sync::CancellationToken;

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

#[tokio::test]
async fn a_panicking_transform_is_filed_with_its_message_and_the_run_goes_on() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(200)).await;
    let failures = std::env::temp_dir().join(format!("{}.jsonl", dynamigrate_tests::unique_name("failures")));
    let env = [("FIXTURE_BACKFILL", "1"), ("FIXTURE_PANIC_AT", "42")];
    let args = ["run", "--page-size", "50", "--page-delay-ms", "0", "--failures-file", failures.to_str().unwrap()];
    let ran = world.run_with(&args, &env).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    let message = "transform panicked: fixture: item 42 makes the transform panic";
    assert!(ran.stderr.contains(message), "the panic's own message is kept: {}", ran.stderr);
    let filed = std::fs::read_to_string(&failures).expect("failures file");
    let lines: Vec<serde_json::Value> = filed.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{filed}");
    assert_eq!(lines[0]["key"]["pk"]["S"], "ITEM#42");
    assert_eq!(lines[0]["error"], message);
    let migrated = scan_all(&world.client, &world.table).await.iter().filter(|i| is_migrated(i)).count();
    assert_eq!(migrated, 199, "only the panicking item is left");
}

#[tokio::test]
async fn an_in_process_transform_that_panics_fails_only_its_item() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(30)).await;
    let transform = |item: &Item| -> anyhow::Result<Change> {
        if dynamigrate_tests::fixtures::item_number(item) == 7 {
            panic!("no metadata for item 7");
        }
        upgrade(item)
    };
    let summaries = run(&world, vec![migration("20250301_panics", transform, |b| b)], false).await;
    assert_eq!((summaries[0].counts.modified, summaries[0].counts.failed), (29, 1));
    let attempt = world.attempts().await.pop().unwrap();
    assert_eq!(attempt.state, AttemptState::Failed);
    assert_eq!((attempt.items_processed, attempt.items_modified), (30, 29));
}

/// A sink whose first page waits until its second page has settled, then stops part-way, as a
/// writer cut short by Ctrl-C does.
struct SlowFirstPage {
    pages: AtomicUsize,
    second_settled: tokio::sync::Notify,
}

#[dynamigrate::async_trait]
impl PageSink for SlowFirstPage {
    async fn page(&self, items: Vec<Item>, tally: &Arc<Tally>) {
        match self.pages.fetch_add(1, SeqCst) {
            0 => {
                self.second_settled.notified().await;
                tally.record(Verdict::Skipped, items.len() as u64 / 2);
            }
            1 => {
                tally.record(Verdict::Skipped, items.len() as u64);
                self.second_settled.notify_one();
            }
            _ => _ = tally.record(Verdict::Skipped, items.len() as u64),
        }
    }
}

#[tokio::test]
async fn a_page_that_settles_before_an_earlier_one_never_moves_the_checkpoint_past_it() {
    // A segment writes two pages at once; their checkpoints must still follow page order.
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(30)).await;
    let history = Ledger::new(world.client.clone(), &world.history);
    history.ensure_table().await.unwrap();
    let lock = LeaseLock::new(history.clone(), RunIdentity::current(), "dev", world.lease);
    let lease = lock.acquire("run", Duration::ZERO, CancellationToken::new()).await.unwrap();
    let store = CheckpointStore::new(history, BACKFILL_ID.parse().unwrap(), "up#main", lease.fence().clone());

    let mut spec = BackfillSpec::new(&world.table);
    spec.settings.segments = Some(1);
    spec.settings.page_size = Some(10);
    let sink = Arc::new(SlowFirstPage { pages: Default::default(), second_settled: Default::default() });
    let scope = Scope::new(world.client.clone());
    let report = dynamigrate::backfill::pass(&spec, sink.clone(), &scope, Some(store.clone())).await.unwrap();

    assert!(!report.completed, "{report:?}");
    assert_eq!(sink.pages.load(SeqCst), 2, "no page handed after the cut");
    let saved = store.load().await.unwrap();
    assert!(
        saved.iter().all(|c| c.last_key.is_none() && !c.done && c.counts.processed == 0),
        "the checkpoint stays before the first page: {saved:?}"
    );
    lease.release().await.unwrap();
}
