//! Faults DynamoDB Local never produces, made by the fault proxy: throttling, 5xx, dropped
//! connections, partial batch answers. Nothing may be lost, and the retries must be visible.

use std::time::Duration;

use dynamigrate::{AttemptState, RunOptions, WriteMode};
use dynamigrate_tests::backfills::wait_for_progress;
use dynamigrate_tests::fixtures::{is_migrated, AddMetadata};
use dynamigrate_tests::proxy::{FaultProxy, Faults, ProxyStats};
use dynamigrate_tests::{endpoint, get_item, put_items, scan_all, seed_items, World};

fn backfill() -> Vec<Box<dyn dynamigrate::Migration>> {
    vec![Box::new(AddMetadata::default())]
}

#[tokio::test]
async fn a_backfill_under_throttling_5xx_and_resets_completes_with_every_item_correct() {
    const ITEMS: usize = 10_000;
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    let faults = Faults {
        throughput_exceeded: 0.10,
        throttling: 0.10,
        server_error: 0.03,
        unavailable: 0.02,
        reset_before: 0.01,
        reset_after: 0.01,
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&endpoint(), faults).await.unwrap();
    let runner = world.runner_via(&proxy.endpoint, backfill());
    let mut options = RunOptions::default();
    options.backfill.segments = Some(4);
    options.backfill.page_size = Some(500);
    // These throttles are random, not about load: this test is about retries, not the limiter.
    options.backfill.rate_mode = Some(dynamigrate::backfill::RateMode::Fixed);
    let report = runner.run(&options).await.expect("the run survives the faults");
    assert!(report.succeeded(), "{report:?}");

    let summary = &report.migrations[0].backfills[0];
    let reasons = summary.retry_reasons.by_reason();
    eprintln!("retries: {reasons:?}; proxy: {:?}", proxy.stats());
    assert_eq!(
        (summary.counts.processed, summary.counts.modified, summary.counts.failed),
        (ITEMS as u64, ITEMS as u64, 0)
    );
    for reason in ["throttled", "server error (5xx)", "connection error"] {
        assert!(reasons.get(reason).is_some_and(|n| *n > 0), "{reason} retries counted: {reasons:?}");
    }
    assert!(ProxyStats::get(&proxy.stats().throttled) > 0 && ProxyStats::get(&proxy.stats().resets) > 0);

    let items = scan_all(&world.client, &world.table).await;
    assert_eq!(items.len(), ITEMS);
    assert!(items.iter().all(is_migrated), "every item correct");
    assert_eq!(world.attempts().await.pop().map(|a| a.state), Some(AttemptState::Succeeded));
    assert!(get_item(&world.client, &world.history, "LOCK", "LOCK").await.is_none(), "lock released");
}

#[tokio::test]
async fn partial_batch_answers_lose_nothing_in_batch_mode() {
    const ITEMS: usize = 5_000;
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    let faults = Faults { partial_batch: 0.5, throughput_exceeded: 0.05, ..Faults::default() };
    let proxy = FaultProxy::start(&endpoint(), faults).await.unwrap();
    let runner = world.runner_via(&proxy.endpoint, backfill());
    let mut options = RunOptions::default();
    options.backfill.write_mode = Some(WriteMode::Batch);
    options.backfill.rate_mode = Some(dynamigrate::backfill::RateMode::Fixed);
    let report = runner.run(&options).await.unwrap();
    assert!(report.succeeded(), "{report:?}");
    let summary = &report.migrations[0].backfills[0];
    assert!(ProxyStats::get(&proxy.stats().partial_batches) > 10, "{:?}", proxy.stats());
    assert!(summary.retries > summary.retry_reasons.total(), "unprocessed items were resent: {summary:?}");
    assert_eq!((summary.counts.modified, summary.counts.failed), (ITEMS as u64, 0));
    assert!(scan_all(&world.client, &world.table).await.iter().all(is_migrated));
}

