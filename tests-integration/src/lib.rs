//! Support for the integration tests: a client for the DynamoDB Local that
//! `scripts/with-dynamodb-local.sh` started, uniquely named tables so tests run in parallel, the
//! fixture migrations, and a way to run the fixture binary as a real process.

pub mod app_js;
pub mod backfills;
pub mod bad;
pub mod files;
pub mod fixtures;
mod items;
pub mod moto;
pub mod planted;
pub mod process;
pub mod proxy;

pub use items::{canonical_item, every_type, versioned_item, BIG_NUMBER};
use process::fixture_binary;
pub use process::{finish, Ran};

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;

pub type Item = HashMap<String, AttributeValue>;

/// The DynamoDB Local endpoint. Panics with instructions when there is none: these tests never skip.
pub fn endpoint() -> String {
    match std::env::var("DYNAMIGRATE_TEST_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => panic!(
            "DYNAMIGRATE_TEST_ENDPOINT is not set: this test needs DynamoDB Local. \
             Run the tests with scripts/test.sh, or wrap cargo test in scripts/with-dynamodb-local.sh"
        ),
    }
}

/// Dummy credentials DynamoDB Local accepts (letters and digits only).
pub const ACCESS_KEY: &str = "dynamigratelocal";

pub async fn client() -> Client {
    let endpoint = endpoint();
    let credentials = aws_sdk_dynamodb::config::Credentials::new(ACCESS_KEY, ACCESS_KEY, None, None, "tests");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(&endpoint)
        .credentials_provider(credentials)
        .build();
    let client = Client::from_conf(config);
    if let Err(e) = client.list_tables().limit(1).send().await {
        panic!(
            "DynamoDB Local at {endpoint} does not answer ({}); start it with scripts/with-dynamodb-local.sh",
            aws_sdk_dynamodb::error::DisplayErrorContext(e)
        );
    }
    client
}

/// A table name no other test uses.
pub fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", uuid::Uuid::new_v4().simple())
}

/// Creates a `pk`/`sk` string-keyed table like the demo's.
pub async fn create_table(client: &Client, name: &str) {
    create_table_billed(client, name, None).await;
}

/// A provisioned table with this write and read capacity (DynamoDB Local records it and reports it
/// in DescribeTable, but never enforces it: the fault proxy's capacity mode does).
pub async fn create_provisioned_table(client: &Client, name: &str, write_units: i64, read_units: i64) {
    create_table_billed(client, name, Some((write_units, read_units))).await;
}

