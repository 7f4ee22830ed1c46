//! The least-privilege IAM policy of a stage: exactly the actions `status`, `run`, `down`,
//! `versions`, backups, restores and exports call, on the stage's tables, its history table, their
//! backups and exports, and the export bucket. Pure; unit-tested here.

use serde_json::{json, Value};

/// What the policy covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyScope {
    pub region: String,
    /// The AWS account id, or `*` when not given.
    pub account: String,
    /// The tables migrations work on (the main table and the stage's `[tables]`).
    pub tables: Vec<String>,
    pub history_table: String,
    /// Where exports go: a bucket, and the prefix under it (empty: the whole bucket).
    pub export_bucket: Option<(String, String)>,
}

/// The policy document, as IAM reads it.
pub fn policy_document(scope: &PolicyScope) -> Value {
    let table = |name: &str| format!("arn:aws:dynamodb:{}:{}:table/{name}", scope.region, scope.account);
    let each = |suffix: &str| scope.tables.iter().map(|t| format!("{}{suffix}", table(t))).collect::<Vec<_>>();
    let mut statements = vec![
        statement(
            "MigrateItems",
            &[
                // Describe (key, size, capacity), scan, re-read after a conflict, guarded writes
                // (UpdateItem; DeleteItem for a deleting transform; BatchWriteItem in batch mode),
                // and the preflight's PITR check.
                "dynamodb:DescribeTable",
                "dynamodb:Scan",
                "dynamodb:GetItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:BatchWriteItem",
                "dynamodb:DescribeContinuousBackups",
            ],
            json!(each("")),
        ),
        statement(
            "History",
            &[
                // Created by the first run; the lock, attempts, catalog, checkpoints and censuses
                // are items written in fenced transactions (IAM checks each item's action).
                "dynamodb:CreateTable",
                "dynamodb:DescribeTable",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:GetItem",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:ConditionCheckItem",
            ],
            json!([table(&scope.history_table)]),
        ),
        statement(
            "PointInTimeRecovery",
            &["dynamodb:UpdateContinuousBackups", "dynamodb:RestoreTableToPointInTime", "dynamodb:CreateBackup"],
            json!(each("")),
        ),
        statement(
            "Backups",
            &["dynamodb:DescribeBackup", "dynamodb:DeleteBackup", "dynamodb:RestoreTableFromBackup"],
            json!(each("/backup/*")),
        ),
        // ListBackups takes no resource: IAM allows it on "*" only.
        statement("ListBackups", &["dynamodb:ListBackups"], json!("*")),
        statement(
            "RestoreTargets",
            &[
                // A restore writes a new table; DynamoDB checks these on it. The names restores go to
                // are the source's with a suffix (`<table>-restored-...`, or any `<table>-*`).
                "dynamodb:RestoreTableFromBackup",
                "dynamodb:RestoreTableToPointInTime",
                "dynamodb:DescribeTable",
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:DeleteItem",
                "dynamodb:GetItem",
                "dynamodb:Query",
                "dynamodb:Scan",
                "dynamodb:BatchWriteItem",
            ],
            json!(each("-*")),
        ),
    ];
    if let Some((bucket, prefix)) = &scope.export_bucket {
        let under = if prefix.is_empty() { "*".to_string() } else { format!("{}/*", prefix.trim_end_matches('/')) };
        statements.push(statement("Exports", &["dynamodb:ExportTableToPointInTime"], json!(each(""))));
        statements.push(statement("ExportStatus", &["dynamodb:DescribeExport"], json!(each("/export/*"))));
        statements.push(statement(
            "ExportObjects",
            &["s3:PutObject", "s3:AbortMultipartUpload", "s3:PutObjectAcl", "s3:GetObject"],
            json!([format!("arn:aws:s3:::{bucket}/{under}")]),
        ));
        statements.push(statement("ExportListing", &["s3:ListBucket"], json!([format!("arn:aws:s3:::{bucket}")])));
    }
    json!({ "Version": "2012-10-17", "Statement": statements })
}

fn statement(sid: &str, actions: &[&str], resource: Value) -> Value {
    json!({ "Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resource })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope() -> PolicyScope {
        PolicyScope {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            tables: vec!["prod-items".into(), "prod-orders".into()],
            history_table: "prod_history".into(),
            export_bucket: Some(("exports".into(), "dynamigrate/".into())),
        }
    }

    #[test]
    fn every_table_is_named_and_nothing_is_granted_on_every_table() {
        let document = policy_document(&scope());
        let text = document.to_string();
        for arn in [
            "arn:aws:dynamodb:eu-west-1:123456789012:table/prod-items",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/prod-orders/backup/*",
            "arn:aws:dynamodb:eu-west-1:123456789012:table/prod_history",
            "arn:aws:s3:::exports/dynamigrate/*",
        ] {
            assert!(text.contains(arn), "{arn} in {text}");
        }
        assert!(!text.contains("table/*"), "no statement covers every table");
        for statement in document["Statement"].as_array().unwrap() {
            assert_eq!(statement["Effect"], "Allow");
            let wildcard = statement["Resource"] == "*";
            assert!(!wildcard || statement["Action"] == json!(["dynamodb:ListBackups"]), "{statement}");
        }
        let without_exports = policy_document(&PolicyScope { export_bucket: None, ..scope() }).to_string();
        assert!(!without_exports.contains("s3:"), "{without_exports}");
    }
}
