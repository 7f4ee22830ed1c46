//! The seed scenario: give every `ITEM#n / METADATA` item a structured `metadata { tags, category }`
//! and mark it `version: 2`. The down removes both again. Both are backfills: parallel scan,
//! guarded writes that never clobber the application's, checkpoints, progress.

use dynamigrate::aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::backfill::{Change, Item};
use dynamigrate::{async_trait, Migration, MigrationContext, Outcome};

pub struct AddMetadataField;

const CATEGORIES: [&str; 4] = ["electronics", "books", "garden", "toys"];

#[async_trait]
impl Migration for AddMetadataField {
    fn id(&self) -> &str {
        "20250125_add_metadata_field"
    }

    fn description(&self) -> &str {
        "Add metadata { tags, category } to every item and mark it version 2"
    }

    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        let summary = ctx.backfill().sk_prefix("METADATA").run(upgrade).await?;
        Ok(summary.outcome())
    }

    fn has_down(&self) -> bool {
        true
    }

    async fn down(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        let summary = ctx.backfill().sk_prefix("METADATA").run(downgrade).await?;
        Ok(summary.outcome())
    }
}

/// Version 1 → 2. Items already at 2 are skipped, so running it twice changes nothing.
pub fn upgrade(item: &Item) -> anyhow::Result<Change> {
    if version_of(item) >= 2 {
        return Ok(Change::Skip);
    }
    Ok(Change::update().set("metadata", metadata_for(item)).set("version", AttributeValue::N("2".into())))
}

/// Version 2 → 1.
pub fn downgrade(item: &Item) -> anyhow::Result<Change> {
    if version_of(item) != 2 {
        return Ok(Change::Skip);
    }
    Ok(Change::update().remove("metadata").remove("version"))
}

fn version_of(item: &Item) -> u32 {
    match item.get("version") {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(1),
        _ => 1,
    }
}

/// Derives tags and a category from the item number, so the demo shows varied, repeatable data.
fn metadata_for(item: &Item) -> AttributeValue {
    let n: usize = match item.get("pk") {
        Some(AttributeValue::S(pk)) => pk.trim_start_matches("ITEM#").parse().unwrap_or(0),
        _ => 0,
    };
    let mut tags = Vec::new();
    if n.is_multiple_of(3) {
        tags.push(AttributeValue::S("important".into()));
    }
    if n.is_multiple_of(5) {
        tags.push(AttributeValue::S("archived".into()));
    }
    AttributeValue::M(Item::from([
        ("tags".to_string(), AttributeValue::L(tags)),
        ("category".to_string(), AttributeValue::S(CATEGORIES[n % CATEGORIES.len()].into())),
    ]))
}
