//! Demo helper: creates the demo table with the seed's "before" items, and prints one item.
//!
//!   demo-seed create --table demo-items --items 20000
//!   demo-seed show --table demo-items --pk 'ITEM#42'

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest, ScalarAttributeType,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use clap::{Parser, Subcommand};

#[derive(Parser)]
struct Args {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Create the table (pk/sk) and write ITEM#1..ITEM#N with name and description
    Create {
        #[arg(long)]
        table: String,
        #[arg(long, default_value_t = 20_000)]
        items: usize,
    },
    /// Print one item as JSON
    Show {
        #[arg(long)]
        table: String,
        #[arg(long)]
        pk: String,
        #[arg(long, default_value = "METADATA")]
        sk: String,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&config);
    match args.command {
        Cmd::Create { table, items } => create(&client, &table, items).await,
        Cmd::Show { table, pk, sk } => show(&client, &table, &pk, &sk).await,
    }
}

async fn create(client: &Client, table: &str, items: usize) -> anyhow::Result<()> {
    client
        .create_table()
        .table_name(table)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build()?)
        .key_schema(KeySchemaElement::builder().attribute_name("sk").key_type(KeyType::Range).build()?)
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build()?,
        )
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("sk").attribute_type(ScalarAttributeType::S).build()?,
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await?;
    let mut writes = tokio::task::JoinSet::new();
    for chunk_start in (1..=items).step_by(25) {
        let requests: Vec<WriteRequest> = (chunk_start..(chunk_start + 25).min(items + 1))
            .map(|n| {
                let item = HashMap::from([
                    ("pk".to_string(), AttributeValue::S(format!("ITEM#{n}"))),
                    ("sk".to_string(), AttributeValue::S("METADATA".into())),
                    ("name".to_string(), AttributeValue::S(format!("My Item {n}"))),
                    ("description".to_string(), AttributeValue::S(format!("Simple description of item {n}"))),
                ]);
                PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map(|put| WriteRequest::builder().put_request(put).build())
            })
            .collect::<Result<_, _>>()?;
        let (client, table) = (client.clone(), table.to_string());
        writes.spawn(async move { write_all(&client, &table, requests).await });
        while writes.len() >= 8 {
            writes.join_next().await.transpose()?.transpose()?;
        }
    }
    while let Some(done) = writes.join_next().await {
        done??;
    }
    eprintln!("created table {table} with {items} items");
    Ok(())
}

/// BatchWriteItem until nothing is left unprocessed.
async fn write_all(client: &Client, table: &str, mut requests: Vec<WriteRequest>) -> anyhow::Result<()> {
    while !requests.is_empty() {
        let output = client.batch_write_item().request_items(table, requests).send().await?;
        requests = output.unprocessed_items.and_then(|mut u| u.remove(table)).unwrap_or_default();
    }
    Ok(())
}

async fn show(client: &Client, table: &str, pk: &str, sk: &str) -> anyhow::Result<()> {
    let output = client
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .send()
        .await?;
    let item = output.item.ok_or_else(|| anyhow::anyhow!("no item {pk} / {sk} in {table}"))?;
    let value: serde_json::Value = serde_dynamo::aws_sdk_dynamodb_1::from_item(item)?;
    println!("{}", serde_json::to_string_pretty(&value)?);
    Ok(())
}
