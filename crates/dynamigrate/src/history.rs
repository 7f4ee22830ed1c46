//! The history table: every attempt of every migration, the runner's lock, and (for backfills)
//! per-segment checkpoints, all in one DynamoDB table keyed `pk` (S) / `sk` (S).
//!
//! | item                     | `pk`               | `sk`                  | `entity`     |
//! |--------------------------|--------------------|-----------------------|--------------|
//! | runner lease lock        | `LOCK`             | `LOCK`                | `lock`       |
//! | one attempt              | `MIGRATION#<id>`   | `ATTEMPT#000001`      | `attempt`    |
//! | backfill scan checkpoint | `MIGRATION#<id>`   | `CHECKPOINT#<seg>`    | `checkpoint` |
//!
//! Everything about one migration shares a partition, so a single Query reads its attempts and its
//! checkpoints, and scan-segment leases for many workers can be conditional writes on the checkpoint
//! items. Every write made while running is a transaction that also checks the lock is still ours
//! (fencing): a runner that lost its lease cannot write history.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::describe_table::DescribeTableError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, ScalarAttributeType,
    TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use aws_sdk_dynamodb::error::DisplayErrorContext;

use crate::attempt::Attempt;
use crate::aws::{is_transient, pause, PATIENCE_ROUNDS};
use crate::id::MigrationId;
use crate::lock;
use crate::Error;

pub const DEFAULT_HISTORY_TABLE: &str = "dynamigrate_history";

const ENTITY_ATTEMPT: &str = "attempt";

pub fn migration_pk(id: &MigrationId) -> String {
    format!("MIGRATION#{id}")
}

fn attempt_sk(attempt: u32) -> String {
    format!("ATTEMPT#{attempt:06}")
}

#[derive(Serialize, Deserialize)]
struct AttemptItem {
    pk: String,
    sk: String,
    entity: String,
    #[serde(flatten)]
    attempt: Attempt,
}

/// Reads and writes the history table.
#[derive(Clone)]
pub struct HistoryStore {
    client: Client,
    table: String,
}

impl HistoryStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub async fn exists(&self) -> Result<bool, Error> {
        table_exists(&self.client, &self.table).await
    }

    /// Creates the table (on-demand billing) if it does not exist and waits until it is active.
    /// Called only by a real run, never by `status` or a dry run.
    pub async fn ensure_table(&self) -> Result<(), Error> {
        if self.exists().await? {
            return Ok(());
        }
        tracing::info!(table = %self.table, "creating history table");
        let key = |name: &str, key_type| {
            KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(|e| build_error(&e))
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| build_error(&e))
        };
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .key_schema(key("pk", KeyType::Hash)?)
            .key_schema(key("sk", KeyType::Range)?)
            .attribute_definitions(attribute("pk")?)
            .attribute_definitions(attribute("sk")?)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        if let Err(error) = created {
            // Another runner may have created it a moment ago: fine, we wait for it below.
            let racing = error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception());
            if !racing {
                return Err(Error::aws(format!("creating history table {}", self.table), error));
            }
        }
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(Duration::from_secs(300))
            .await
            .map_err(|e| Error::aws(format!("waiting for history table {} to become active", self.table), e))?;
        Ok(())
    }

    /// Every attempt of every migration (strongly consistent). An absent table is an empty history.
    pub async fn attempts(&self) -> Result<Vec<Attempt>, Error> {
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .filter_expression("entity = :attempt")
            .expression_attribute_values(":attempt", AttributeValue::S(ENTITY_ATTEMPT.into()))
            .into_paginator()
            .items()
            .send();
        let mut attempts = Vec::new();
        while let Some(item) = pages.next().await {
            let item = match item {
                Ok(item) => item,
                // No table yet is an empty history (status and dry runs never create it).
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => break,
                Err(e) => return Err(Error::aws(format!("reading history table {}", self.table), e)),
            };
            let record: AttemptItem = serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(|e| {
                Error::Config(format!("history table {} holds an attempt this version cannot read: {e}", self.table))
            })?;
            attempts.push(record.attempt);
        }
        attempts.sort_by(|a, b| (&a.migration_id, a.attempt).cmp(&(&b.migration_id, b.attempt)));
        Ok(attempts)
    }

    /// Writes an attempt (new or updated), fenced on `run_id` still holding the lock.
    pub async fn write_attempt(&self, attempt: &Attempt, run_id: &str) -> Result<(), Error> {
        let item = AttemptItem {
            pk: migration_pk(&attempt.migration_id),
            sk: attempt_sk(attempt.attempt),
            entity: ENTITY_ATTEMPT.into(),
            attempt: attempt.clone(),
        };
        let item: HashMap<String, AttributeValue> = serde_dynamo::aws_sdk_dynamodb_1::to_item(item)
            .map_err(|e| Error::Config(format!("cannot encode history record: {e}")))?;
        let put = Put::builder().table_name(&self.table).set_item(Some(item)).build().map_err(|e| build_error(&e))?;
        self.fenced_write(TransactWriteItem::builder().put(put).build(), run_id, "writing history").await
    }

    /// Runs one write in a transaction with a check that `run_id` still holds the lock.
    pub async fn fenced_write(&self, write: TransactWriteItem, run_id: &str, what: &str) -> Result<(), Error> {
        let fence = lock::fence(&self.table, run_id)?;
        let mut round = 0;
        loop {
            let request =
                self.client.transact_write_items().transact_items(fence.clone()).transact_items(write.clone());
            match request.send().await {
                Ok(_) => return Ok(()),
                Err(error) if lock::is_fence_failure(&error) => return Err(Error::LeaseLost),
                Err(error)
                    if round < PATIENCE_ROUNDS && (is_transient(&error) || lock::is_throttled_transaction(&error)) =>
                {
                    round += 1;
                    tracing::debug!(
                        "{what}: transient failure, waiting (round {round}): {}",
                        DisplayErrorContext(&error)
                    );
                    pause(round).await;
                }
                Err(error) => return Err(Error::aws(format!("{what} in {}", self.table), error)),
            }
        }
    }
}

/// Whether a table exists (any status).
pub async fn table_exists(client: &Client, table: &str) -> Result<bool, Error> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(true),
        Err(SdkError::ServiceError(e)) if matches!(e.err(), DescribeTableError::ResourceNotFoundException(_)) => {
            Ok(false)
        }
        Err(error) => Err(Error::aws(format!("describing table {table}"), error)),
    }
}

pub(crate) fn build_error(error: &dyn std::fmt::Display) -> Error {
    Error::Config(format!("internal error building a DynamoDB request: {error}"))
}
