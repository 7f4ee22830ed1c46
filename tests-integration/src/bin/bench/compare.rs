//! The comparison rounds: every chosen variant `--repeat` times, interleaved (ABBA), on a freshly
//! seeded table each, optionally through a proxy that adds a round trip; then medians and the
//! ratios of dynamigrate to its baselines, round by round. With `--only hand`, a sweep of the
//! hand-written loops' window comes first, and the rounds compare with the best of it.

use std::collections::HashMap;
use std::time::Instant;

use aws_sdk_dynamodb::Client;
use dynamigrate_tests::{create_table, put_items, seed_items, unique_name};

use super::{median, middle, print_result, run_worker, verify, Options};

/// Windows the sweep tries for the hand-written loops: requests in flight, one item each or 25.
const UPDATE_SWEEP: [usize; 3] = [32, 128, 512];
const BATCH_SWEEP: [usize; 3] = [4, 16, 64];

type Results = HashMap<String, Vec<serde_json::Value>>;

/// One measured run on a fresh table of `items`; the table is dropped after.
async fn measure(
    client: &Client,
    variant: &str,
    items: usize,
    via: Option<&str>,
    args: &[String],
) -> serde_json::Value {
    let table = unique_name("bench-run");
    create_table(client, &table).await;
    let seeding = Instant::now();
    put_items(client, &table, seed_items(items)).await;
    eprintln!("seeded {items} items in {:.1}s", seeding.elapsed().as_secs_f64());
    // A project has its history table before it runs a backfill: made here, outside the measured run.
    let history = super::history(&table);
    dynamigrate::Ledger::new(client.clone(), history.clone()).ensure_table().await.expect("history table");
    let result = run_worker(variant, &table, args, via).await;
    verify(client, &table, items).await;
    for table in [&table, &history] {
        client.delete_table().table_name(table).send().await.ok();
    }
    result
}

/// The write modes `--only` asks the hand-written loops for: both with `hand`, one with
/// `hand-update` or `hand-batch` (a batch run needs a larger table to outlast the window's ramp, and
/// an update sweep on one would take long).
pub fn swept_modes(only: Option<&str>) -> Option<&'static [&'static str]> {
    match only? {
        "hand" => Some(&["update", "batch"]),
        "hand-update" => Some(&["update"]),
        "hand-batch" => Some(&["batch"]),
        _ => None,
    }
}

/// The hand-written loops at each window of the sweep, once each, on a smaller table, then the best
/// window over 16 segments rather than 8; returns the variants at their best (`hand-update@128`,
/// `hand-batch@16/16`).
pub async fn sweep(
    client: &Client,
    options: &Options,
    modes: &[&str],
    via: Option<&str>,
    args: &[String],
) -> Vec<String> {
    let items = (options.items / 2).max(5_000);
    let mut best = Vec::new();
    for mode in modes {
        let windows = if *mode == "batch" { BATCH_SWEEP } else { UPDATE_SWEEP };
        let mut scored = Vec::new();
        for window in windows {
            let variant = format!("hand-{mode}@{window}");
            let result = measure(client, &variant, items, via, args).await;
            print_result(&format!("sweep {variant}"), &result);
            scored.push((result["items_per_second"].as_f64().unwrap_or(0.0), variant));
        }
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        let wider = format!("{}/16", scored[0].1);
        let result = measure(client, &wider, items, via, args).await;
        print_result(&format!("sweep {wider}"), &result);
        scored.push((result["items_per_second"].as_f64().unwrap_or(0.0), wider));
        scored.sort_by(|a, b| b.0.total_cmp(&a.0));
        println!("sweep: best hand-{mode} is {}", scored[0].1);
        best.push(scored[0].1.clone());
    }
    best
}

/// Runs `variants` in ABBA rounds and prints medians and ratios.
pub async fn rounds(client: &Client, options: &Options, variants: &[String], via: Option<&str>, args: &[String]) {
    let mut results = Results::new();
    for round in 1..=options.repeat {
        let mut order = variants.to_vec();
        if round % 2 == 0 {
            order.reverse();
        }
        for variant in &order {
            let result = measure(client, variant, options.items, via, args).await;
            print_result(&format!("{variant} #{round}"), &result);
            results.entry(base_name(variant).to_string()).or_default().push(result);
        }
    }
    if options.repeat > 1 {
        println!("medians of {} runs:", options.repeat);
        for variant in variants {
            print_result(variant, &median(&results[base_name(variant)]));
        }
    }
    ratios(&results);
}

/// `hand-update@128` counts as `hand-update`.
fn base_name(variant: &str) -> &str {
    variant.split('@').next().unwrap_or(variant)
}

/// dynamigrate against each baseline present, mode by mode: ratios round by round (the two runs
/// of a round are neighbours in time), then their median.
fn ratios(results: &Results) {
    let pairs = [
        ("raw", "dynamigrate"),
        ("hand", "dynamigrate"),
        ("hand", "vguard"),
        ("dynamigrate", "script"),
        ("constant", "toml"),
    ];
    for ((base, variant), mode) in pairs.iter().flat_map(|p| ["update", "batch"].map(|m| (*p, m))) {
        let (Some(theirs), Some(ours)) =
            (results.get(&format!("{base}-{mode}")), results.get(&format!("{variant}-{mode}")))
        else {
            continue;
        };
        let ratios = |measure: &str| -> Vec<f64> {
            let value = |r: &serde_json::Value| r[measure].as_f64().unwrap_or(0.0);
            theirs.iter().zip(ours).map(|(theirs, ours)| value(ours) / value(theirs).max(1e-9)).collect()
        };
        let (throughput, cpu, rss) = (ratios("items_per_second"), ratios("cpu_ms_per_1000"), ratios("peak_rss_kb"));
        let rounds: Vec<String> = throughput.iter().map(|r| format!("{r:.2}")).collect();
        let local = ratios("local_cpu_ms_per_1000");
        let local = (middle(&local) > 0.0).then(|| format!(", {:.2}x Local CPU per item", middle(&local)));
        println!(
            "{mode:>6} mode: {variant} / {base} = {:.2}x throughput (rounds: {}), {:.2}x client CPU per item, {:.2}x peak RSS{}",
            middle(&throughput),
            rounds.join(", "),
            middle(&cpu),
            middle(&rss),
            local.unwrap_or_default(),
        );
    }
}
