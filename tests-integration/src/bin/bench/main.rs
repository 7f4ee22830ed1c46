//! The benchmark: dynamigrate's backfill against what a good engineer would hand-write for the same
//! job, on DynamoDB Local, at the round trips a real client sees (a proxy adds them); and, through
//! the capacity proxy, how close the adaptive limiter gets to a provisioned write capacity. Run it
//! with `scripts/bench.sh` (see docs/benchmarks.md).
//!
//!   bench [ITEMS] [--latency MS[,MS...]] [--only VARIANT] [--repeat N] [--capacity W]
//!         [--concurrency C] [--segments S] [--page N] [--rate-mode adaptive|fixed]
//!   bench worker VARIANT TABLE      (one measured run in its own process)
//!   bench seed TABLE ITEMS          (a seeded table, for profiling one worker by hand)
//!   bench transform-cost [ITEMS]    (each transform's own µs per item: closure, TypeScript, TOML)
//!   bench versions [ITEMS] [--segments S] [--repeat N]   (`versions` against a hand-written count)
//!   bench local-costs [ITEMS] [--repeat N]   (DynamoDB Local's CPU per request kind)
//!
//! dynamigrate runs at its defaults unless `--concurrency`, `--segments` or `--page` is given.
//! Each variant runs in a child process that reports its own CPU time (getrusage) and peak RSS
//! (VmHWM), so the numbers are the client's alone; the latency proxy runs in this process. What
//! DynamoDB Local's process spent meanwhile is reported beside them.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use dynamigrate::backfill::RateMode;
use dynamigrate::{RunOptions, WriteMode};
// Linked for its global allocator (jemalloc), which the `dynamigrate` binary runs on: every variant,
// the hand-written loops included, is measured on the allocator the product ships with.
use dynamigrate_cli as _;
use dynamigrate_tests::fixtures::AddMetadata;
use dynamigrate_tests::proxy::{FaultProxy, Faults};
use dynamigrate_tests::{client, create_table, endpoint, put_items, seed_items, unique_name, World};
use serde_json::json;
use tokio::task::JoinSet;

mod capacity;
mod census;
mod compare;
mod files;
mod hand;
mod local_costs;
mod raw;
mod requests;

use raw::raw_loop;

const VARIANTS: [&str; 12] = [
    // The mirror loop: dynamigrate's own requests (full-item guard, its segments and pages) by hand.
    // It isolates the engine's overhead from its choices (see raw.rs).
    "raw-update",
    "dynamigrate-update",
    "raw-batch",
    "dynamigrate-batch",
    // dynamigrate with the version guard: the fair twin of the hand-written update loop.
    "vguard-update",
    // Migration files against the same backfill as a Rust closure (see files.rs).
    "script-update",
    "script-batch",
    "constant-update",
    "toml-update",
    "constant-batch",
    "toml-batch",
    // The hand-written loops (see hand.rs) at their best window: `--only hand` sweeps for it.
    "hand",
];

/// Without --only: the engine against the mirror loop. `--only files`: the file variants and their
/// closure twins; `--only hand`: dynamigrate's three against the hand-written loops (after a
/// window sweep), `hand-update` or `hand-batch` one write mode's; any other word: the variants
/// whose name contains it.
fn chosen(only: Option<&str>) -> Vec<String> {
    let swept = compare::swept_modes(only);
    let chosen = VARIANTS.iter().copied().filter(|v| match (only, swept) {
        (_, Some(modes)) => {
            ["dynamigrate-update", "vguard-update", "dynamigrate-batch"].contains(v)
                && modes.iter().any(|mode| v.ends_with(mode))
        }
        (None, _) => v.starts_with("raw-") || v.starts_with("dynamigrate-"),
        (Some("files"), _) => !v.starts_with("raw-") && !v.starts_with("hand") && !v.starts_with("vguard"),
        (Some(word), _) => v.contains(word) && *v != "hand",
    });
    chosen.map(String::from).collect()
}