async fn create_table_billed(client: &Client, name: &str, provisioned: Option<(i64, i64)>) {
    let billing = match provisioned {
        Some((write_units, read_units)) => (
            BillingMode::Provisioned,
            Some(
                aws_sdk_dynamodb::types::ProvisionedThroughput::builder()
                    .write_capacity_units(write_units)
                    .read_capacity_units(read_units)
                    .build()
                    .expect("throughput"),
            ),
        ),
        None => (BillingMode::PayPerRequest, None),
    };
    client
        .create_table()
        .table_name(name)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .key_schema(KeySchemaElement::builder().attribute_name("sk").key_type(KeyType::Range).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("sk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .billing_mode(billing.0)
        .set_provisioned_throughput(billing.1)
        .send()
        .await
        .expect("create table");
}

pub async fn table_exists(client: &Client, name: &str) -> bool {
    dynamigrate::aws::table_exists(client, name).await.expect("describe table")
}

/// Writes items with BatchWriteItem, 25 at a time, a few calls in flight, until none is unprocessed.
pub async fn put_items(client: &Client, table: &str, items: Vec<Item>) {
    let mut calls = tokio::task::JoinSet::new();
    let mut rest = items;
    while !rest.is_empty() {
        let chunk: Vec<Item> = rest.drain(..rest.len().min(25)).collect();
        let (client, table) = (client.clone(), table.to_string());
        calls.spawn(async move {
            let mut requests: Vec<WriteRequest> = chunk
                .into_iter()
                .map(|item| {
                    WriteRequest::builder()
                        .put_request(PutRequest::builder().set_item(Some(item)).build().unwrap())
                        .build()
                })
                .collect();
            while !requests.is_empty() {
                let output =
                    client.batch_write_item().request_items(&table, requests).send().await.expect("batch write");
                requests = output.unprocessed_items.and_then(|mut u| u.remove(&table)).unwrap_or_default();
            }
        });
        while calls.len() >= 8 {
            calls.join_next().await.unwrap().unwrap();
        }
    }
    while let Some(done) = calls.join_next().await {
        done.unwrap();
    }
}

/// The seed scenario's "before" items: `pk: ITEM#n, sk: METADATA, name, description`, n = 1..=count.
pub fn seed_items(count: usize) -> Vec<Item> {
    (1..=count)
        .map(|n| {
            Item::from([
                ("pk".to_string(), AttributeValue::S(format!("ITEM#{n}"))),
                ("sk".to_string(), AttributeValue::S("METADATA".into())),
                ("name".to_string(), AttributeValue::S(format!("My Item {n}"))),
                ("description".to_string(), AttributeValue::S(format!("Simple description of item {n}"))),
            ])
        })
        .collect()
}

/// Every item of a table, sorted, in a canonical text form (map keys and set elements sorted, every
/// type tagged): two equal snapshots mean equal contents, value for value and type for type.
/// An absent table snapshots as `None`.
pub async fn snapshot(client: &Client, table: &str) -> Option<Vec<String>> {
    if !table_exists(client, table).await {
        return None;
    }
    let mut items: Vec<String> = scan_all(client, table).await.iter().map(canonical_item).collect();
    items.sort();
    Some(items)
}

/// Asserts two snapshots are equal without printing whole tables when they are not.
pub fn assert_same(left: &Option<Vec<String>>, right: &Option<Vec<String>>, what: &str) {
    if left != right {
        let first = match (left, right) {
            (Some(l), Some(r)) => l.iter().zip(r).find(|(a, b)| a != b).map(|(a, b)| format!("{a}\n  vs {b}")),
            _ => None,
        };
        panic!(
            "{what}: snapshots differ ({:?} vs {:?} items); first difference: {}",
            left.as_ref().map(Vec::len),
            right.as_ref().map(Vec::len),
            first.unwrap_or_default()
        );
    }
}

pub async fn scan_all(client: &Client, table: &str) -> Vec<Item> {
    let mut pages = client.scan().table_name(table).consistent_read(true).into_paginator().items().send();
    let mut items = Vec::new();
    while let Some(item) = pages.next().await {
        items.push(item.expect("scan"));
    }
    items
}

pub async fn get_item(client: &Client, table: &str, pk: &str, sk: &str) -> Option<Item> {
    client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("get item")
        .item
}

pub fn s(item: &Item, name: &str) -> Option<String> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v.clone()),
        _ => None,
    }
}

pub fn n(item: &Item, name: &str) -> Option<i64> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().ok(),
        _ => None,
    }
}

/// One test's world: a fresh target table and a history table name, and the fixture binary.
pub struct World {
    pub client: Client,
    /// Where the binary and runners go: DynamoDB Local, or moto (see [`World::on_moto`]).
    pub endpoint: String,
    pub table: String,
    pub history: String,
    pub config: Option<PathBuf>,
    /// Lease of in-process runners made by [`World::runner_via`].
    pub lease: std::time::Duration,
}

impl World {
    pub async fn new() -> Self {
        let client = client().await;
        let table = unique_name("items");
        create_table(&client, &table).await;
        Self {
            client,
            endpoint: endpoint(),
            table,
            history: unique_name("history"),
            config: None,
            lease: dynamigrate::ledger::DEFAULT_LEASE,
        }
    }

    /// A world on an existing table (the benchmark seeds its own).
    pub async fn new_for_table(table: &str) -> Self {
        Self {
            client: client().await,
            endpoint: endpoint(),
            table: table.to_string(),
            history: unique_name("history"),
            config: None,
            lease: dynamigrate::ledger::DEFAULT_LEASE,
        }
    }

