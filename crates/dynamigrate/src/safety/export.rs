//! Exports to S3 (ExportTableToPointInTime), waited for until COMPLETED, then read back from S3
//! with the official S3 client: the objects written under the prefix, and the manifest's item count
//! where DynamoDB wrote one.

use aws_sdk_dynamodb::types::{ExportFormat, ExportStatus};
use aws_sdk_dynamodb::Client;
use aws_smithy_types::DateTime;
use serde::Serialize;

use super::wait::{until, Patience};
use crate::Error;

/// What to export, where to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRequest {
    pub table: String,
    pub bucket: String,
    pub prefix: String,
    /// The table as it was then (epoch ms); `None`: now.
    pub at_ms: Option<u64>,
    /// `DYNAMODB_JSON` or `ION`.
    pub format: ExportFormat,
}

/// A finished export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Exported {
    pub arn: String,
    pub table: String,
    /// `s3://bucket/prefix`.
    pub location: String,
    /// The manifest's S3 key, when DynamoDB wrote one.
    pub manifest: Option<String>,
    pub item_count: Option<i64>,
    /// The objects under the prefix, as S3 lists them.
    pub objects: Vec<String>,
}

/// Starts the export and waits until it is COMPLETED; a FAILED one is an error with DynamoDB's reason.
pub async fn export(
    client: &Client,
    s3: &aws_sdk_s3::Client,
    request: &ExportRequest,
    patience: &Patience,
) -> Result<Exported, Error> {
    let table = &request.table;
    let described = client
        .describe_table()
        .table_name(table)
        .send()
        .await
        .map_err(|e| Error::aws(format!("describing {table}"), e))?;
    let arn = described.table.and_then(|t| t.table_arn).ok_or_else(|| Error::TableNotFound { table: table.clone() })?;
    let started = client
        .export_table_to_point_in_time()
        .table_arn(arn)
        .s3_bucket(&request.bucket)
        // Always a prefix: the real API makes it optional, moto answers 500 without one.
        .s3_prefix(&request.prefix)
        .export_format(request.format.clone())
        .set_export_time(request.at_ms.map(|ms| DateTime::from_millis(ms as i64)))
        .send()
        .await
        .map_err(|e| Error::aws(format!("exporting {table} to s3://{}/{}", request.bucket, request.prefix), e))?;
    let export_arn = started
        .export_description
        .and_then(|d| d.export_arn)
        .ok_or_else(|| Error::Internal("ExportTableToPointInTime answered no ARN".into()))?;
    let description = until(patience, &format!("the export of {table}"), || async {
        let now = client
            .describe_export()
            .export_arn(&export_arn)
            .send()
            .await
            .map_err(|e| Error::aws(format!("reading export {export_arn}"), e))?
            .export_description
            .ok_or_else(|| Error::Internal("DescribeExport answered nothing".into()))?;
        match now.export_status() {
            Some(ExportStatus::Completed) => Ok(Some(now)),
            Some(ExportStatus::Failed) => Err(Error::Invalid(format!(
                "the export of {table} failed: {}",
                now.failure_message().unwrap_or("DynamoDB gave no reason")
            ))),
            _ => Ok(None),
        }
    })
    .await?;
    let objects = list(s3, &request.bucket, &request.prefix).await?;
    let manifest = description.export_manifest.clone().filter(|key| objects.contains(key));
    Ok(Exported {
        arn: export_arn.clone(),
        table: table.clone(),
        location: format!("s3://{}/{}", request.bucket, request.prefix),
        item_count: description.item_count.or(match &manifest {
            Some(key) => manifest_items(s3, &request.bucket, key).await,
            None => None,
        }),
        manifest,
        objects,
    })
}

/// Every key under `prefix` (ListObjectsV2, every page).
async fn list(s3: &aws_sdk_s3::Client, bucket: &str, prefix: &str) -> Result<Vec<String>, Error> {
    let mut keys = Vec::new();
    let mut pages = s3.list_objects_v2().bucket(bucket).prefix(prefix).into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(|e| Error::Aws {
            context: format!("listing s3://{bucket}/{prefix}"),
            message: aws_sdk_s3::error::DisplayErrorContext(e).to_string(),
        })?;
        keys.extend(page.contents().iter().filter_map(|o| o.key().map(str::to_string)));
    }
    Ok(keys)
}

/// `itemCount` of a `manifest-summary.json`, if it can be read.
async fn manifest_items(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Option<i64> {
    let object = s3.get_object().bucket(bucket).key(key).send().await.ok()?;
    let bytes = object.body.collect().await.ok()?.into_bytes();
    serde_json::from_slice::<serde_json::Value>(&bytes).ok()?["itemCount"].as_i64()
}
