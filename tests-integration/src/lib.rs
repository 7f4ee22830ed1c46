//! Support for the integration tests: a client for the DynamoDB Local that
//! `scripts/with-dynamodb-local.sh` started, uniquely named tables so tests run in parallel, the
//! fixture migrations, and a way to run the fixture binary as a real process.

pub mod fixtures;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
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
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .expect("create table");
}

pub async fn table_exists(client: &Client, name: &str) -> bool {
    dynamigrate::history::table_exists(client, name).await.expect("describe table")
}

/// Every item of a table, sorted, as text: two equal snapshots mean byte-for-byte equal contents.
/// An absent table snapshots as `None`.
pub async fn snapshot(client: &Client, table: &str) -> Option<Vec<String>> {
    if !table_exists(client, table).await {
        return None;
    }
    let mut items: Vec<String> =
        scan_all(client, table).await.iter().map(|item| format!("{:?}", sorted(item))).collect();
    items.sort();
    Some(items)
}

fn sorted(item: &Item) -> Vec<(&String, &AttributeValue)> {
    let mut pairs: Vec<_> = item.iter().collect();
    pairs.sort_by_key(|(k, _)| *k);
    pairs
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
    pub table: String,
    pub history: String,
    pub config: Option<PathBuf>,
}

/// A finished process: its exit code and what it printed.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl World {
    pub async fn new() -> Self {
        let client = client().await;
        let table = unique_name("items");
        create_table(&client, &table).await;
        Self { client, table, history: unique_name("history"), config: None }
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
        let mut command = tokio::process::Command::new(fixture_binary());
        command
            .arg("--endpoint-url")
            .arg(endpoint())
            .arg("--table")
            .arg(&self.table)
            .arg("--history-table")
            .arg(&self.history)
            .args(args)
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
        if let Some(config) = &self.config {
            command.arg("--config").arg(config);
        }
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

    pub async fn attempts(&self) -> Vec<dynamigrate::Attempt> {
        dynamigrate::history::HistoryStore::new(self.client.clone(), &self.history).attempts().await.expect("history")
    }
}

/// The `fixture-migrations` binary cargo built beside the test executable (`target/<profile>/`).
fn fixture_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target dir");
    let binary = dir.join(format!("fixture-migrations{}", std::env::consts::EXE_SUFFIX));
    assert!(binary.exists(), "{} is missing: build with `cargo test -p dynamigrate-tests`", binary.display());
    binary
}

pub async fn finish(child: tokio::process::Child) -> Ran {
    let output = child.wait_with_output().await.expect("wait for fixture binary");
    Ran {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}
