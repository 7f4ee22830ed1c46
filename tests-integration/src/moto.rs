//! moto, the local stand-in for the DynamoDB APIs DynamoDB Local lacks (backups, point-in-time
//! recovery, restores, exports to S3), started by scripts/with-dynamodb-local.sh beside it.

use aws_sdk_dynamodb::Client;

use crate::{create_table, unique_name, World, ACCESS_KEY};

/// moto's endpoint. Panics with instructions when there is none: these tests never skip.
pub fn endpoint() -> String {
    match std::env::var("DYNAMIGRATE_TEST_MOTO_ENDPOINT") {
        Ok(endpoint) if !endpoint.is_empty() => endpoint,
        _ => panic!(
            "DYNAMIGRATE_TEST_MOTO_ENDPOINT is not set: this test needs the moto server (backups, PITR, \
             exports). Run the tests with scripts/test.sh, which installs it into tools/moto/.venv and starts it"
        ),
    }
}

/// A DynamoDB client of moto (at `endpoint`, which may be a proxy in front of it).
pub fn client_at(endpoint: &str) -> Client {
    let credentials = aws_sdk_dynamodb::config::Credentials::new(ACCESS_KEY, ACCESS_KEY, None, None, "tests");
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
        .region(aws_sdk_dynamodb::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .build();
    Client::from_conf(config)
}

impl World {
    /// A world on moto: a fresh table there, a history table name, the binary pointed at moto.
    pub async fn on_moto() -> Self {
        let endpoint = endpoint();
        let client = client_at(&endpoint);
        if let Err(e) = client.list_tables().limit(1).send().await {
            panic!(
                "moto at {endpoint} does not answer ({}); see scripts/moto.sh",
                aws_sdk_dynamodb::error::DisplayErrorContext(e)
            );
        }
        let table = unique_name("items");
        create_table(&client, &table).await;
        Self {
            client,
            endpoint,
            table,
            history: unique_name("history"),
            config: None,
            lease: dynamigrate::ledger::DEFAULT_LEASE,
        }
    }
}
