//! The raw loop the benchmark compares dynamigrate with: what a careful script does with the SDK
//! alone, nothing more.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::requests::{metadata_scan, put_all, set_metadata};
use super::Options;

/// The minimal loop a careful script would write: the same parallel scan (same filter), the same
/// conditional update (or a BatchWriteItem of whole items), the same concurrency, finished tasks
/// reaped as it goes, the SDK's default client. No checkpoints, no limiter, no progress.
pub async fn raw_loop(table: &str, options: &Options, batch: bool) -> u64 {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&sdk);
    let permits = Arc::new(Semaphore::new(options.concurrency));
    let written = Arc::new(AtomicU64::new(0));
    let mut segments = JoinSet::new();
    let options_page = options.page;
    for segment in 0..options.segments {
        let (client, permits, written, table, total) =
            (client.clone(), permits.clone(), written.clone(), table.to_string(), options.segments);
        segments.spawn(async move {
            let mut start = None;
            loop {
                let page = metadata_scan(&client, &table, segment, total)
                    .set_exclusive_start_key(start)
                    .limit(options_page as i32)
                    .send()
                    .await
                    .expect("scan");
                let mut writes = JoinSet::new();
                let items = page.items.unwrap_or_default();
                if batch {
                    for chunk in items.chunks(25) {
                        let permit = permits.clone().acquire_owned().await.expect("permit");
                        while writes.try_join_next().is_some() {}
                        let (client, table, written, chunk) =
                            (client.clone(), table.clone(), written.clone(), chunk.to_vec());
                        writes.spawn(async move {
                            let _permit = permit;
                            written.fetch_add(put_all(&client, &table, chunk).await, Relaxed);
                        });
                    }
                } else {
                    for item in items {
                        let permit = permits.clone().acquire_owned().await.expect("permit");
                        while writes.try_join_next().is_some() {}
                        let (client, table, written) = (client.clone(), table.clone(), written.clone());
                        writes.spawn(async move {
                            let _permit = permit;
                            set_metadata(&client, &table, &item)
                                .condition_expression(
                                    "attribute_exists(pk) AND #n = :n AND #d = :d AND attribute_not_exists(#m) \
                                     AND attribute_not_exists(#v)",
                                )
                                .expression_attribute_names("#n", "name")
                                .expression_attribute_names("#d", "description")
                                .expression_attribute_values(":n", item["name"].clone())
                                .expression_attribute_values(":d", item["description"].clone())
                                .send()
                                .await
                                .expect("update");
                            written.fetch_add(1, Relaxed);
                        });
                    }
                }
                while writes.join_next().await.is_some() {}
                start = page.last_evaluated_key.filter(|k| !k.is_empty());
                if start.is_none() {
                    return;
                }
            }
        });
    }
    while segments.join_next().await.is_some() {}
    written.load(Relaxed)
}
