//! The backfill beside an application that writes the same items at the same time: none of its
//! writes is lost, a write that conflicts is redone on the fresh item, a deleted item stays deleted,
//! a whole-item put keeps what the application added, a file's operations conflict only with
//! writes to what they read, and an item moved out of the selection meanwhile is left alone.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use dynamigrate::backfill::{Change, Item};
use dynamigrate::versions::Versioning;
use dynamigrate::Guard;
use dynamigrate_files::ops::{self, Op};
use dynamigrate_tests::backfills::{migration, num, run, write_now, Configure};
use dynamigrate_tests::fixtures::{is_migrated, upgrade};
use dynamigrate_tests::{n, put_items, s, scan_all, seed_items, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_concurrent_writer_loses_none_of_its_writes_and_every_item_ends_migrated() {
    const ITEMS: usize = 10_000;
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(ITEMS)).await;

    // The "application": increments a counter on random items until the backfill ends.
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (client, table, stop) = (world.client.clone(), world.table.clone(), stop.clone());
        tokio::spawn(async move {
            let mut writes: HashMap<u64, i64> = HashMap::new();
            while !stop.is_cancelled() {
                let n = fastrand::u64(1..=ITEMS as u64);
                client
                    .update_item()
                    .table_name(&table)
                    .key("pk", AttributeValue::S(format!("ITEM#{n}")))
                    .key("sk", AttributeValue::S("METADATA".into()))
                    .update_expression("ADD app_writes :one SET app_note = :note")
                    .expression_attribute_values(":one", num("1"))
                    .expression_attribute_values(":note", AttributeValue::S(format!("written {n}")))
                    .send()
                    .await
                    .expect("application write");
                *writes.entry(n).or_default() += 1;
            }
            writes
        })
    };
    let summaries =
        run(&world, vec![migration("20250301_live", upgrade, |b| b.segments(4).page_size(250).concurrency(16))], false)
            .await;
    stop.cancel();
    let writes = writer.await.unwrap();
    eprintln!("application writes: {}, backfill conflicts: {}", writes.values().sum::<i64>(), summaries[0].conflicts);
    assert!(!writes.is_empty());
    assert_eq!(summaries[0].counts.failed, 0);

    let items = scan_all(&world.client, &world.table).await;
    assert_eq!(items.len(), ITEMS);
    for item in &items {
        assert!(is_migrated(item), "not migrated: {item:?}");
        let number: u64 = s(item, "pk").unwrap().trim_start_matches("ITEM#").parse().unwrap();
        let expected = writes.get(&number).copied();
        assert_eq!(n(item, "app_writes"), expected, "lost application writes on ITEM#{number}");
        assert_eq!(s(item, "name"), Some(format!("My Item {number}")));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_that_conflicts_is_reread_and_transformed_again() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(200)).await;
    let calls: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    let (client, table, record) = (world.client.clone(), world.table.clone(), calls.clone());
    // For every tenth item, the first time the transform sees it, the "application" changes an
    // attribute the transform read, between our read and our write: the guarded write must fail
    // and be redone on the fresh item.
    let transform = move |item: &Item| -> anyhow::Result<Change> {
        let pk = s(item, "pk").unwrap();
        let first = {
            let mut calls = record.lock().unwrap();
            let count = calls.entry(pk.clone()).or_default();
            *count += 1;
            *count == 1
        };
        if first && pk.ends_with('0') {
            let write = client
                .update_item()
                .table_name(&table)
                .key("pk", AttributeValue::S(pk.clone()))
                .key("sk", AttributeValue::S("METADATA".into()))
                .update_expression("SET #name = :name")
                .expression_attribute_names("#name", "name")
                .expression_attribute_values(":name", AttributeValue::S("renamed by the application".into()))
                .send();
            write_now(write)?;
        }
        upgrade(item)
    };
    let summaries = run(&world, vec![migration("20250301_conflicts", transform, |b| b)], false).await;
    assert_eq!(summaries[0].conflicts, 20);
    assert_eq!((summaries[0].counts.modified, summaries[0].counts.failed), (200, 0));
    let calls = calls.lock().unwrap().clone();
    assert_eq!(calls.values().filter(|c| **c == 2).count(), 20, "transformed again after each conflict");
    for item in scan_all(&world.client, &world.table).await {
        assert!(is_migrated(&item));
        if s(&item, "pk").unwrap().ends_with('0') {
            assert_eq!(s(&item, "name").as_deref(), Some("renamed by the application"), "its write survives");
        }
    }
}

