//! The safety rails' commands: `pitr`, `backup` and `policy`, and how their results read.

use std::io::Write;

use dynamigrate::runner::Restore;
use dynamigrate::safety::{policy_document, Backup, ExportRequest, PolicyScope};
use dynamigrate::Runner;

use crate::args::{BackupAction, ExportArgs, ExportFormat, PitrAction, RestoreArgs};
use crate::config::Stage;
use crate::{confirm, exit, output, Failure};

/// `pitr [status|enable]` on the table `--table` names, or the stage's.
pub async fn pitr(runner: &Runner, table: Option<&str>, action: Option<PitrAction>, json: bool) -> Result<u8, Failure> {
    let pitr = match action.unwrap_or(PitrAction::Status) {
        PitrAction::Status => runner.pitr(table).await?,
        PitrAction::Enable => runner.enable_pitr(table).await?,
    };
    if json {
        output::json(&pitr);
    } else {
        println!("{}", crate::output::pitr_line(&pitr));
    }
    Ok(exit::OK)
}

/// `backup create|list|delete`.
pub async fn backup(
    runner: &Runner,
    table: Option<&str>,
    action: BackupAction,
    yes: bool,
    json: bool,
) -> Result<u8, Failure> {
    match action {
        BackupAction::Create => print_backups(&[runner.backup_now(table).await?], json),
        BackupAction::List { all } => print_backups(&runner.backups(table, all).await?, json),
        BackupAction::Delete { arn } => {
            check_backup_arn(&arn)?;
            let backup = runner.backup(&arn).await?;
            if !yes {
                let why = format!("deleting backup {} of {} cannot be undone", backup.name, backup.table);
                confirm::type_to_continue(&why, "the backup's name", &backup.name).map_err(Failure::invalid)?;
            }
            let deleted = runner.delete_backup(&arn).await?;
            if json {
                output::json(&deleted);
            } else {
                println!("deleted backup {} of {} ({})", deleted.name, deleted.table, deleted.arn);
            }
        }
    }
    Ok(exit::OK)
}

/// Checked before any AWS call: one source, a backup ARN's shape, a valid new table name.
pub fn check_restore(args: &RestoreArgs) -> Result<(), Failure> {
    let sources = [args.backup.is_some(), args.before.is_some(), args.to_time.is_some(), args.latest];
    if sources.iter().filter(|s| **s).count() != 1 {
        return Err(Failure::invalid("name one source: --backup ARN, --before ID, --to-time TIME or --latest"));
    }
    if let Some(arn) = &args.backup {
        check_backup_arn(arn)?;
    }
    dynamigrate::aws::check_table_name(&args.to_table).map_err(|e| Failure::invalid(format!("--to-table: {e}")))
}

/// `arn:aws...:dynamodb:REGION:ACCOUNT:table/NAME/backup/ID`, before anything is asked of AWS.
pub fn check_backup_arn(arn: &str) -> Result<(), Failure> {
    let shaped =
        arn.starts_with("arn:aws") && arn.contains(":dynamodb:") && arn.contains(":table/") && arn.contains("/backup/");
    if shaped && !arn.chars().any(char::is_whitespace) {
        Ok(())
    } else {
        Err(Failure::invalid(format!("{arn:?} is not a DynamoDB backup ARN (arn:aws:dynamodb:REGION:ACCOUNT:table/NAME/backup/ID); `dynamigrate backup list` shows them")))
    }
}

/// `restore`: into a new table, waited for; says how to cut over.
pub async fn restore(runner: &Runner, table: Option<&str>, args: RestoreArgs, json: bool) -> Result<u8, Failure> {
    let source = match (&args.backup, &args.before) {
        (Some(arn), _) => Restore::Backup(arn),
        (_, Some(id)) => Restore::Before(id),
        _ => Restore::ToTime { table, at_ms: args.to_time },
    };
    let restored = runner.restore(source, &args.to_table).await?;
    if json {
        output::json(&restored);
    } else {
        println!(
            "restored {} into {} ({} items).\nDynamoDB cannot restore in place: to cut over, point the application and \
             the stage's `table` at {}, or copy items back into the original with a migration. A restored table \
             does not carry over auto scaling, TTL, streams, tags or point-in-time recovery: set them again.",
            restored.from, restored.table, restored.item_count, restored.table
        );
    }
    Ok(exit::OK)
}

