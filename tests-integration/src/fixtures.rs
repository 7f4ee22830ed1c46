//! Fixture migrations whose behaviour the tests choose through environment variables, so that the
//! same migrations run in-process and inside the real `fixture-migrations` binary.
//!
//! - `FIXTURE_IDS`: comma-separated ids (default three: `20250101_first,20250102_second,20250103_third`)
//! - `FIXTURE_FAIL`: the id whose `up` fails
//! - `FIXTURE_SLEEP_MS`: each `up` sleeps this long (stopping early if cancelled)
//! - `FIXTURE_NO_DOWN`: comma-separated ids that have no `down`
//! - `FIXTURE_EXTRA_ID`: one more migration with this (possibly invalid or duplicate) id
//!
//! Each `up` bumps `runs` on a marker item `MARK#<id>` in the target table; `down` deletes it.

use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
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
