//! The ledger never trusts what it reads: an item it cannot decode, or that contradicts its key, is
//! an error that names the item, and nothing is built on it.

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate_tests::fixtures::{is_migrated, BACKFILL_ID};
use dynamigrate_tests::{assert_same, planted, put_items, scan_all, seed_items, snapshot, World};

const FIRST: &str = "20250101_first";

fn s(value: &str) -> AttributeValue {
    AttributeValue::S(value.to_string())
}

#[tokio::test]
async fn a_malformed_catalog_entry_is_named_and_nothing_runs_on_it() {
    let world = World::new().await;
    assert_eq!(world.run(&["run", "--to", FIRST]).await.code, 0);
    world
        .client
        .update_item()
        .table_name(&world.history)
        .key("pk", s("CATALOG"))
        .key("sk", s(&format!("MIGRATION#{FIRST}")))
        .update_expression("SET attempt = :text")
        .expression_attribute_values(":text", s("one"))
        .send()
        .await
        .unwrap();
    let history = snapshot(&world.client, &world.history).await;
    for args in [&["status"][..], &["run"][..]] {
        let ran = world.run(args).await;
        assert_eq!(ran.code, 2, "{args:?}: {ran:?}");
        let named = format!(r#"the item (pk "CATALOG", sk "MIGRATION#{FIRST}") is malformed"#);
        assert!(ran.stderr.contains(&named), "{args:?}: {}", ran.stderr);
    }
    assert_same(&snapshot(&world.client, &world.history).await, &history, "history");
    assert_eq!(world.marker_runs("20250102_second").await, None, "nothing ran");
}

#[tokio::test]
async fn a_checkpoint_that_divides_the_table_into_no_segments_is_named_before_anything_is_written() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(50)).await;
    planted::plant(&world, planted::checkpoint("0")).await;
    let history = snapshot(&world.client, &world.history).await;
    let ran = world.run_with(&["run"], &[("FIXTURE_BACKFILL", "1")]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    let named = format!(r#"(pk "MIGRATION#{BACKFILL_ID}", sk "CHECKPOINT#up#main#00000") is malformed"#);
    assert!(ran.stderr.contains(&named), "{}", ran.stderr);
    assert!(ran.stderr.contains("total_segments is 0"), "{}", ran.stderr);
    assert!(!scan_all(&world.client, &world.table).await.iter().any(is_migrated), "no item was touched");
    assert_same(&snapshot(&world.client, &world.history).await, &history, "no attempt was recorded");
}
