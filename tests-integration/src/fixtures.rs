//! Fixture migrations whose behaviour the tests choose through environment variables, so that the
//! same migrations run in-process and inside the real `fixture-migrations` binary.
//!
//! - `FIXTURE_IDS`: comma-separated ids (default three: `20250101_first,20250102_second,20250103_third`)
//! - `FIXTURE_FAIL`: the id whose `up` fails
//! - `FIXTURE_SLEEP_MS`: each `up` and `down` sleeps this long (stopping early if cancelled)
//! - `FIXTURE_NO_DOWN`: comma-separated ids that have no `down`
//! - `FIXTURE_EXTRA_ID`: one more migration with this (possibly invalid or duplicate) id
//! - `FIXTURE_BACKFILL=1`: instead, the one migration `20250201_add_metadata`, a backfill of the seed
//!   scenario (see [`upgrade`]); `FIXTURE_FAIL_EVERY=N` makes its transform fail for every item whose
//!   number is a multiple of N, `FIXTURE_TOO_LARGE=N` makes item N too large to write, and
//!   `FIXTURE_PANIC_AT=N` makes the transform panic on item N.
//!
//! Each marker `up` bumps `runs` on a marker item `MARK#<id>` in the target table; `down` deletes it.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::backfill::{Change, Guard, Item};
use dynamigrate::{async_trait, Migration, MigrationContext, Outcome};

pub const DEFAULT_IDS: &str = "20250101_first,20250102_second,20250103_third";

pub struct Marker {
    id: String,
    fail: bool,
    sleep: Duration,
    has_down: bool,
}

pub fn from_env() -> Vec<Box<dyn Migration>> {
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("FIXTURE_BACKFILL") == "1" {
        let fail_every = var("FIXTURE_FAIL_EVERY").parse().ok();
        let too_large = var("FIXTURE_TOO_LARGE").parse().ok();
        let panic_at = var("FIXTURE_PANIC_AT").parse().ok();
        return vec![Box::new(AddMetadata { fail_every, too_large, panic_at, ..AddMetadata::default() })];
    }
    let ids = std::env::var("FIXTURE_IDS").unwrap_or_else(|_| DEFAULT_IDS.to_string());
    let sleep = Duration::from_millis(var("FIXTURE_SLEEP_MS").parse().unwrap_or(0));
    let no_down = var("FIXTURE_NO_DOWN");
    let mut ids: Vec<String> = ids.split(',').filter(|s| !s.is_empty()).map(str::to_string).collect();
    ids.extend(std::env::var("FIXTURE_EXTRA_ID").ok());
    ids.into_iter()
        .map(|id| {
            Box::new(Marker {
                fail: var("FIXTURE_FAIL") == id,
                has_down: !no_down.split(',').any(|n| n == id),
                id,
                sleep,
            }) as Box<dyn Migration>
        })
        .collect()
}

#[async_trait]
impl Migration for Marker {
    fn id(&self) -> &str {
        &self.id
    }

    fn description(&self) -> &str {
        "fixture: bumps a marker item"
    }

    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        tokio::select! {
            () = tokio::time::sleep(self.sleep) => {}
            () = ctx.cancelled() => anyhow::bail!("cancelled"),
        }
        if self.fail {
            anyhow::bail!("fixture failure requested for {}", self.id);
        }
        if !ctx.dry_run {
            ctx.client
                .update_item()
                .table_name(&ctx.table_name)
                .key("pk", AttributeValue::S(format!("MARK#{}", self.id)))
                .key("sk", AttributeValue::S("MARK".into()))
                .update_expression("ADD runs :one")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .send()
                .await?;
        }
        Ok(Outcome::succeeded(1, 1))
    }

    fn has_down(&self) -> bool {
        self.has_down
    }

    async fn down(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        tokio::select! {
            () = tokio::time::sleep(self.sleep) => {}
            () = ctx.cancelled() => anyhow::bail!("cancelled"),
        }
        if !ctx.dry_run {
            ctx.client
                .delete_item()
                .table_name(&ctx.table_name)
                .key("pk", AttributeValue::S(format!("MARK#{}", self.id)))
                .key("sk", AttributeValue::S("MARK".into()))
                .send()
                .await?;
        }
        Ok(Outcome::succeeded(1, 1))
    }
}

/// The seed scenario as a backfill migration, with failures on request.
#[derive(Debug, Default)]
pub struct AddMetadata {
    pub fail_every: Option<u64>,
    pub too_large: Option<u64>,
    /// The transform panics on this item.
    pub panic_at: Option<u64>,
    /// Guard the writes on the version attribute alone (the items have none until migrated),
    /// rather than on every attribute the transform read.
    pub version_guard: bool,
}

pub const BACKFILL_ID: &str = "20250201_add_metadata";

#[async_trait]
impl Migration for AddMetadata {
    fn id(&self) -> &str {
        BACKFILL_ID
    }

    fn description(&self) -> &str {
        "fixture: add metadata { tags, category } and version 2"
    }

    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        let (fail_every, too_large, panic_at) = (self.fail_every, self.too_large, self.panic_at);
        let guard = if self.version_guard { Guard::Version("version".into()) } else { Guard::Item };
        let summary = ctx
            .backfill()
            .sk_prefix("METADATA")
            .guard(guard)
            .run(move |item| {
                let n = item_number(item);
                assert!(panic_at != Some(n), "fixture: item {n} makes the transform panic");
                if fail_every.is_some_and(|every| n.is_multiple_of(every)) {
                    anyhow::bail!("fixture: item {n} cannot be migrated");
                }
                let change = upgrade(item)?;
                Ok(if too_large == Some(n) {
                    change.set("padding", AttributeValue::S("x".repeat(410_000)))
                } else {
                    change
                })
            })
            .await?;
        Ok(summary.outcome())
    }
}

/// `ITEM#n` → n.
pub fn item_number(item: &Item) -> u64 {
    match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk.trim_start_matches("ITEM#").parse().unwrap_or(0),
        _ => 0,
    }
}

/// Version 1 → 2: `metadata { tags, category }` derived from the item number; skip if already 2.
pub fn upgrade(item: &Item) -> anyhow::Result<Change> {
    if matches!(item.get("version"), Some(AttributeValue::N(v)) if v == "2") {
        return Ok(Change::Skip);
    }
    Ok(Change::update()
        .set("metadata", expected_metadata(item_number(item)))
        .set("version", AttributeValue::N("2".into())))
}

pub fn expected_metadata(n: u64) -> AttributeValue {
    let tags = if n.is_multiple_of(3) { vec![AttributeValue::S("important".into())] } else { Vec::new() };
    AttributeValue::M(Item::from([
        ("tags".to_string(), AttributeValue::L(tags)),
        ("category".to_string(), AttributeValue::S(["electronics", "books", "garden"][(n % 3) as usize].into())),
    ]))
}

/// Whether an item is fully migrated by [`upgrade`].
pub fn is_migrated(item: &Item) -> bool {
    matches!(item.get("version"), Some(AttributeValue::N(v)) if v == "2")
        && item.get("metadata") == Some(&expected_metadata(item_number(item)))
}
