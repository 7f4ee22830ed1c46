//! Point-in-time recovery: whether it is on for a table (and since when a restore can reach), and
//! turning it on.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::{PointInTimeRecoverySpecification, PointInTimeRecoveryStatus};
use aws_sdk_dynamodb::Client;
use serde::Serialize;

use crate::Error;

/// A table's point-in-time recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pitr {
    pub table: String,
    pub enabled: bool,
    /// RFC 3339: the earliest time a restore can go back to, when enabled.
    pub earliest_restorable: Option<String>,
    pub latest_restorable: Option<String>,
}

/// Reads `table`'s continuous backups (DescribeContinuousBackups).
pub async fn pitr(client: &Client, table: &str) -> Result<Pitr, Error> {
    let described = client.describe_continuous_backups().table_name(table).send().await.map_err(|e| {
        // DynamoDB Local has no backups at all: say so, rather than pass for "off".
        if e.code() == Some("UnknownOperationException") {
            return Error::Invalid(format!(
                "this endpoint cannot tell whether point-in-time recovery is on for {table} (it does not know \
                 DescribeContinuousBackups, as DynamoDB Local does not); set require_pitr = false for a stage on it"
            ));
        }
        Error::aws(format!("reading the point-in-time recovery of {table}"), e)
    })?;
    let recovery = described.continuous_backups_description.and_then(|d| d.point_in_time_recovery_description);
    let time = |t: Option<&aws_smithy_types::DateTime>| {
        t.and_then(|t| t.to_millis().ok()).and_then(|ms| u64::try_from(ms).ok()).map(crate::clock::rfc3339)
    };
    Ok(Pitr {
        table: table.into(),
        enabled: recovery
            .as_ref()
            .and_then(|r| r.point_in_time_recovery_status.as_ref())
            .is_some_and(|s| *s == PointInTimeRecoveryStatus::Enabled),
        earliest_restorable: time(recovery.as_ref().and_then(|r| r.earliest_restorable_date_time.as_ref())),
        latest_restorable: time(recovery.as_ref().and_then(|r| r.latest_restorable_date_time.as_ref())),
    })
}

/// Turns point-in-time recovery on for `table` (UpdateContinuousBackups) and reads it back.
pub async fn enable_pitr(client: &Client, table: &str) -> Result<Pitr, Error> {
    let on = PointInTimeRecoverySpecification::builder()
        .point_in_time_recovery_enabled(true)
        .build()
        .map_err(Error::request)?;
    client
        .update_continuous_backups()
        .table_name(table)
        .point_in_time_recovery_specification(on)
        .send()
        .await
        .map_err(|e| Error::aws(format!("turning on point-in-time recovery for {table}"), e))?;
    pitr(client, table).await
}