/// An update of an item the application deleted after our scan would create a stub of its key and
/// our change. The guard refuses it by a value it compares (false on an absent item), or, with
/// nothing to compare, by a key clause: under both guards, on items with attributes to compare,
/// on items at version 1 (the version guard compares the version), and on items with only a key.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_deleted_after_the_scan_is_not_recreated_by_its_update() {
    let version: Configure = |b| b.guard(Guard::Version("version".into()));
    let at_version_1 = |mut item: Item| {
        item.insert("version".into(), num("1"));
        item
    };
    let key_only = |item: Item| item.into_iter().filter(|(k, _)| k == "pk" || k == "sk").collect();
    type Shape = fn(Item) -> Item;
    let cases: [(Configure, Shape); 4] =
        [(|b| b, |item| item), (version, |item| item), (version, at_version_1), (|b| b, key_only)];
    for (configure, shape) in cases {
        let world = World::new().await;
        put_items(&world.client, &world.table, seed_items(100).into_iter().map(shape).collect()).await;
        let (client, table) = (world.client.clone(), world.table.clone());
        let transform = move |item: &Item| -> anyhow::Result<Change> {
            if s(item, "pk").unwrap().ends_with('0') {
                let delete = client
                    .delete_item()
                    .table_name(&table)
                    .key("pk", item["pk"].clone())
                    .key("sk", item["sk"].clone())
                    .send();
                write_now(delete)?;
            }
            upgrade(item)
        };
        let summaries = run(&world, vec![migration("20250301_deleted", transform, configure)], false).await;
        assert_eq!((summaries[0].counts.modified, summaries[0].counts.failed), (90, 0));
        let items = scan_all(&world.client, &world.table).await;
        assert_eq!(items.len(), 90, "no deleted item came back");
        assert!(items.iter().all(is_migrated));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_whole_item_put_never_drops_an_attribute_the_application_added_meanwhile() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(20)).await;
    let (client, table) = (world.client.clone(), world.table.clone());
    let transform = move |item: &Item| -> anyhow::Result<Change> {
        if item.contains_key("version") {
            return Ok(Change::Skip);
        }
        let add = client
            .update_item()
            .table_name(&table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression("SET app_note = :note")
            .expression_attribute_values(":note", AttributeValue::S("added after the read".into()))
            .send();
        write_now(add)?;
        let mut new = item.clone();
        new.insert("version".into(), num("2"));
        Ok(Change::Put(new))
    };
    let summaries = run(&world, vec![migration("20250301_put", transform, |b| b)], false).await;
    assert_eq!(summaries[0].counts.modified, 20);
    for item in scan_all(&world.client, &world.table).await {
        assert_eq!(n(&item, "version"), Some(2));
        assert_eq!(s(&item, "app_note").as_deref(), Some("added after the read"), "{item:?}");
    }
}

/// The application's update of an item, made from inside the transform the first time it sees the
/// item: it lands between our read and our write.
struct Meanwhile {
    client: Client,
    table: String,
    seen: Mutex<HashSet<String>>,
}

impl Meanwhile {
    fn new(world: &World) -> Self {
        Self { client: world.client.clone(), table: world.table.clone(), seen: Mutex::default() }
    }

    /// `update` with its name and value placeholders; nothing the second time the item comes by.
    fn update(
        &self,
        item: &Item,
        update: &str,
        names: &[(&str, &str)],
        values: &[(&str, AttributeValue)],
    ) -> anyhow::Result<()> {
        // The lock is let go before the write: another worker thread may wait for it meanwhile.
        let first = self.seen.lock().unwrap().insert(s(item, "pk").unwrap());
        if !first {
            return Ok(());
        }
        let mut write = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", item["pk"].clone())
            .key("sk", item["sk"].clone())
            .update_expression(update);
        for (placeholder, attribute) in names {
            write = write.expression_attribute_names(*placeholder, *attribute);
        }
        for (placeholder, value) in values {
            write = write.expression_attribute_values(*placeholder, value.clone());
        }
        write_now(write.send())
    }
}

