//! The input contract for the safety rails: `pitr`, `backup`, `restore` and `policy` flags and the
//! stage keys `require_pitr`, `backup_before` and `backup_timeout_seconds`. Each case runs the real
//! binary on DynamoDB Local: the documented exit code, the problem named, no panic, nothing written.

use dynamigrate_tests::bad::{check_all, Case};
use dynamigrate_tests::{put_items, seed_items, World};

const ARN: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/items/backup/01700000000000-abcdefgh";

#[tokio::test]
async fn safety_rail_flags_and_stage_keys_outside_their_shape_are_refused() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(5)).await;
    let cases = vec![
        Case::new("policy for a short account", &["policy", "--account", "1234"], 2, "not an AWS account id"),
        Case::new(
            "policy for no bucket name",
            &["policy", "--export-bucket", "Bad Bucket"],
            2,
            "not an S3 bucket name",
        ),
        Case::new("export prefix without a bucket", &["policy", "--export-prefix", "p/"], 2, "--export-bucket"),
        Case::new("backup without an action", &["backup"], 2, "Usage"),
        Case::new("backup delete without an ARN", &["backup", "delete"], 2, "<ARN>"),
        Case::new(
            "backup delete of no ARN",
            &["--yes", "backup", "delete", "my-backup"],
            2,
            "not a DynamoDB backup ARN",
        ),
        Case::new("unknown pitr action", &["pitr", "disable"], 2, "unrecognized subcommand"),
        Case::new("restore from nothing", &["restore", "--to-table", "restored-items"], 2, "name one source"),
        Case::new(
            "restore from two sources",
            &["restore", "--latest", "--backup", ARN, "--to-table", "r-items"],
            2,
            "name one source",
        ),
        Case::new(
            "restore to no time",
            &["restore", "--to-time", "yesterday", "--to-table", "r-items"],
            2,
            "not an RFC 3339 time",
        ),
        Case::new("restore without a target", &["restore", "--latest"], 2, "--to-table"),
        Case::new(
            "restore to a bad name",
            &["restore", "--latest", "--to-table", "a/b"],
            2,
            "not a DynamoDB table name",
        ),
        Case::new(
            "restore from no ARN",
            &["restore", "--backup", "x", "--to-table", "r-items"],
            2,
            "not a DynamoDB backup ARN",
        ),
        Case::new(
            "restore before no id",
            &["restore", "--before", "x", "--to-table", "r-items"],
            2,
            "invalid migration id",
        ),
        Case::new("export to no bucket name", &["export", "--bucket", "My_Bucket"], 2, "not an S3 bucket name"),
        Case::new("export without a bucket", &["export"], 2, "--bucket"),
        Case::new(
            "export under a rooted prefix",
            &["export", "--bucket", "b-1", "--prefix", "/x"],
            2,
            "give a key prefix",
        ),
        Case::new("export to no time", &["export", "--bucket", "b-1", "--time", "now"], 2, "not an RFC 3339 time"),
        Case::new("export in an unknown format", &["export", "--bucket", "b-1", "--format", "csv"], 2, "--format"),
        Case::new("unknown backup policy", &["status"], 2, "\"never\", \"major\" or \"always\"")
            .config("[stages.dev]\nbackup_before = \"sometimes\"\n"),
        Case::new("backup timeout of zero", &["status"], 2, "backup_timeout_seconds = 0 is out of range")
            .config("[stages.dev]\nbackup_timeout_seconds = 0\n"),
        Case::new("require_pitr not a flag", &["status"], 2, "require_pitr")
            .config("[stages.dev]\nrequire_pitr = \"yes\"\n"),
        // DynamoDB Local has no PITR API: a stage that requires PITR cannot be checked there, so nothing runs.
        Case::new(
            "PITR required where it cannot be read",
            &["--stage", "prod", "--yes", "run"],
            2,
            "cannot tell whether point-in-time recovery is on",
        ),
    ];
    check_all(&world, cases).await;
}
