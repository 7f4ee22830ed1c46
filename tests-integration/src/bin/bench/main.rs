//! The benchmark: dynamigrate's backfill against a minimal raw-SDK loop doing the same requests at
//! the same concurrency, on DynamoDB Local; and, through the capacity proxy, how close the adaptive
//! limiter gets to a provisioned write capacity. Run it with `scripts/bench.sh` (see
//! docs/benchmarks.md).
//!
//!   bench [ITEMS] [--concurrency C] [--segments S] [--capacity W] [--only VARIANT] [--repeat N]
//!         [--page N] [--rate-mode adaptive|fixed]
//!   bench worker VARIANT TABLE      (one measured run in its own process)
//!   bench seed TABLE ITEMS          (a seeded table, for profiling one worker by hand)
//!   bench transform-cost [ITEMS]    (each transform's own µs per item: closure, TypeScript, TOML)
//!   bench versions [ITEMS] [--segments S] [--repeat N]   (`versions` against a hand-written count)
//!
//! Each variant runs in a child process that reports its own CPU time (getrusage) and peak RSS
//! (VmHWM), so the numbers are the client's alone.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use dynamigrate::backfill::RateMode;
use dynamigrate::{RunOptions, WriteMode};
use dynamigrate_tests::fixtures::AddMetadata;
use dynamigrate_tests::{client, create_table, endpoint, put_items, seed_items, unique_name, World};
use serde_json::json;
use tokio::task::JoinSet;

mod capacity;
mod census;
mod files;
mod hand;
mod raw;

use raw::raw_loop;

const VARIANTS: [&str; 11] = [
    // What a good engineer would hand-write for the job (see hand.rs); run with --only hand.
    "hand-update",
    "raw-update",
    "dynamigrate-update",
    "raw-batch",
    "dynamigrate-batch",
    // Migration files against the same backfill as a Rust closure (see files.rs).
    "script-update",
    "script-batch",
    "constant-update",
    "toml-update",
    "constant-batch",
    "toml-batch",
];

/// Without --only: the engine against the raw loop. `--only files`: the file variants and their
/// closure twins; any other word: the variants whose name contains it.
fn chosen(only: Option<&str>) -> Vec<&'static str> {
    VARIANTS
        .iter()
        .copied()
        .filter(|v| match only {
            None => v.starts_with("raw-") || v.starts_with("dynamigrate-"),
            Some("files") => !v.starts_with("raw-"),
            Some("hand") => *v == "hand-update" || *v == "dynamigrate-update",
            Some(word) => v.contains(word),
        })
        .collect()
}

struct Options {
    items: usize,
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
            "--concurrency" => options.concurrency = value().parse().unwrap_or(16),
            "--segments" => options.segments = value().parse().unwrap_or(4),
            "--capacity" => options.capacity = value().parse().unwrap_or(500.0),
            "--only" => options.only = Some(value()),
            "--page" => options.page = value().parse().unwrap_or(options.page),
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
    if args.first().map(String::as_str) == Some("seed") {
        // For profiling one variant by hand: `bench seed TABLE ITEMS`, then `bench worker VARIANT TABLE`.
        let (client, table) = (client().await, &args[1]);
        create_table(&client, table).await;
        put_items(&client, table, seed_items(parse(&args[2..]).items)).await;
        return;
    }
    let options = parse(&args);
    let client = client().await;
    println!(
        "dynamigrate benchmark: {} items, concurrency {}, {} segments, DynamoDB Local at {}",
        options.items,
        options.concurrency,
        options.segments,
        endpoint()
    );
    // Warm DynamoDB Local's JIT first, so the first measured variant is not penalised.
    let warm = unique_name("bench-warmup");
    create_table(&client, &warm).await;
    put_items(&client, &warm, seed_items(20_000)).await;
    run_worker("raw-update", &warm, &args).await;

