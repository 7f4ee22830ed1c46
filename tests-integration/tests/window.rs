//! The in-flight window at a real round trip: the fault proxy delays every request, as a region
//! away would. A fixed window of 16 would cap these runs at 16 ÷ round trip; the adaptive one must
//! widen, report the round trip it saw, and stay where `concurrency` pins it.

use std::time::Duration;

use dynamigrate::backfill::START_WINDOW;
use dynamigrate::{BackfillSummary, RunOptions};
use dynamigrate_tests::fixtures::{is_migrated, AddMetadata};
use dynamigrate_tests::proxy::{FaultProxy, Faults};
use dynamigrate_tests::{endpoint, put_items, scan_all, seed_items, World};

const ITEMS: usize = 4_000;
const LATENCY: Duration = Duration::from_millis(40);

async fn run_at_latency(concurrency: Option<u32>) -> BackfillSummary {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;
    let faults = Faults { latency: LATENCY, ..Faults::default() };
    let proxy = FaultProxy::start(&endpoint(), faults).await.unwrap();
    let runner = world.runner_via(&proxy.endpoint, vec![Box::new(AddMetadata::default())]);
    let mut options = RunOptions::default();
    options.backfill.concurrency = concurrency;
    let report = runner.run(&options).await.expect("run");
    assert!(report.succeeded(), "{report:?}");
    let items = scan_all(&world.client, &world.table).await;
    assert_eq!(items.len(), ITEMS);
    assert!(items.iter().all(is_migrated), "every item migrated");
    report.migrations[0].backfills[0].clone()
}

#[tokio::test]
async fn at_a_long_round_trip_the_window_widens_and_the_summary_reports_the_round_trip() {
    let summary = run_at_latency(None).await;
    let round_trip = summary.round_trip_ms.expect("a round trip was measured");
    assert!(round_trip >= LATENCY.as_secs_f64() * 1000.0, "{round_trip} ms");
    assert!(!summary.window_pinned);
    assert!(summary.largest_window > START_WINDOW, "the window widened: {summary}");
    assert!(summary.to_string().contains("window"), "{summary}");
}

#[tokio::test]
async fn concurrency_pins_the_window() {
    let summary = run_at_latency(Some(8)).await;
    assert!(summary.window_pinned);
    assert_eq!((summary.window, summary.largest_window), (8, 8), "{summary}");
    assert!(summary.to_string().contains("window 8 pinned"), "{summary}");
}