struct Options {
    items: usize,
    /// Round trips to add, in milliseconds (0: straight to DynamoDB Local).
    latencies: Vec<u64>,
    /// What `--concurrency`, `--segments` and `--page` set: dynamigrate runs with these too, and
    /// at its defaults for the rest.
    tuned: dynamigrate::BackfillSettings,
    concurrency: usize,
    segments: u32,
    capacity: f64,
    only: Option<String>,
    /// Scan page size (Limit) for both loops: dynamigrate's default unless `--page N`.
    page: u32,
    rate_mode: Option<RateMode>,
    repeat: usize,
}

fn parse(args: &[String]) -> Options {
    let mut options = Options {
        items: 200_000,
        latencies: vec![0],
        tuned: dynamigrate::BackfillSettings::default(),
        concurrency: 16,
        segments: 4,
        capacity: 500.0,
        only: None,
        page: dynamigrate::backfill::DEFAULT_PAGE_SIZE,
        rate_mode: None,
        repeat: 3,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().cloned().unwrap_or_default();
        match arg.as_str() {
            "--latency" => options.latencies = value().split(',').filter_map(|ms| ms.trim().parse().ok()).collect(),
            "--concurrency" => {
                options.concurrency = value().parse().unwrap_or(16);
                options.tuned.concurrency = Some(options.concurrency as u32);
            }
            "--segments" => {
                options.segments = value().parse().unwrap_or(4);
                options.tuned.segments = Some(options.segments);
            }
            "--capacity" => options.capacity = value().parse().unwrap_or(500.0),
            "--only" => options.only = Some(value()),
            "--page" => {
                options.page = value().parse().unwrap_or(options.page);
                options.tuned.page_size = Some(options.page);
            }
            "--rate-mode" => options.rate_mode = value().parse().ok(),
            "--repeat" => options.repeat = value().parse().unwrap_or(3).max(1),
            n => options.items = n.replace('_', "").parse().unwrap_or(options.items),
        }
    }
    options
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("worker") {
        let options = parse(&args[3..]);
        worker(&args[1], &args[2], &options).await;
        return;
    }
    if args.first().map(String::as_str) == Some("transform-cost") {
        files::transform_cost(args.get(1).and_then(|n| n.parse().ok()).unwrap_or(200_000));
        return;
    }
    if args.first().map(String::as_str) == Some("versions") {
        census::compare(&parse(&args[1..]), &args[1..]).await;
        return;
    }
    if args.first().map(String::as_str) == Some("local-costs") {
        let options = parse(&args[1..]);
        local_costs::run(options.items, options.repeat).await;
        return;
    }
    if args.first().map(String::as_str) == Some("seed") {
        // For profiling one variant by hand: `bench seed TABLE ITEMS`, then `bench worker VARIANT TABLE`.
        let (client, table) = (client().await, &args[1]);
        create_table(&client, table).await;
        put_items(&client, table, seed_items(parse(&args[2..]).items)).await;
        return;
    }
    if args.first().map(String::as_str) == Some("proxy") {
        // For a variant by hand at a round trip: `bench proxy MS` prints the proxy's endpoint and
        // serves until killed; give it to the worker as DYNAMIGRATE_TEST_ENDPOINT and
        // AWS_ENDPOINT_URL_DYNAMODB (run_worker below does the same).
        let Some(ms) = args.get(1).and_then(|ms| ms.parse().ok()) else {
            eprintln!("usage: bench proxy MS (the milliseconds to add to each round trip, e.g. 20)");
            std::process::exit(2);
        };
        let latency = Duration::from_millis(ms);
        let proxy = FaultProxy::start(&endpoint(), Faults { latency, ..Faults::default() }).await.expect("proxy");
        println!("{}", proxy.endpoint);
        std::future::pending::<()>().await;
    }
    let options = parse(&args);
    let client = client().await;
    println!("dynamigrate benchmark: {} items, DynamoDB Local at {}", options.items, endpoint());
    // Warm DynamoDB Local's JIT first, so the first measured variant is not penalised.
    let warm = unique_name("bench-warmup");
    create_table(&client, &warm).await;
    put_items(&client, &warm, seed_items(20_000)).await;
    run_worker("raw-update", &warm, &args, None).await;
    // Local compiles each request path the first time it meets it: a first batch run after an
    // update-only warm-up ran at 0.6-0.85x of its later rounds (docs/benchmarks.md).
    run_worker("raw-batch", &warm, &args, None).await;

    let variants = chosen(options.only.as_deref());
    for &latency in &options.latencies {
        let faults = Faults { latency: Duration::from_millis(latency), ..Faults::default() };
        let proxy = match latency {
            0 => None,
            _ => Some(FaultProxy::start(&endpoint(), faults).await.expect("latency proxy")),
        };
        let via = proxy.as_ref().map(|p| p.endpoint.as_str());
        println!("--- round trip + {latency} ms ---");
        let mut variants = variants.clone();
        if let Some(modes) = compare::swept_modes(options.only.as_deref()) {
            variants.extend(compare::sweep(&client, &options, modes, via, &args).await);
        }
        compare::rounds(&client, &options, &variants, via, &args).await;
    }
    if options.only.as_deref().is_none_or(|o| o == "capacity") {
        capacity::run(&client, &options, true).await;
        capacity::run(&client, &options, false).await;
    }
}