/// A TOML file's operations (copy `name` to `title`, version 2) as the engine runs them, under the
/// guard a file gets by default: what they read, not the whole item.
fn copy_name() -> Vec<Op> {
    vec![Op::Copy { from: "name".into(), to: "title".into() }, Op::Version { attribute: "version".into(), value: 2 }]
}

/// Under the operations' guard, the application's write to an attribute they read conflicts and
/// the item is done again from its new value; its write to anything else neither conflicts nor is
/// lost (the update touches only what the operations change).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_conflict_only_with_a_write_to_what_they_read() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(200)).await;
    let meanwhile = Meanwhile::new(&world);
    // Items ending in 0: the application renames them; ending in 5, it edits the description,
    // which the operations do not read.
    let transform = move |item: &Item| -> anyhow::Result<Change> {
        let attribute = match s(item, "pk").unwrap().chars().last() {
            Some('0') => Some("name"),
            Some('5') => Some("description"),
            _ => None,
        };
        if let Some(attribute) = attribute {
            let value = AttributeValue::S(format!("{attribute} by the application"));
            meanwhile.update(item, "SET #a = :v", &[("#a", attribute)], &[(":v", value)])?;
        }
        ops::apply_all(&copy_name(), item).map_err(anyhow::Error::msg)
    };
    let configure: Configure = |b| b.guard(ops::guard(&copy_name(), None));
    let summaries = run(&world, vec![migration("20250301_ops_guard", transform, configure)], false).await;
    assert_eq!(summaries[0].conflicts, 20, "the renames conflict, the description edits do not");
    assert_eq!((summaries[0].counts.modified, summaries[0].counts.failed), (200, 0));
    for item in scan_all(&world.client, &world.table).await {
        let pk = s(&item, "pk").unwrap();
        assert_eq!(n(&item, "version"), Some(2), "{item:?}");
        assert_eq!(s(&item, "title"), s(&item, "name"), "copied from the name it holds now: {item:?}");
        if pk.ends_with('0') {
            assert_eq!(s(&item, "name").as_deref(), Some("name by the application"));
        }
        if pk.ends_with('5') {
            assert_eq!(s(&item, "description").as_deref(), Some("description by the application"), "kept");
        }
    }
}

/// A backfill of the items below version 2 whose transform (like a TOML file's operations) does
/// not check the version itself. The application upgrades some items to version 2 between our read
/// and our write, with a status of its own: the guard refuses our write, and the re-read finds the
/// item out of the selection, so it is left as the application wrote it rather than transformed
/// again and overwritten.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_item_the_application_moves_out_of_the_selection_meanwhile_is_left_alone() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(200)).await;
    let meanwhile = Meanwhile::new(&world);
    let transform = move |item: &Item| -> anyhow::Result<Change> {
        if s(item, "pk").unwrap().ends_with('0') {
            let status = AttributeValue::S("set by the application".into());
            let values = [(":v", num("2")), (":s", status)];
            meanwhile.update(item, "SET version = :v, #s = :s", &[("#s", "status")], &values)?;
        }
        Ok(Change::update().set("status", AttributeValue::S("backfilled".into())).set("version", num("2")))
    };
    let configure: Configure = |b| b.sk_prefix("METADATA").select(Versioning::default().below(2));
    let summaries = run(&world, vec![migration("20250301_left", transform, configure)], false).await;
    let counts = &summaries[0].counts;
    assert_eq!((counts.modified, counts.skipped, counts.failed, summaries[0].conflicts), (180, 20, 0, 20));
    for item in scan_all(&world.client, &world.table).await {
        let expected = if s(&item, "pk").unwrap().ends_with('0') { "set by the application" } else { "backfilled" };
        assert_eq!(s(&item, "status").as_deref(), Some(expected), "{item:?}");
        assert_eq!(n(&item, "version"), Some(2));
    }
}