    /// Writes a config file for this world and passes it with `--config` from then on.
    pub fn with_config(mut self, toml: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{}.toml", unique_name("dynamigrate")));
        std::fs::write(&path, toml).expect("write config");
        self.config = Some(path);
        self
    }

    /// The fixture binary with this world's endpoint, table and history table.
    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_of(&fixture_binary(), args)
    }

    /// `binary` with this world's credentials, endpoint, table, history table and config.
    pub fn command_of(&self, binary: &std::path::Path, args: &[&str]) -> tokio::process::Command {
        let mut command = Self::program(binary);
        command
            .arg("--endpoint-url")
            .arg(&self.endpoint)
            .arg("--table")
            .arg(&self.table)
            .arg("--history-table")
            .arg(&self.history)
            .args(args);
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
        command
    }

    /// The fixture binary with this world's credentials and region but no arguments.
    pub fn bare_command(&self) -> tokio::process::Command {
        Self::program(&fixture_binary())
    }

    /// `binary` with the tests' dummy credentials and region, no config and no stage from outside.
    pub fn program(binary: &std::path::Path) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(binary);
        command
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", ACCESS_KEY)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("STAGE")
            .env_remove("DYNAMIGRATE_CONFIG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    }

    pub async fn run(&self, args: &[&str]) -> Ran {
        self.run_with(args, &[]).await
    }

    pub async fn run_with(&self, args: &[&str], env: &[(&str, &str)]) -> Ran {
        let mut command = self.command(args);
        command.envs(env.iter().copied());
        finish(command.spawn().expect("spawn fixture binary")).await
    }

    /// The marker a fixture migration writes: how many times its `up` ran for real.
    pub async fn marker_runs(&self, id: &str) -> Option<i64> {
        get_item(&self.client, &self.table, &format!("MARK#{id}"), "MARK")
            .await
            .map(|item| n(&item, "runs").unwrap_or(0))
    }

    /// An in-process runner on this world (it reports to no one).
    pub fn runner(&self, migrations: Vec<Box<dyn dynamigrate::Migration>>) -> dynamigrate::Runner {
        let mut config = dynamigrate::RunnerConfig::new("dev", &self.table);
        config.history_table = self.history.clone();
        let set = dynamigrate::MigrationSet::new(migrations).expect("valid migrations");
        dynamigrate::Runner::new(self.client.clone(), config, set)
    }

    /// An in-process runner whose DynamoDB traffic goes to `endpoint` (a fault proxy), with
    /// dynamigrate's own client: its retry settings and retry counters.
    pub fn runner_via(&self, endpoint: &str, migrations: Vec<Box<dyn dynamigrate::Migration>>) -> dynamigrate::Runner {
        let credentials = aws_sdk_dynamodb::config::Credentials::new(ACCESS_KEY, ACCESS_KEY, None, None, "tests");
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .endpoint_url(endpoint)
            .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(credentials))
            .build();
        let (client, stats) = dynamigrate::aws::migration_client(&sdk, &dynamigrate::aws::RetryOptions::default());
        let mut config = dynamigrate::RunnerConfig::new("dev", &self.table);
        config.history_table = self.history.clone();
        config.lease = self.lease;
        let set = dynamigrate::MigrationSet::new(migrations).expect("valid migrations");
        dynamigrate::Runner::new(client, config, set).with_retry_stats(stats)
    }

    /// The backfill checkpoint items in the history table.
    pub async fn checkpoints(&self) -> Vec<Item> {
        if !table_exists(&self.client, &self.history).await {
            return Vec::new();
        }
        scan_all(&self.client, &self.history)
            .await
            .into_iter()
            .filter(|item| s(item, "entity").as_deref() == Some("checkpoint"))
            .collect()
    }

    pub async fn attempts(&self) -> Vec<dynamigrate::Attempt> {
        dynamigrate::Ledger::new(self.client.clone(), &self.history).all_attempts().await.expect("history")
    }
}
