//! `bench local-costs`: what DynamoDB Local's own CPU pays for each kind of request a backfill
//! sends, read from its process (`DYNAMIGRATE_TEST_DDB_PID`, set by scripts/with-dynamodb-local.sh).
//! On this two-core machine Local and the client share the cores, and at 0 and 20 ms round trips
//! Local's CPU is what caps a run; so a request shape that costs Local more (smaller scan pages, a
//! checkpoint transaction per page) shows up as throughput there, though on DynamoDB itself it costs
//! a round trip and a few write units. These figures say how much, so that nobody tunes the product
//! to Local. Requests go one at a time (scan segments in parallel), so the figures are Local's
//! cost per request, not its queueing; what it spends idle is printed beside them. Rounds alternate
//! the order (ABBA).

use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Put, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use dynamigrate::backfill::Expressions;
use dynamigrate::{Change, Guard, Item};
use dynamigrate_tests::fixtures::{expected_metadata, item_number};
use dynamigrate_tests::{client, create_table, put_items, seed_items, unique_name};
use tokio::task::JoinSet;

use super::requests::{metadata_scan, put_all, set_metadata};

/// Requests of each single-request kind a round sends.
const REQUESTS: u32 = 200;
/// The conditional updates a round sends, each to items not written yet: the hand loop's
/// condition on the version alone, and the guards dynamigrate builds.
const UPDATES: [&str; 3] = ["update, hand loop's condition", "update, version guard", "update, item guard"];
/// Updates of each kind a round sends: more than other kinds, for the guards differ by a tenth of
/// a millisecond and Local's CPU is read in hundredths of a second.
const UPDATE_REQUESTS: usize = 1000;

/// Seeds `items` items, then prints Local's CPU per request kind, `rounds` times.
pub async fn run(items: usize, rounds: usize) {
    if local_cpu_seconds().is_none() {
        eprintln!("bench local-costs reads DynamoDB Local's CPU from its process: run it under scripts/with-dynamodb-local.sh");
        std::process::exit(2);
    }
    // The batches write items 1 to 25 × REQUESTS; the updates take the next ones, unwritten.
    let first_update = 25 * REQUESTS as usize;
    let needed = first_update + UPDATES.len() * UPDATE_REQUESTS * rounds;
    if items < needed {
        eprintln!("bench local-costs needs at least {needed} items for {rounds} rounds");
        std::process::exit(2);
    }
    let client = client().await;
    let table = unique_name("bench-costs");
    create_table(&client, &table).await;
    let seeds = seed_items(items);
    let unwritten = seeds[first_update..needed].to_vec();
    let mut unwritten = unwritten.chunks(UPDATE_REQUESTS);
    put_items(&client, &table, seeds).await;
    let history = lease_item(&client, &table).await;
    println!(
        "DynamoDB Local's CPU per request ({items} items, {REQUESTS} single requests a kind, \
         {UPDATE_REQUESTS} updates, one at a time):"
    );
    for round in 1..=rounds {
        let mut kinds =
            vec!["idle", "scan 8x1MB", "scan 16x1000", "checkpoint transaction", "conditional put", "batch of 25"];
        kinds.extend(UPDATES);
        if round % 2 == 0 {
            kinds.reverse();
        }
        for kind in kinds {
            let before = local_cpu_seconds().unwrap_or(0.0);
            let count = match kind {
                "idle" => idle().await,
                "scan 8x1MB" => scan(&client, &table, 8, None).await,
                "scan 16x1000" => scan(&client, &table, 16, Some(1000)).await,
                "checkpoint transaction" => transactions(&client, &history).await,
                "conditional put" => puts(&client, &history).await,
                "batch of 25" => batches(&client, &table).await,
                update => {
                    let guard = match update {
                        "update, version guard" => Some(Guard::Version("version".into())),
                        "update, item guard" => Some(Guard::Item),
                        _ => None,
                    };
                    updates(&client, &table, unwritten.next().unwrap_or_default(), guard.as_ref()).await
                }
            };
            let ms = (local_cpu_seconds().unwrap_or(0.0) - before) * 1000.0;
            match kind {
                "scan 8x1MB" | "scan 16x1000" => {
                    println!("round {round}: {kind}: {:.1} ms per 1,000 items", ms * 1000.0 / count as f64);
                }
                "idle" => println!("round {round}: idle: {ms:.1} ms a second"),
                _ => println!("round {round}: {kind}: {:.2} ms each", ms / count as f64),
            }
        }
    }
    for name in [&table, &history] {
        client.delete_table().table_name(name).send().await.ok();
    }
}