/// Checked before any AWS call: a bucket name S3 accepts, a prefix without a leading or doubled `/`.
pub fn check_export(args: &ExportArgs) -> Result<(), Failure> {
    check_bucket("--bucket", &args.bucket)?;
    if let Some(prefix) = &args.prefix {
        if prefix.is_empty() || prefix.starts_with('/') || prefix.contains("//") || prefix.chars().any(char::is_control)
        {
            return Err(Failure::invalid(format!("--prefix {prefix:?}: give a key prefix such as exports/items")));
        }
    }
    Ok(())
}

/// An S3 bucket name: 3 to 63 of `a-z 0-9 . -`, starting with a letter or digit.
fn check_bucket(flag: &str, bucket: &str) -> Result<(), Failure> {
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-';
    if !(3..=63).contains(&bucket.len()) || !bucket.bytes().all(allowed) || bucket.starts_with(['.', '-']) {
        return Err(Failure::invalid(format!(
            "{flag} {bucket:?} is not an S3 bucket name (3 to 63 of a-z, 0-9, '.' and '-')"
        )));
    }
    Ok(())
}

/// `export`: to S3, waited for; prints the location, the manifest and the item count.
pub async fn export(runner: &Runner, table: Option<&str>, args: ExportArgs, json: bool) -> Result<u8, Failure> {
    let physical = runner.physical_table(table)?;
    let stamp: String = dynamigrate::clock::rfc3339(dynamigrate::clock::now_ms())
        .chars()
        .take(19)
        .filter(|c| c.is_ascii_digit() || *c == 'T')
        .collect();
    // No trailing slash: S3 keys would hold `//`, and moto writes `prefix//...`.
    let prefix = args.prefix.map(|p| p.trim_end_matches('/').to_string());
    let request = ExportRequest {
        table: table.unwrap_or_default().to_string(),
        bucket: args.bucket,
        prefix: prefix.unwrap_or_else(|| format!("dynamigrate/{physical}/{stamp}Z")),
        at_ms: args.time,
        format: match args.format {
            ExportFormat::DynamodbJson => dynamigrate::aws_sdk_dynamodb::types::ExportFormat::DynamodbJson,
            ExportFormat::Ion => dynamigrate::aws_sdk_dynamodb::types::ExportFormat::Ion,
        },
    };
    let exported = runner.export(request).await?;
    if json {
        output::json(&exported);
    } else {
        let items = exported.item_count.map_or("unknown".to_string(), |n| n.to_string());
        let manifest = exported.manifest.as_deref().unwrap_or("none written");
        println!(
            "exported {} to {}\n  manifest: {manifest}\n  items: {items}\n  objects: {}",
            exported.table,
            exported.location,
            exported.objects.len()
        );
        for key in &exported.objects {
            println!("    {key}");
        }
    }
    Ok(exit::OK)
}

fn print_backups(backups: &[Backup], json: bool) {
    if json {
        return output::json(&backups);
    }
    let mut out = std::io::stdout().lock();
    if backups.is_empty() {
        let _ = writeln!(out, "no backups");
    }
    for b in backups {
        let size = b.size_bytes.map_or(String::new(), |s| format!(", {s} bytes"));
        let created = b.created_at.as_deref().unwrap_or("?");
        let _ = writeln!(out, "{}  {}  {}  {created}{size}\n  {}", b.table, b.name, b.status, b.arn);
    }
}

/// `policy`: the least-privilege IAM policy document of the stage (no AWS call).
pub fn policy(
    stage: &Stage,
    account: Option<String>,
    bucket: Option<String>,
    prefix: Option<String>,
) -> Result<u8, Failure> {
    if let Some(bad) = account.as_deref().filter(|a| a.len() != 12 || !a.bytes().all(|b| b.is_ascii_digit())) {
        return Err(Failure::invalid(format!("--account {bad:?} is not an AWS account id (12 digits)")));
    }
    if let Some(bucket) = &bucket {
        check_bucket("--export-bucket", bucket)?;
    }
    let region = stage.region.clone().or_else(|| std::env::var("AWS_REGION").ok()).unwrap_or_else(|| "*".into());
    let tables = stage.table.iter().chain(stage.tables.values()).cloned().collect();
    let scope = PolicyScope {
        region,
        account: account.unwrap_or_else(|| "*".into()),
        tables,
        history_table: stage.history_table.clone(),
        export_bucket: bucket.map(|b| (b, prefix.unwrap_or_default())),
    };
    output::json(&policy_document(&scope));
    Ok(exit::OK)
}