#[tokio::test]
async fn the_heartbeat_and_checkpoints_survive_throttling_of_their_own_writes() {
    const ITEMS: usize = 1_000;
    let mut world = World::new().await;
    world.lease = Duration::from_secs(3);
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    // A third of the lock's writes (PutItem to take it, UpdateItem to renew it; the backfill's own
    // UpdateItems too) and of the fenced history and checkpoint writes (TransactWriteItems) are
    // throttled, while a slow backfill runs for several lease lengths.
    let faults = Faults {
        throughput_exceeded: 0.35,
        operations: Some(vec!["TransactWriteItems".into(), "PutItem".into(), "UpdateItem".into()]),
        ..Faults::default()
    };
    let proxy = FaultProxy::start(&endpoint(), faults).await.unwrap();
    let runner = world.runner_via(&proxy.endpoint, backfill());
    let mut options = RunOptions::default();
    options.backfill.rate_mode = Some(dynamigrate::backfill::RateMode::Fixed);
    // 2 segments × 10 pages × a 1 s pause: the run lasts well over two lease lengths.
    options.backfill.segments = Some(2);
    options.backfill.page_size = Some(50);
    options.backfill.page_delay_ms = Some(1000);
    let running = tokio::spawn(async move { runner.run(&options).await });

    // While it runs, past two lease lengths, another runner must still find the lock held.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let contender = world.runner(backfill());
    let refused = contender.run(&RunOptions::default()).await;
    assert!(matches!(refused, Err(dynamigrate::Error::LockHeld(_))), "{refused:?}");

    let report = running.await.unwrap().expect("no lost lease, no failed checkpoint");
    assert!(report.succeeded(), "{report:?}");
    assert!(ProxyStats::get(&proxy.stats().throttled) > 10, "{:?}", proxy.stats());
    assert!(scan_all(&world.client, &world.table).await.iter().all(is_migrated));
    assert!(get_item(&world.client, &world.history, "LOCK", "LOCK").await.is_none());
}

/// Write units the proxy saw consumed, with when: sampled every second while a run goes on.
async fn sample_write_units(
    proxy: &FaultProxy,
    running: &tokio::task::JoinHandle<dynamigrate::RunReport>,
) -> Vec<(std::time::Instant, f64)> {
    let mut samples = vec![(std::time::Instant::now(), proxy.stats().write_units())];
    while !running.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push((std::time::Instant::now(), proxy.stats().write_units()));
    }
    samples
}

/// How an adaptive backfill went against the proxy's capacity of W write units per second.
struct Settled {
    sustained: f64,
    slack: f64,
    throttled_share: f64,
    summary: dynamigrate::backfill::BackfillSummary,
}

const W: f64 = 250.0;
/// Read capacity: plenty (a scan page of 1,000 small items costs about 16 RCU).
const R: f64 = 20_000.0;

/// A 6,000-item adaptive backfill through the proxy at W WCU/s, on the world's table; the
/// sustained rate is measured after an 8 s warm-up, up to the last sample before the end.
async fn adaptive_run_at_capacity(world: &World) -> Settled {
    const ITEMS: usize = 6_000;
    const CONCURRENCY: usize = 16;
    const WARM_UP: usize = 8;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    // Each item is well under 1 KB: 1 WCU a write.
    // Half a second of burst credit: DynamoDB banks up to 300 s of unused capacity, which lets a
    // window run above W; the band is about the limiter's steady state, not about that credit.
    let mut capacity = dynamigrate_tests::proxy::Capacity::new(W, R);
    capacity.burst_seconds = 0.5;
    let faults = Faults { capacity: Some(capacity), ..Faults::default() };
    let proxy = FaultProxy::start(&endpoint(), faults).await.unwrap();
    let runner = world.runner_via(&proxy.endpoint, backfill());
    let mut options = RunOptions::default();
    options.backfill.concurrency = Some(CONCURRENCY as u32);
    let running = tokio::spawn(async move { runner.run(&options).await.expect("run") });
    let samples = sample_write_units(&proxy, &running).await;
    let report = running.await.unwrap();
    assert!(report.succeeded(), "{report:?}");
    assert!(scan_all(&world.client, &world.table).await.iter().all(is_migrated));

    assert!(samples.len() > WARM_UP + 5, "the run must outlast the warm-up: {} samples", samples.len());
    let ((t0, u0), (t1, u1)) = (samples[WARM_UP], samples[samples.len() - 2]);
    let window = t1.duration_since(t0).as_secs_f64();
    let requests = ProxyStats::get(&proxy.stats().requests) as f64;
    let settled = Settled {
        sustained: (u1 - u0) / window,
        // The table itself lets through at most W per second plus what it had saved when the window
        // opened (its burst credit) plus the requests in flight when it ran out (admitted, then
        // charged): that slack, spread over the window, is the only way past W.
        slack: (W * capacity.burst_seconds + CONCURRENCY as f64) / window,
        throttled_share: ProxyStats::get(&proxy.stats().throttled) as f64 / requests,
        summary: report.migrations[0].backfills[0].clone(),
    };
    eprintln!(
        "sustained {:.1} WCU/s of {W}; throttled {:.2}% of {requests} requests over the whole run",
        settled.sustained,
        settled.throttled_share * 100.0
    );
    assert!(
        (0.8 * W..=W + settled.slack).contains(&settled.sustained),
        "sustained {:.1} WCU/s for a capacity of {W} (+{:.1} of the table's own slack)",
        settled.sustained,
        settled.slack
    );
    settled
}

