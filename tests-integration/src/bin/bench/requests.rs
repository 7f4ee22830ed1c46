//! The seed scenario's two writes, as both the hand-written and the raw loop send them: an update of
//! one item (each loop adds the condition it chose) and a batch of whole migrated items.

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use aws_sdk_dynamodb::Client;
use dynamigrate::Item;
use dynamigrate_tests::fixtures::{expected_metadata, item_number};

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