/// CPU seconds DynamoDB Local has spent, when its process is known (`DYNAMIGRATE_TEST_DDB_PID`,
/// set by scripts/with-dynamodb-local.sh). On two shared cores at 0 and 20 ms round trips Local's
/// CPU is what caps a run, so what a run costs it per item is reported beside the client's.
pub fn local_cpu_seconds() -> Option<f64> {
    let pid = std::env::var("DYNAMIGRATE_TEST_DDB_PID").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // utime and stime, in clock ticks of 1/100 s: the 12th and 13th fields after the command name,
    // which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// A second of nothing: what Local spends meanwhile (its collector, its timers) is in every figure.
async fn idle() -> u64 {
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    1
}

/// A parallel scan of the seed scenario's items (its filter), `segments` at once; the items read.
async fn scan(client: &Client, table: &str, segments: u32, limit: Option<i32>) -> u64 {
    let mut tasks = JoinSet::new();
    for segment in 0..segments {
        let scan = metadata_scan(client, table, segment, segments).set_limit(limit);
        tasks.spawn(async move {
            let mut pages = scan.into_paginator().send();
            let mut count = 0;
            while let Some(page) = pages.next().await {
                count += page.expect("scan").count as u64;
            }
            count
        });
    }
    tasks.join_all().await.into_iter().sum()
}

/// A history table with a lease item, as a backfill's checkpoints are fenced by.
async fn lease_item(client: &Client, table: &str) -> String {
    let history = format!("{table}-history");
    create_table(client, &history).await;
    let lease = Item::from([
        ("pk".to_string(), AttributeValue::S("LOCK".into())),
        ("sk".to_string(), AttributeValue::S("LOCK".into())),
        ("run_id".to_string(), AttributeValue::S("run-1".into())),
    ]);
    client.put_item().table_name(&history).set_item(Some(lease)).send().await.expect("lease");
    history
}

/// A checkpoint item of segment `n`: its position and counts.
fn checkpoint(n: u32) -> Item {
    let position = Item::from([
        ("pk".to_string(), AttributeValue::S(format!("ITEM#{n}"))),
        ("sk".to_string(), AttributeValue::S("METADATA".into())),
    ]);
    Item::from([
        ("pk".to_string(), AttributeValue::S("CHECKPOINT#bench".into())),
        ("sk".to_string(), AttributeValue::S(format!("SEGMENT#{}", n % 16))),
        ("last_key".to_string(), AttributeValue::M(position)),
        ("processed".to_string(), AttributeValue::N(n.to_string())),
        ("run_id".to_string(), AttributeValue::S("run-1".into())),
    ])
}

/// Checkpoint saves as a backfill sends them: a Put and a check of the lease, in one transaction.
async fn transactions(client: &Client, history: &str) -> u64 {
    for n in 0..REQUESTS {
        let check = ConditionCheck::builder()
            .table_name(history)
            .key("pk", AttributeValue::S("LOCK".into()))
            .key("sk", AttributeValue::S("LOCK".into()))
            .condition_expression("run_id = :me")
            .expression_attribute_values(":me", AttributeValue::S("run-1".into()))
            .build()
            .expect("check");
        let put = Put::builder().table_name(history).set_item(Some(checkpoint(n))).build().expect("put");
        let items = vec![
            TransactWriteItem::builder().condition_check(check).build(),
            TransactWriteItem::builder().put(put).build(),
        ];
        client.transact_write_items().set_transact_items(Some(items)).send().await.expect("transaction");
    }
    u64::from(REQUESTS)
}

/// The same checkpoint as a lone conditional PutItem (on its own run id, a condition that always
/// holds, so every round writes), for comparison.
async fn puts(client: &Client, history: &str) -> u64 {
    for n in 0..REQUESTS {
        client
            .put_item()
            .table_name(history)
            .set_item(Some(checkpoint(n)))
            .condition_expression("attribute_not_exists(#r) OR #r = :me")
            .expression_attribute_names("#r", "run_id")
            .expression_attribute_values(":me", AttributeValue::S("run-1".into()))
            .send()
            .await
            .expect("conditional put");
    }
    u64::from(REQUESTS)
}

/// BatchWriteItems of 25 migrated seed items, as batch mode sends them.
async fn batches(client: &Client, table: &str) -> u64 {
    let items = seed_items(25 * REQUESTS as usize);
    for chunk in items.chunks(25) {
        put_all(client, table, chunk.to_vec()).await;
    }
    u64::from(REQUESTS)
}

/// Conditional updates of `items`, none migrated yet, under `guard` as dynamigrate builds it, or
/// (None) the hand loop's condition on the version alone.
async fn updates(client: &Client, table: &str, items: &[Item], guard: Option<&Guard>) -> u64 {
    for item in items {
        let update = match guard {
            Some(guard) => guarded(client, table, item, guard),
            None => set_metadata(client, table, item).condition_expression("attribute_not_exists(#v)"),
        };
        update.send().await.expect("conditional update");
    }
    items.len() as u64
}

/// The seed scenario's update of `item` as dynamigrate's guarded writer sends it.
fn guarded(client: &Client, table: &str, item: &Item, guard: &Guard) -> UpdateItemFluentBuilder {
    let change = Change::update()
        .set("metadata", expected_metadata(item_number(item)))
        .set("version", AttributeValue::N("2".into()));
    let keys = ["pk".to_string(), "sk".to_string()];
    let e = Expressions::build(&change, item, guard, &keys).expect("a guard within 4 KB");
    client
        .update_item()
        .table_name(table)
        .key("pk", item["pk"].clone())
        .key("sk", item["sk"].clone())
        .set_update_expression(e.update)
        .condition_expression(e.condition)
        .set_expression_attribute_names(Some(e.names.into_iter().collect()))
        .set_expression_attribute_values(Some(e.values.into_iter().collect()))
}
