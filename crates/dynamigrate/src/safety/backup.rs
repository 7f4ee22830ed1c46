//! On-demand backups: a name that says whose and when, create, wait until AVAILABLE, list, delete.

use aws_sdk_dynamodb::types::BackupStatus;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use super::wait::{until, Patience};
use crate::id::MigrationId;
use crate::Error;

/// One backup, as DynamoDB describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub arn: String,
    pub name: String,
    pub table: String,
    /// CREATING, AVAILABLE or DELETED.
    pub status: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<i64>,
}

/// `dynamigrate-<table>-<migration>-<YYYYMMDDTHHMMSSZ>`: sorted by time within a table and a
/// migration, and within DynamoDB's rule for backup names (3 to 255 of `A-Za-z0-9_.-`).
pub fn backup_name(table: &str, migration: Option<&MigrationId>, at_ms: u64) -> String {
    let time: String =
        crate::clock::rfc3339(at_ms).chars().take(19).filter(|c| c.is_ascii_digit() || *c == 'T').collect();
    let what = migration.map_or("manual".to_string(), |id| id.to_string());
    let name = format!("dynamigrate-{table}-{what}-{time}Z");
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    let clean: String = name.chars().map(|c| if allowed(c) { c } else { '-' }).collect();
    // A long table name is cut in the middle of the name, never the time that ends it.
    if clean.len() <= 255 {
        clean
    } else {
        let tail = &clean[clean.len() - 120..];
        format!("{}{tail}", &clean[..135])
    }
}

fn time(t: Option<&aws_smithy_types::DateTime>) -> Option<String> {
    t.and_then(|t| t.to_millis().ok()).and_then(|ms| u64::try_from(ms).ok()).map(crate::clock::rfc3339)
}

/// Starts an on-demand backup of `table` (CreateBackup); it is CREATING until DynamoDB finishes it.
pub async fn create_backup(client: &Client, table: &str, name: &str) -> Result<Backup, Error> {
    let created = client
        .create_backup()
        .table_name(table)
        .backup_name(name)
        .send()
        .await
        .map_err(|e| Error::aws(format!("creating a backup of {table}"), e))?;
    let details = created.backup_details.ok_or_else(|| Error::Internal("CreateBackup answered no details".into()))?;
    Ok(Backup {
        arn: details.backup_arn,
        name: details.backup_name,
        table: table.into(),
        status: details.backup_status.as_str().into(),
        created_at: time(Some(&details.backup_creation_date_time)),
        size_bytes: details.backup_size_bytes,
    })
}

/// One backup (DescribeBackup).
pub async fn describe_backup(client: &Client, arn: &str) -> Result<Backup, Error> {
    let described = client
        .describe_backup()
        .backup_arn(arn)
        .send()
        .await
        .map_err(|e| Error::aws(format!("reading backup {arn}"), e))?;
    let missing = || Error::Invalid(format!("no backup {arn}"));
    let description = described.backup_description.ok_or_else(missing)?;
    let details = description.backup_details.ok_or_else(missing)?;
    Ok(Backup {
        arn: details.backup_arn,
        name: details.backup_name,
        table: description.source_table_details.map(|t| t.table_name).unwrap_or_default(),
        status: details.backup_status.as_str().into(),
        created_at: time(Some(&details.backup_creation_date_time)),
        size_bytes: details.backup_size_bytes,
    })
}

/// Waits until the backup is AVAILABLE; a backup that ends otherwise (DELETED) is an error.
pub async fn wait_for_backup(client: &Client, backup: &Backup, patience: &Patience) -> Result<Backup, Error> {
    let what = format!("backup {} of {}", backup.name, backup.table);
    until(patience, &what, || async {
        let now = describe_backup(client, &backup.arn).await?;
        match BackupStatus::from(now.status.as_str()) {
            BackupStatus::Available => Ok(Some(now)),
            BackupStatus::Creating => Ok(None),
            _ => Err(Error::Backup { table: backup.table.clone(), message: format!("it is {}", now.status) }),
        }
    })
    .await
}

/// The backups of `table` (or of every table), newest first (ListBackups, every page).
pub async fn list_backups(client: &Client, table: Option<&str>) -> Result<Vec<Backup>, Error> {
    let mut backups = Vec::new();
    let mut start: Option<String> = None;
    loop {
        let page = client
            .list_backups()
            .set_table_name(table.map(str::to_string))
            .set_exclusive_start_backup_arn(start.take())
            .send()
            .await
            .map_err(|e| Error::aws("listing backups", e))?;
        backups.extend(page.backup_summaries().iter().map(|s| Backup {
            arn: s.backup_arn().unwrap_or_default().into(),
            name: s.backup_name().unwrap_or_default().into(),
            table: s.table_name().unwrap_or_default().into(),
            status: s.backup_status().map(|s| s.as_str().to_string()).unwrap_or_default(),
            created_at: time(s.backup_creation_date_time()),
            size_bytes: s.backup_size_bytes(),
        }));
        match page.last_evaluated_backup_arn {
            Some(next) => start = Some(next),
            None => break,
        }
    }
    backups.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    Ok(backups)
}

/// Deletes a backup (DeleteBackup); returns it as it was.
pub async fn delete_backup(client: &Client, arn: &str) -> Result<Backup, Error> {
    let before = describe_backup(client, arn).await?;
    client.delete_backup().backup_arn(arn).send().await.map_err(|e| Error::aws(format!("deleting backup {arn}"), e))?;
    Ok(before)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_say_whose_and_when_within_dynamodbs_rule() {
        let id = MigrationId::parse("20250201_add_status").unwrap();
        assert_eq!(
            backup_name("prod-items", Some(&id), 1_764_315_456_123),
            "dynamigrate-prod-items-20250201_add_status-20251128T073736Z"
        );
        assert_eq!(backup_name("t.x", None, 0), "dynamigrate-t.x-manual-19700101T000000Z");
        let long = backup_name(&"t".repeat(255), Some(&id), 0);
        assert!(long.len() <= 255 && long.ends_with("-19700101T000000Z"), "{long}");
    }
}