#[tokio::test]
async fn the_adaptive_limiter_finds_a_capacity_the_table_does_not_state_and_settles_under_it() {
    // An on-demand table (DescribeTable states no capacity) behind a proxy that throttles beyond W:
    // slow start finds the limit, then AIMD holds the rate in the band.
    let world = World::new().await;
    let settled = adaptive_run_at_capacity(&world).await;
    let summary = &settled.summary;
    assert!(summary.retry_reasons.by_reason().contains_key("throttled"), "the limiter met throttling: {summary:?}");
}

#[tokio::test]
async fn on_a_provisioned_table_the_adaptive_limiter_starts_from_its_capacity_and_rarely_throttles() {
    // The table states W in DescribeTable, and the proxy enforces that W: no search, so hardly a
    // throttled request over the whole run (the bar for capacity mode is 1%).
    let world = World::new_for_table(&dynamigrate_tests::unique_name("provisioned")).await;
    dynamigrate_tests::create_provisioned_table(&world.client, &world.table, W as i64, R as i64).await;
    let settled = adaptive_run_at_capacity(&world).await;
    assert!(settled.throttled_share <= 0.01, "throttled {:.2}% of requests", settled.throttled_share * 100.0);
}

#[tokio::test]
async fn fixed_caps_hold_the_write_rate_without_throttling() {
    const ITEMS: usize = 1_500;
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    let proxy = FaultProxy::start(&endpoint(), Faults::default()).await.unwrap();
    let runner = world.runner_via(&proxy.endpoint, backfill());
    let mut options = RunOptions::default();
    options.backfill.max_wcu = Some(200.0);
    options.backfill.rate_mode = Some(dynamigrate::backfill::RateMode::Fixed);
    let report = runner.run(&options).await.unwrap();
    assert!(report.succeeded(), "{report:?}");
    let summary = &report.migrations[0].backfills[0];
    let per_second = summary.write_units / (summary.duration_ms as f64 / 1000.0);
    eprintln!("{:.0} WCU in {} ms: {per_second:.1} WCU/s", summary.write_units, summary.duration_ms);
    assert!(summary.write_units >= ITEMS as f64, "consumed capacity is reported: {summary:?}");
    assert!(per_second <= 200.0 * 1.05, "the cap holds: {per_second:.1} WCU/s");
}

#[tokio::test]
async fn a_backfill_that_fails_part_way_records_what_it_did_and_the_next_run_resumes() {
    const ITEMS: usize = 3_000;
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    let proxy = FaultProxy::start(&endpoint(), Faults::default()).await.unwrap();
    let runner = world.runner_via(&proxy.endpoint, backfill());
    let mut options = RunOptions::default();
    options.backfill.segments = Some(2);
    options.backfill.page_size = Some(100);
    options.backfill.page_delay_ms = Some(100);
    options.backfill.rate_mode = Some(dynamigrate::backfill::RateMode::Fixed);
    let running = tokio::spawn(async move { runner.run(&options).await });
    wait_for_progress(&world, 600).await;
    // From now on DynamoDB refuses every scan page, a failure no retry fixes.
    proxy.set_faults(Faults { rejected: 1.0, operations: Some(vec!["Scan".into()]), ..Faults::default() });
    let report = running.await.unwrap().expect("the run ends normally, with the migration failed");
    assert!(!report.succeeded(), "{report:?}");

    let migration = &report.migrations[0];
    let error = migration.error.as_deref().unwrap_or_default();
    assert!(error.contains("backfill main stopped") && error.contains("ValidationException"), "{error}");
    let outcome = migration.outcome;
    assert!(outcome.items_processed >= 600, "the partial counts are kept: {outcome:?}");
    assert_eq!(outcome.items_modified, outcome.items_processed);
    let summary = &migration.backfills[0];
    assert!(!summary.completed);
    assert_eq!(summary.counts.processed, outcome.items_processed, "the summary says the same");
    let attempt = world.attempts().await.pop().unwrap();
    assert_eq!(attempt.state, AttemptState::Failed);
    assert_eq!((attempt.items_processed, attempt.items_modified), (outcome.items_processed, outcome.items_modified));
    assert!(!world.checkpoints().await.is_empty(), "checkpoints kept to resume");

    proxy.set_faults(Faults::default());
    let resumed = world.runner_via(&proxy.endpoint, backfill()).run(&RunOptions::default()).await.unwrap();
    assert!(resumed.succeeded(), "{resumed:?}");
    assert!(resumed.migrations[0].backfills[0].resumed);
    assert!(scan_all(&world.client, &world.table).await.iter().all(is_migrated));
}
