//! The seed scenario: give every `ITEM#n / METADATA` item a structured `metadata { tags, category }`
//! and mark it `version: 2`. The down removes both again.

use std::collections::HashMap;

use dynamigrate::aws_sdk_dynamodb::types::AttributeValue;
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
        let mut processed = 0;
        let mut modified = 0;
        let progress = ctx.progress("add metadata", None);
        let mut pages = ctx.client.scan().table_name(&ctx.table_name).into_paginator().send();
        while let Some(page) = pages.next().await {
            if ctx.is_cancelled() {
                break;
            }
            for item in page?.items.unwrap_or_default() {
                processed += 1;
                progress.inc(1);
                if version_of(&item) >= 2 {
                    continue; // already migrated: running twice changes nothing
                }
                if !ctx.dry_run {
                    upgrade(ctx, &item).await?;
                }
                modified += 1;
            }
        }
        progress.finish();
        Ok(Outcome::succeeded(processed, modified))
    }

    fn has_down(&self) -> bool {
        true
    }

    async fn down(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        let mut processed = 0;
        let mut modified = 0;
        let mut pages = ctx.client.scan().table_name(&ctx.table_name).into_paginator().send();
        while let Some(page) = pages.next().await {
            for item in page?.items.unwrap_or_default() {
                processed += 1;
                if version_of(&item) != 2 {
                    continue;
                }
                if !ctx.dry_run {
                    ctx.client
                        .update_item()
                        .table_name(&ctx.table_name)
                        .set_key(Some(key_of(&item)))
                        .update_expression("REMOVE metadata, version")
                        .condition_expression("version = :v2")
                        .expression_attribute_values(":v2", AttributeValue::N("2".into()))
                        .send()
                        .await?;
                }
                modified += 1;
            }
        }
        Ok(Outcome::succeeded(processed, modified))
    }
}

fn version_of(item: &HashMap<String, AttributeValue>) -> u32 {
    match item.get("version") {
        Some(AttributeValue::N(n)) => n.parse().unwrap_or(1),
        _ => 1,
    }
}

fn key_of(item: &HashMap<String, AttributeValue>) -> HashMap<String, AttributeValue> {
    item.iter().filter(|(name, _)| *name == "pk" || *name == "sk").map(|(k, v)| (k.clone(), v.clone())).collect()
}

/// Derives tags and a category from the item number, so the demo shows varied, repeatable data.
pub fn metadata_for(item: &HashMap<String, AttributeValue>) -> AttributeValue {
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
    AttributeValue::M(HashMap::from([
        ("tags".to_string(), AttributeValue::L(tags)),
        ("category".to_string(), AttributeValue::S(CATEGORIES[n % CATEGORIES.len()].into())),
    ]))
}

async fn upgrade(ctx: &MigrationContext, item: &HashMap<String, AttributeValue>) -> anyhow::Result<()> {
    // Conditional: if the application wrote version 2 meanwhile, leave its write alone.
    let result = ctx
        .client
        .update_item()
        .table_name(&ctx.table_name)
        .set_key(Some(key_of(item)))
        .update_expression("SET metadata = :metadata, version = :v2")
        .condition_expression("attribute_exists(pk) AND (attribute_not_exists(version) OR version < :v2)")
        .expression_attribute_values(":metadata", metadata_for(item))
        .expression_attribute_values(":v2", AttributeValue::N("2".into()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
