//! The loops a good engineer would hand-write for the seed scenario, to measure dynamigrate against
//! the best plain SDK code rather than against a copy of its own choices: a parallel scan with full
//! 1 MB pages (no Limit) over 8 segments, and either an `UpdateItem` conditioned on the version
//! attribute alone (the items have none until migrated) or `BatchWriteItem`s of 25 whole items
//! (unprocessed items resent), with a window of requests in flight across every segment and page (a
//! page's writes overlap the next page's read). The window is the variant's (`hand-update@64`),
//! and so are the segments if not 8 (`hand-update@64/16`): the bench sweeps a few and compares
//! dynamigrate with the best.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use aws_sdk_dynamodb::Client;
use dynamigrate::Item;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::requests::{metadata_scan, put_all, set_metadata};

/// Segments unless the variant says: 8 was the best of the small sweep measured for the issue on
/// this machine (the bench's sweep tries 16 at the best window too).
pub const SEGMENTS: u32 = 8;

/// Runs the hand-written loop, `batch` or update, with `window` requests in flight over `total` segments.
pub async fn run(table: &str, window: usize, total: u32, batch: bool) -> u64 {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&sdk);
    let window = Arc::new(Semaphore::new(window));
    let written = Arc::new(AtomicU64::new(0));
    let mut segments = JoinSet::new();
    for segment in 0..total {
        let (client, window, written, table) = (client.clone(), window.clone(), written.clone(), table.to_string());
        segments.spawn(async move {
            let mut writes = JoinSet::new();
            let mut pages = metadata_scan(&client, &table, segment, total).into_paginator().send();
            while let Some(page) = pages.next().await {
                let items = page.expect("scan").items.unwrap_or_default();
                let requests: Vec<Vec<Item>> = if batch {
                    items.chunks(25).map(<[Item]>::to_vec).collect()
                } else {
                    items.into_iter().map(|item| vec![item]).collect()
                };
                for request in requests {
                    let permit = window.clone().acquire_owned().await.expect("permit");
                    while writes.try_join_next().is_some() {}
                    let (client, table, written) = (client.clone(), table.clone(), written.clone());
                    writes.spawn(async move {
                        let _permit = permit;
                        let n = if batch {
                            put_all(&client, &table, request).await
                        } else {
                            set_metadata(&client, &table, &request[0])
                                .condition_expression("attribute_not_exists(#v)")
                                .send()
                                .await
                                .expect("update");
                            1
                        };
                        written.fetch_add(n, Relaxed);
                    });
                }
            }
            while writes.join_next().await.is_some() {}
        });
    }
    while segments.join_next().await.is_some() {}
    written.load(Relaxed)
}
