//! Restores, always into a new table (DynamoDB cannot restore in place): from an on-demand backup,
//! or from point-in-time recovery to a time; waited for until the new table is ACTIVE.

use aws_sdk_dynamodb::types::TableStatus;
use aws_sdk_dynamodb::Client;
use aws_smithy_types::DateTime;
use serde::Serialize;

use super::wait::{until, Patience};
use crate::Error;

/// Where a restore comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestoreSource {
    Backup {
        arn: String,
    },
    /// The table as it was at `at_ms` (epoch milliseconds), or at the latest restorable time.
    PointInTime {
        table: String,
        at_ms: Option<u64>,
    },
}

/// A finished restore.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restored {
    pub table: String,
    /// The backup's ARN, or `<table> at <time>`.
    pub from: String,
    pub item_count: i64,
}

/// Starts the restore into `target` and waits until the new table is ACTIVE.
pub async fn restore(
    client: &Client,
    source: &RestoreSource,
    target: &str,
    patience: &Patience,
) -> Result<Restored, Error> {
    let from = match source {
        RestoreSource::Backup { arn } => {
            client
                .restore_table_from_backup()
                .backup_arn(arn)
                .target_table_name(target)
                .send()
                .await
                .map_err(|e| Error::aws(format!("restoring backup {arn} into {target}"), e))?;
            arn.clone()
        }
        RestoreSource::PointInTime { table, at_ms } => {
            let request = client.restore_table_to_point_in_time().source_table_name(table).target_table_name(target);
            let request = match at_ms {
                Some(ms) => request.restore_date_time(DateTime::from_millis(*ms as i64)),
                None => request.use_latest_restorable_time(true),
            };
            request
                .send()
                .await
                .map_err(|e| Error::aws(format!("restoring {table} to a point in time into {target}"), e))?;
            let when = at_ms.map_or("its latest restorable time".to_string(), crate::clock::rfc3339);
            format!("{table} at {when}")
        }
    };
    let item_count = until(patience, &format!("the restore into {target}"), || async {
        let described = client
            .describe_table()
            .table_name(target)
            .send()
            .await
            .map_err(|e| Error::aws(format!("reading restored table {target}"), e))?;
        let table = described.table.unwrap_or_else(|| aws_sdk_dynamodb::types::TableDescription::builder().build());
        Ok((table.table_status() == Some(&TableStatus::Active)).then(|| table.item_count().unwrap_or(0)))
    })
    .await?;
    Ok(Restored { table: target.into(), from, item_count })
}