/// Each measure's median over the runs of one variant (taken measure by measure).
fn median(runs: &[serde_json::Value]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for measure in ["items_per_second", "seconds", "cpu_ms_per_1000", "peak_rss_kb", "local_cpu_ms_per_1000"] {
        let values: Vec<f64> = runs.iter().filter_map(|r| r[measure].as_f64()).collect();
        // Local's CPU is there only when its process is known: no figure rather than a zero.
        if !values.is_empty() {
            out.insert(measure.into(), json!(middle(&values)));
        }
    }
    serde_json::Value::Object(out)
}

/// The median; of an even count, the mean of the two middle values (taking the upper one flattered
/// whichever side a two-round ratio favoured).
fn middle(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 0 => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        n => sorted[n / 2],
    }
}

/// Runs one variant in its own process; `via` is the proxy endpoint it talks to, if any.
async fn run_worker(variant: &str, table: &str, args: &[String], via: Option<&str>) -> serde_json::Value {
    let exe = std::env::current_exe().expect("bench executable");
    let mut command = tokio::process::Command::new(exe);
    if let Some(via) = via {
        command.env("DYNAMIGRATE_TEST_ENDPOINT", via).env("AWS_ENDPOINT_URL_DYNAMODB", via);
    }
    let local_before = local_costs::local_cpu_seconds();
    let output = command.arg("worker").arg(variant).arg(table).args(args).output().await.expect("run worker");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut result: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("worker {variant} failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr)));
    if let (Some(before), Some(after)) = (local_before, local_costs::local_cpu_seconds()) {
        let items = result["items"].as_f64().unwrap_or(0.0).max(1.0);
        result["local_cpu_ms_per_1000"] = json!((after - before) * 1e6 / items);
    }
    result
}

fn print_result(variant: &str, r: &serde_json::Value) {
    let local = r["local_cpu_ms_per_1000"].as_f64().map(|ms| format!("  Local CPU {ms:>6.1} ms/1000 items"));
    println!(
        "{variant:>20}: {:>7.0} items/s  {:>6.1} s  client CPU {:>6.1} ms/1000 items  peak RSS {:>5.1} MB{}",
        r["items_per_second"].as_f64().unwrap_or(0.0),
        r["seconds"].as_f64().unwrap_or(0.0),
        r["cpu_ms_per_1000"].as_f64().unwrap_or(0.0),
        r["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
        local.unwrap_or_default(),
    );
}

/// Every item must be migrated (version 2 with metadata), whoever did it.
async fn verify(client: &Client, table: &str, items: usize) {
    // A parallel COUNT scan: a single-segment scan of a million items crawls on DynamoDB Local.
    let mut counts = JoinSet::new();
    for segment in 0..8 {
        let (client, table) = (client.clone(), table.to_string());
        counts.spawn(async move {
            let mut pages = client
                .scan()
                .table_name(&table)
                .segment(segment)
                .total_segments(8)
                .select(aws_sdk_dynamodb::types::Select::Count)
                .filter_expression("version = :two AND attribute_exists(metadata)")
                .expression_attribute_values(":two", AttributeValue::N("2".into()))
                .into_paginator()
                .send();
            let mut migrated = 0;
            while let Some(page) = pages.next().await {
                migrated += page.expect("count scan").count as usize;
            }
            migrated
        });
    }
    let mut migrated = 0;
    while let Some(count) = counts.join_next().await {
        migrated += count.expect("count task");
    }
    assert_eq!(migrated, items, "{table}: not every item was migrated");
}

/// One measured run, in this process; prints JSON with its own CPU time and peak RSS. With
/// `BENCH_LOG=FILE`, dynamigrate's debug log goes to FILE, with the window's judgements at trace level
/// (`BENCH_LOG_FILTER` replaces that filter).
async fn worker(variant: &str, table: &str, options: &Options) {
    if let Some(file) = std::env::var_os("BENCH_LOG").and_then(|path| std::fs::File::create(path).ok()) {
        tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("BENCH_LOG_FILTER")
                    .unwrap_or_else(|_| "dynamigrate=debug,dynamigrate::backfill::window=trace".into()),
            )
            .with_writer(std::sync::Mutex::new(file))
            .with_ansi(false)
            .init();
    }
    let started = Instant::now();
    let items = match variant {
        "raw-update" => raw_loop(table, options, false).await,
        "raw-batch" => raw_loop(table, options, true).await,
        "dynamigrate-update" => ours(table, options, WriteMode::Update, false).await,
        "dynamigrate-batch" => ours(table, options, WriteMode::Batch, false).await,
        "vguard-update" => ours(table, options, WriteMode::Update, true).await,
        hand if hand.starts_with("hand-") => {
            let (mode, shape) = hand.trim_start_matches("hand-").split_once('@').expect("hand-MODE@WINDOW[/SEGMENTS]");
            let (window, segments) = shape.split_once('/').unwrap_or((shape, ""));
            let segments = segments.parse().unwrap_or(hand::SEGMENTS);
            hand::run(table, window.parse().expect("window"), segments, mode == "batch").await
        }
        scan if census::VARIANTS.contains(&scan) => census::worker(scan, table, options).await,
        file => {
            let (kind, mode) = file.split_once('-').expect("variant KIND-MODE");
            let mode = if mode == "batch" { WriteMode::Batch } else { WriteMode::Update };
            let kind = if kind == "script" { "ts" } else { kind };
            files::run(table, kind, mode, run_options(options)).await
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds();
    println!(
        "{}",
        json!({
            "variant": variant, "items": items, "seconds": seconds,
            "items_per_second": items as f64 / seconds,
            "cpu_seconds": cpu, "cpu_ms_per_1000": cpu * 1000.0 / items.max(1) as f64 * 1000.0,
            "peak_rss_kb": peak_rss_kb(),
        })
    );
}

async fn ours(table: &str, options: &Options, mode: WriteMode, version_guard: bool) -> u64 {
    let mut world = World::new_for_table(table).await;
    world.history = history(table);
    let migration = AddMetadata { version_guard, ..AddMetadata::default() };
    let runner = world.runner_via(&endpoint(), vec![Box::new(migration)]);
    let mut run = run_options(options);
    run.backfill.write_mode = Some(mode);
    let report = runner.run(&run).await.expect("backfill");
    assert!(report.succeeded(), "{report:?}");
    report.migrations[0].outcome.items_modified
}

/// The history table of a measured run on `table`, made before the run (see compare.rs).
fn history(table: &str) -> String {
    format!("{table}-history")
}

/// The bench's knobs as a run's options (the write mode is the variant's): dynamigrate's defaults
/// but for the knobs given.
fn run_options(options: &Options) -> RunOptions {
    let mut run = RunOptions::default();
    run.backfill.clone_from(&options.tuned);
    run.backfill.rate_mode = options.rate_mode;
    run
}

fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct we own; RUSAGE_SELF is always valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

fn peak_rss_kb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0.0)
}
