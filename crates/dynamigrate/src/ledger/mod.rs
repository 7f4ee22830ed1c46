//! The ledger: the history table, the one module that reads and writes it.
//!
//! It keeps every attempt of every migration, each migration's latest attempt in a catalog, the
//! runner's lock, and backfill checkpoints; [`keys`] is its layout. Every item read from it is
//! decoded into a typed value, and an item that does not decode is [`Error::CorruptLedger`],
//! naming the item. Writes made while a run holds the lock are transactions that also check the
//! lock still names the writer ([`Fence`]): a runner that lost its lease cannot write.

mod attempts;
mod census;
mod checkpoints;
mod fields;
pub mod keys;
mod lease;
mod lock;

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;

pub use attempts::MAX_ATTEMPT;
pub use checkpoints::{Checkpoint, CheckpointStore, Counts, MAX_SEGMENTS};
pub use keys::ItemKey;
pub use lease::{Fence, HeldLease, LeaseTerms, Leased};
pub use lock::{Holder, LeaseLock, LockHolder, UnlockOutcome, UnlockRefusal, DEFAULT_LEASE};

use crate::aws::{is_transient, patiently, table_exists, Item};
use crate::Error;

pub const DEFAULT_HISTORY_TABLE: &str = "dynamigrate_history";

/// A handle on one history table.
#[derive(Clone)]
pub struct Ledger {
    client: Client,
    table: String,
}

impl Ledger {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub async fn exists(&self) -> Result<bool, Error> {
        table_exists(&self.client, &self.table).await
    }

    /// Whether the history table exists and, if it does, that it is one: keyed `pk` (S) / `sk` (S)
    /// and holding only the kinds of item the ledger writes. Anything else (the migrated table named
    /// by mistake, another tool's table) is refused before a single item is read or written.
    pub async fn verify(&self) -> Result<bool, Error> {
        if !self.verify_keys().await? {
            return Ok(false);
        }
        self.verify_sample().await.map(|()| true)
    }

    /// The first half of [`Self::verify`]: whether the table exists, and is keyed as a history.
    pub(crate) async fn verify_keys(&self) -> Result<bool, Error> {
        let described = self.client.describe_table().table_name(&self.table).send().await;
        let table = match described {
            Ok(output) => output.table,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(false),
            Err(e) => return Err(Error::aws(format!("describing history table {}", self.table), e)),
        };
        let keys = table.as_ref().map(keys::schema_of).unwrap_or_default();
        if keys != keys::LEDGER_SCHEMA {
            return Err(self.not_a_ledger(format!("it is keyed {}, not pk (S) and sk (S)", keys::describe(&keys))));
        }
        Ok(true)
    }

    /// The second half of [`Self::verify`], once the keys are right: a sample of the items holds
    /// only what the ledger writes. Read-only, so it may go out with other reads; its error is the
    /// one to report.
    pub(crate) async fn verify_sample(&self) -> Result<(), Error> {
        let sample = self
            .client
            .scan()
            .table_name(&self.table)
            .limit(25)
            .projection_expression("pk, sk, #entity")
            .expression_attribute_names("#entity", "entity")
            .send()
            .await
            .map_err(|e| Error::aws(format!("reading history table {}", self.table), e))?;
        if let Some(stranger) = sample.items().iter().find(|item| !keys::is_ledger_item(item)) {
            let key = ItemKey::of(stranger);
            return Err(self.not_a_ledger(format!("it holds {key}, which is not an item dynamigrate writes")));
        }
        Ok(())
    }

    fn not_a_ledger(&self, why: String) -> Error {
        Error::NotALedger { table: self.table.clone(), why }
    }

    /// Creates the table (on-demand billing) if it does not exist and waits until it is active.
    /// Called only by a real run, never by `status` or a dry run.
    pub async fn ensure_table(&self) -> Result<(), Error> {
        if self.exists().await? {
            return Ok(());
        }
        tracing::info!(table = %self.table, "creating history table");
        let key = |name: &str, key_type| {
            KeySchemaElement::builder().attribute_name(name).key_type(key_type).build().map_err(Error::request)
        };
        let attribute = |name: &str| {
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(Error::request)
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

    /// Every item of one partition whose sort key begins with `prefix`, strongly consistent. An
    /// absent table is an empty ledger (status and dry runs never create it).
    async fn query(&self, pk: &str, prefix: &str) -> Result<Vec<Item>, Error> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .consistent_read(true)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
            .expression_attribute_values(":prefix", AttributeValue::S(prefix.into()))
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            match item {
                Ok(item) => items.push(item),
                Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => break,
                Err(e) => return Err(Error::aws(format!("reading history table {}", self.table), e)),
            }
        }
        Ok(items)
    }

    /// Decodes an item of kind `entity` read from the ledger, or names it as corrupt, with the
    /// field at fault.
    fn decode<T: DeserializeOwned>(&self, entity: keys::Entity, item: Item) -> Result<T, Error> {
        let key = ItemKey::of(&item);
        fields::check(entity, &item).map_err(|problem| self.corrupt(key.clone(), problem))?;
        serde_dynamo::aws_sdk_dynamodb_1::from_item(item).map_err(|e| self.corrupt(key, e))
    }

    fn corrupt(&self, key: ItemKey, problem: impl std::fmt::Display) -> Error {
        Error::CorruptLedger { table: self.table.clone(), key, problem: problem.to_string() }
    }

    /// Runs `writes` in one transaction that also checks `fence` still holds: a writer that lost
    /// its lease writes nothing. Throttling and transient conflicts are waited out.
    pub(crate) async fn fenced_write(
        &self,
        writes: Vec<TransactWriteItem>,
        fence: &Fence,
        what: &str,
    ) -> Result<(), Error> {
        let check = fence.check(&self.table)?;
        let send = || {
            let items = std::iter::once(check.clone()).chain(writes.iter().cloned()).collect();
            self.client.transact_write_items().set_transact_items(Some(items)).send()
        };
        let transient = |e: &_| is_transient(e) || lease::is_throttled_transaction(e);
        let log = |round, e: &_| {
            tracing::debug!("{what}: transient failure, waiting (round {round}): {}", DisplayErrorContext(e))
        };
        // Recording history is finished even while the run stops: no `until`.
        match patiently(send, transient, log, None).await {
            Ok(_) => Ok(()),
            Err(error) if lease::is_fence_failure(&error) => Err(Error::LeaseLost),
            Err(error) => Err(Error::aws(format!("{what} in {}", self.table), error)),
        }
    }
}
