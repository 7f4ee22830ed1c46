//! `bench versions`: `dynamigrate versions` (a census through the page pipeline) against the
//! read a careful engineer would hand-write for the same answer: a parallel scan with the same
//! projection (keys and the version attribute) and segments, full 1 MB pages, counting versions
//! in a map. One seeded table serves every run (the scans only read), in ABBA rounds.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use dynamigrate::versions::Sampling;
use dynamigrate::BackfillSettings;
use dynamigrate_tests::{client, create_table, endpoint, put_items, seed_items, unique_name, World};
use tokio::task::JoinSet;

use super::{middle, print_result, run_worker, Options};

pub const VARIANTS: [&str; 2] = ["raw-count", "dynamigrate-versions"];

/// Seeds one table (a third of the items at v1, the rest at v2), then measures both variants.
pub async fn compare(options: &Options, args: &[String]) {
    let client = client().await;
    let table = unique_name("bench-versions");
    create_table(&client, &table).await;
    let items: Vec<_> = seed_items(options.items)
        .into_iter()
        .enumerate()
        .map(|(i, mut item)| {
            item.insert("version".into(), AttributeValue::N(if i % 3 == 0 { "1" } else { "2" }.into()));
            item
        })
        .collect();
    put_items(&client, &table, items).await;
    // `versions` records its census in the history table, which a project has by then: made here,
    // outside the measured runs.
    dynamigrate::Ledger::new(client.clone(), history(&table)).ensure_table().await.expect("history table");
    println!(
        "versions benchmark: {} items, {} segments, DynamoDB Local at {}",
        options.items,
        options.segments,
        endpoint()
    );
    run_worker("raw-count", &table, args, None).await; // warms DynamoDB Local's JIT
    let mut results: HashMap<&str, Vec<serde_json::Value>> = HashMap::new();
    for round in 1..=options.repeat {
        let mut order = VARIANTS.to_vec();
        if round % 2 == 0 {
            order.reverse();
        }
        for variant in order {
            let result = run_worker(variant, &table, args, None).await;
            assert_eq!(result["items"].as_u64(), Some(options.items as u64), "{variant} counted every item");
            print_result(&format!("{variant} #{round}"), &result);
            results.entry(variant).or_default().push(result);
        }
    }
    let ratio = |measure: &str| -> Vec<f64> {
        let value = |r: &serde_json::Value| r[measure].as_f64().unwrap_or(0.0);
        results["raw-count"]
            .iter()
            .zip(&results["dynamigrate-versions"])
            .map(|(raw, ours)| value(ours) / value(raw).max(1e-9))
            .collect()
    };
    let throughput = ratio("items_per_second");
    let rounds: Vec<String> = throughput.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "versions / raw-count = {:.2}x throughput (rounds: {}), {:.2}x client CPU per item",
        middle(&throughput),
        rounds.join(", "),
        middle(&ratio("cpu_ms_per_1000"))
    );
    client.delete_table().table_name(&table).send().await.ok();
}

/// One measured run: the items counted.
pub async fn worker(variant: &str, table: &str, options: &Options) -> u64 {
    match variant {
        "raw-count" => raw_count(table, options.segments).await,
        _ => {
            let mut world = World::new_for_table(table).await;
            world.history = history(table);
            let runner = world.runner_via(&endpoint(), Vec::new());
            let settings = BackfillSettings { segments: Some(options.segments), ..BackfillSettings::default() };
            runner.versions(None, Sampling::Full, &settings).await.expect("versions").items
        }
    }
}

fn history(table: &str) -> String {
    format!("{table}-history")
}

/// The hand-written census: every segment in its own task, full pages, a map per segment.
async fn raw_count(table: &str, segments: u32) -> u64 {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&sdk);
    let mut tasks = JoinSet::new();
    for segment in 0..segments {
        let (client, table) = (client.clone(), table.to_string());
        tasks.spawn(async move {
            let mut counts: HashMap<String, u64> = HashMap::new();
            let mut pages = client
                .scan()
                .table_name(&table)
                .segment(segment as i32)
                .total_segments(segments as i32)
                .projection_expression("pk, sk, #v")
                .expression_attribute_names("#v", "version")
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for item in page.expect("scan").items() {
                    let version = match item.get("version") {
                        Some(AttributeValue::N(n)) => n.clone(),
                        _ => "none".into(),
                    };
                    *counts.entry(version).or_default() += 1;
                }
            }
            counts
        });
    }
    let mut total: HashMap<String, u64> = HashMap::new();
    while let Some(counts) = tasks.join_next().await {
        for (version, n) in counts.expect("segment") {
            *total.entry(version).or_default() += n;
        }
    }
    total.values().sum()
}
