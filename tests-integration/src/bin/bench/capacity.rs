//! The adaptive limiter against a provisioned capacity, through the capacity proxy.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::Client;
use dynamigrate::backfill::RateMode;
use dynamigrate_tests::fixtures::AddMetadata;
use dynamigrate_tests::proxy::{Capacity, FaultProxy, Faults, ProxyStats};
use dynamigrate_tests::{create_provisioned_table, create_table, endpoint, put_items, seed_items, unique_name, World};

use super::Options;

const LATENCY: Duration = Duration::from_millis(20);

/// Through the proxy at W write units per second: how much of W the adaptive limiter sustains,
/// and what share of requests were throttled. `stated`: the table is provisioned at W, so
/// DescribeTable says what the proxy enforces (as on DynamoDB); otherwise it is an on-demand table
/// and the limiter must find W by itself.
pub async fn run(client: &Client, options: &Options, stated: bool) {
    let w = options.capacity;
    let items = (w * 60.0) as usize;
    let table = unique_name("bench-capacity");
    if stated {
        create_provisioned_table(client, &table, w as i64, 20_000).await;
    } else {
        create_table(client, &table).await;
    }
    put_items(client, &table, seed_items(items)).await;
    // At a 20 ms round trip, as from a client in the table's region: the window must carry W too.
    let faults = Faults { capacity: Some(Capacity::new(w, 20_000.0)), latency: LATENCY, ..Faults::default() };
    let proxy = FaultProxy::start(&endpoint(), faults).await.expect("proxy");
    let mut world = World::new_for_table(&table).await;
    world.history = unique_name("bench-history");
    let runner = world.runner_via(&proxy.endpoint, vec![Box::new(AddMetadata::default())]);
    let mut run = super::run_options(options);
    run.backfill.rate_mode = Some(RateMode::Adaptive);
    let started = Instant::now();
    let running = tokio::spawn(async move { runner.run(&run).await.expect("capacity run") });
    let mut samples = vec![(Instant::now(), 0.0, 0_u64, 0_u64)];
    while !running.is_finished() {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let stats = proxy.stats();
        samples.push((
            Instant::now(),
            stats.write_units(),
            ProxyStats::get(&stats.requests),
            ProxyStats::get(&stats.throttled),
        ));
    }
    let report = running.await.expect("join");
    assert!(report.succeeded());
    let warm = samples.len().min(11) - 1;
    let (t0, u0, r0, h0) = samples[warm];
    let (t1, u1, r1, h1) = samples[samples.len().saturating_sub(2).max(warm)];
    let sustained = (u1 - u0) / t1.duration_since(t0).as_secs_f64().max(1e-3);
    let all_requests = ProxyStats::get(&proxy.stats().requests) as f64;
    let all_throttled = ProxyStats::get(&proxy.stats().throttled) as f64;
    let table_says = if stated { "provisioned at W" } else { "on-demand, W not stated" };
    println!(
        "capacity mode at W = {w} WCU/s ({table_says}), round trip + 20 ms, {items} items in {:.1}s: sustained {sustained:.1} WCU/s ({:.1}% of W) after a 10 s warm-up; \
         throttled {:.2}% of requests after warm-up, {:.2}% over the whole run",
        started.elapsed().as_secs_f64(),
        sustained * 100.0 / w,
        (h1 - h0) as f64 * 100.0 / (r1 - r0).max(1) as f64,
        all_throttled * 100.0 / all_requests.max(1.0),
    );
}
