//! The seed scenario's requests, as every loop sends them: the scan of one segment for its items, an
//! update of one item (each loop adds the condition it chose) and a batch of whole migrated items.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use dynamigrate::Item;
use dynamigrate_tests::fixtures::{expected_metadata, item_number};

/// One segment of the scan of the seed scenario's items, with the filter dynamigrate sends for the
/// migration's `sk_prefix("METADATA")`; each loop adds its page size and position.
pub fn metadata_scan(
    client: &Client,
    table: &str,
    segment: u32,
    total: u32,
) -> aws_sdk_dynamodb::operation::scan::builders::ScanFluentBuilder {
    client
        .scan()
        .table_name(table)
        .segment(segment as i32)
        .total_segments(total as i32)
        .filter_expression("begins_with(#sk, :sk)")
        .expression_attribute_names("#sk", "sk")
        .expression_attribute_values(":sk", AttributeValue::S("METADATA".into()))
}

/// The seed scenario's update of one item, `metadata` and `version: 2`, before its condition: both
/// loops send it, each with the condition it chose.
pub fn set_metadata(
    client: &Client,
    table: &str,
    item: &Item,
) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
    client
        .update_item()
        .table_name(table)
        .key("pk", item["pk"].clone())
        .key("sk", item["sk"].clone())
        .update_expression("SET #m = :m, #v = :v")
        .expression_attribute_names("#m", "metadata")
        .expression_attribute_names("#v", "version")
        .expression_attribute_values(":m", expected_metadata(item_number(item)))
        .expression_attribute_values(":v", AttributeValue::N("2".into()))
}

/// One BatchWriteItem of the migrated items, unprocessed ones resent until none are left.
pub async fn put_all(client: &Client, table: &str, items: Vec<Item>) -> u64 {
    let mut pending: Vec<WriteRequest> = items
        .into_iter()
        .map(|mut item| {
            item.insert("metadata".into(), expected_metadata(item_number(&item)));
            item.insert("version".into(), AttributeValue::N("2".into()));
            let put = PutRequest::builder().set_item(Some(item)).build().expect("put");
            WriteRequest::builder().put_request(put).build()
        })
        .collect();
    let mut written = 0;
    while !pending.is_empty() {
        let n = pending.len() as u64;
        let out = client.batch_write_item().request_items(table, pending).send().await.expect("batch");
        pending = out.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
        written += n - pending.len() as u64;
    }
    written
}
