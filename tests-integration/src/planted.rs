//! Ledger items as another runner, an older version or a hand edit would have left them, written
//! straight into a world's history table.

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::clock::{now_ms, rfc3339};

use crate::{Item, World};

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

/// Creates the world's history table if needed and writes `item` into it.
pub async fn plant(world: &World, item: Item) {
    dynamigrate::Ledger::new(world.client.clone(), &world.history).ensure_table().await.unwrap();
    world.client.put_item().table_name(&world.history).set_item(Some(item)).send().await.unwrap();
}

/// A well-formed lock of another runner (`run_id` "planted-run") expiring `expires_in_ms` from now.
pub fn lock(owner: &str, host: &str, pid: u32, expires_in_ms: i64) -> Item {
    let now = now_ms();
    let expires = (now as i64 + expires_in_ms) as u64;
    Item::from([
        ("pk".to_string(), s("LOCK")),
        ("sk".to_string(), s("LOCK")),
        ("entity".to_string(), s("lock")),
        ("run_id".to_string(), s("planted-run")),
        ("owner".to_string(), s(owner)),
        ("host".to_string(), s(host)),
        ("pid".to_string(), n(pid)),
        ("user".to_string(), s("someone")),
        ("stage".to_string(), s("dev")),
        ("command".to_string(), s("run")),
        ("acquired_at".to_string(), s(&rfc3339(now))),
        ("expires_at".to_string(), s(&rfc3339(expires))),
        ("expires_at_ms".to_string(), n(expires)),
    ])
}

/// Segment 0's checkpoint of the fixture backfill (`up#main`), claiming `total_segments`.
pub fn checkpoint(total_segments: &str) -> Item {
    Item::from([
        ("pk".to_string(), s(&format!("MIGRATION#{}", crate::fixtures::BACKFILL_ID))),
        ("sk".to_string(), s("CHECKPOINT#up#main#00000")),
        ("entity".to_string(), s("checkpoint")),
        ("segment".to_string(), n(0)),
        ("total_segments".to_string(), n(total_segments)),
        ("done".to_string(), AttributeValue::Bool(false)),
        ("scanned".to_string(), n(0)),
        ("processed".to_string(), n(0)),
        ("modified".to_string(), n(0)),
        ("skipped".to_string(), n(0)),
        ("failed".to_string(), n(0)),
        ("run_id".to_string(), s("someone-else")),
        ("updated_at".to_string(), s("2025-01-01T00:00:00.000Z")),
    ])
}