    // Each variant `--repeat` times (default 3), interleaved, so a slow minute of this shared
    // machine does not land on one variant only. Every other round runs in reverse order (ABBA), so
    // a server that slows down over the hour does not always favour whichever variant goes first.
    let chosen = chosen(options.only.as_deref());
    let mut results: HashMap<&str, Vec<serde_json::Value>> = HashMap::new();
    for round in 1..=options.repeat {
        let mut order = chosen.clone();
        if round % 2 == 0 {
            order.reverse();
        }
        for &variant in &order {
            let table = unique_name(&format!("bench-{variant}"));
            create_table(&client, &table).await;
            let seeding = Instant::now();
            put_items(&client, &table, seed_items(options.items)).await;
            eprintln!("seeded {} items in {:.1}s", options.items, seeding.elapsed().as_secs_f64());
            let result = run_worker(variant, &table, &args).await;
            verify(&client, &table, options.items).await;
            print_result(&format!("{variant} #{round}"), &result);
            results.entry(variant).or_default().push(result);
            client.delete_table().table_name(&table).send().await.ok();
        }
    }
    if options.repeat > 1 {
        println!("medians of {} runs:", options.repeat);
    }
    let medians: HashMap<&str, serde_json::Value> =
        results.iter().map(|(variant, runs)| (*variant, median(runs))).collect();
    for &variant in &chosen {
        if options.repeat > 1 {
            print_result(variant, &medians[variant]);
        }
    }
    let pairs = [("raw", "dynamigrate"), ("hand", "dynamigrate"), ("dynamigrate", "script"), ("constant", "toml")];
    for ((base, variant), mode) in pairs.iter().flat_map(|p| ["update", "batch"].map(|m| (*p, m))) {
        let (Some(raw), Some(ours)) =
            (results.get(format!("{base}-{mode}").as_str()), results.get(format!("{variant}-{mode}").as_str()))
        else {
            continue;
        };
        // Ratios round by round (the two runs of a round are neighbours in time), then their median.
        let ratios = |measure: &str| -> Vec<f64> {
            let value = |r: &serde_json::Value| r[measure].as_f64().unwrap_or(0.0);
            raw.iter().zip(ours).map(|(raw, ours)| value(ours) / value(raw).max(1e-9)).collect()
        };
        let (throughput, cpu) = (ratios("items_per_second"), ratios("cpu_ms_per_1000"));
        let rounds: Vec<String> = throughput.iter().map(|r| format!("{r:.2}")).collect();
        println!(
            "{mode:>6} mode: {variant} / {base} = {:.2}x throughput (rounds: {}), {:.2}x client CPU per item",
            middle(&throughput),
            rounds.join(", "),
            middle(&cpu)
        );
    }
    if options.only.as_deref().is_none_or(|o| o == "capacity") {
        capacity::run(&client, &options, true).await;
        capacity::run(&client, &options, false).await;
    }
}

/// Each measure's median over the runs of one variant (taken measure by measure).
fn median(runs: &[serde_json::Value]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for measure in ["items_per_second", "seconds", "cpu_ms_per_1000", "peak_rss_kb"] {
        let values: Vec<f64> = runs.iter().filter_map(|r| r[measure].as_f64()).collect();
        out.insert(measure.into(), json!(middle(&values)));
    }
    serde_json::Value::Object(out)
}

/// The median (the upper one of an even count).
fn middle(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

async fn run_worker(variant: &str, table: &str, args: &[String]) -> serde_json::Value {
    let exe = std::env::current_exe().expect("bench executable");
    let output = tokio::process::Command::new(exe)
        .arg("worker")
        .arg(variant)
        .arg(table)
        .args(args)
        .output()
        .await
        .expect("run worker");
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|_| panic!("worker {variant} failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr)))
}

fn print_result(variant: &str, r: &serde_json::Value) {
    println!(
        "{variant:>20}: {:>7.0} items/s  {:>6.1} s  client CPU {:>6.1} ms/1000 items  peak RSS {:>5.1} MB",
        r["items_per_second"].as_f64().unwrap_or(0.0),
        r["seconds"].as_f64().unwrap_or(0.0),
        r["cpu_ms_per_1000"].as_f64().unwrap_or(0.0),
        r["peak_rss_kb"].as_f64().unwrap_or(0.0) / 1024.0,
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

/// One measured run, in this process; prints JSON with its own CPU time and peak RSS.
async fn worker(variant: &str, table: &str, options: &Options) {
    let started = Instant::now();
    let items = match variant {
        "raw-update" => raw_loop(table, options, false).await,
        "raw-batch" => raw_loop(table, options, true).await,
        "hand-update" => hand::update(table, options).await,
        "dynamigrate-update" => ours(table, options, WriteMode::Update).await,
        "dynamigrate-batch" => ours(table, options, WriteMode::Batch).await,
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

async fn ours(table: &str, options: &Options, mode: WriteMode) -> u64 {
    let mut world = World::new_for_table(table).await;
    world.history = unique_name("bench-history");
    let runner = world.runner_via(&endpoint(), vec![Box::new(AddMetadata::default())]);
    let mut run = run_options(options);
    run.backfill.write_mode = Some(mode);
    let report = runner.run(&run).await.expect("backfill");
    assert!(report.succeeded(), "{report:?}");
    report.migrations[0].outcome.items_modified
}

/// The bench's knobs as a run's options (the write mode is the variant's).
fn run_options(options: &Options) -> RunOptions {
    let mut run = RunOptions::default();
    run.backfill.segments = Some(options.segments);
    run.backfill.concurrency = Some(options.concurrency as u32);
    run.backfill.page_size = Some(options.page);
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
