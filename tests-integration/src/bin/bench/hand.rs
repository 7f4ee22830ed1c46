//! The loop a good engineer would hand-write for the seed scenario, to measure dynamigrate against
//! the best plain SDK code rather than against a copy of its own choices: a parallel scan with full
//! 1 MB pages (no Limit) over 8 segments, an `UpdateItem` conditioned on the version attribute alone
//! (the items have none until migrated), and 64 writes in flight across every segment and page (a
//! page's writes overlap the next page's read). 8 and 64 are the best of the small sweep measured for
//! the issue on this machine; dynamigrate runs beside it at its defaults (the bench's own knobs).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::raw::set_metadata;
use super::Options;

const SEGMENTS: u32 = 8;
const WINDOW: usize = 64;

pub async fn update(table: &str, _options: &Options) -> u64 {
    let sdk = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&sdk);
    let window = Arc::new(Semaphore::new(WINDOW));
    let written = Arc::new(AtomicU64::new(0));
    let mut segments = JoinSet::new();
    for segment in 0..SEGMENTS {
        let (client, window, written, table, total) =
            (client.clone(), window.clone(), written.clone(), table.to_string(), SEGMENTS);
        segments.spawn(async move {
            let mut writes = JoinSet::new();
            let mut pages = client
                .scan()
                .table_name(&table)
                .segment(segment as i32)
                .total_segments(total as i32)
                .filter_expression("begins_with(#sk, :sk)")
                .expression_attribute_names("#sk", "sk")
                .expression_attribute_values(":sk", AttributeValue::S("METADATA".into()))
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                for item in page.expect("scan").items.unwrap_or_default() {
                    let permit = window.clone().acquire_owned().await.expect("permit");
                    while writes.try_join_next().is_some() {}
                    let (client, table, written) = (client.clone(), table.clone(), written.clone());
                    writes.spawn(async move {
                        let _permit = permit;
                        set_metadata(&client, &table, &item)
                            .condition_expression("attribute_not_exists(#v)")
                            .send()
                            .await
                            .expect("update");
                        written.fetch_add(1, Relaxed);
                    });
                }
            }
            while writes.join_next().await.is_some() {}
        });
    }
    while segments.join_next().await.is_some() {}
    written.load(Relaxed)
}
