//! Safety rails on a moto server (DynamoDB Local has no backups or PITR): point-in-time recovery
//! required on prod and `pitr enable`; a backup before a major migration, waited for and recorded;
//! one that never becomes AVAILABLE (through the fault proxy) stops the run before anything is
//! migrated; `backup list/delete`; a dry run takes none; `policy`.

use std::time::Duration;

use dynamigrate_tests::files::Folder;
use dynamigrate_tests::proxy::{FaultProxy, Faults};
use dynamigrate_tests::{put_items, seed_items, snapshot, table_exists, World};
use serde_json::Value;

const MAJOR: &str = r#"
description = "major: every item gets a status"
major = true
up = [{ add = "status", value = "active" }]
"#;

/// A world on moto with 20 items, a prod stage on its table, and a folder holding one major migration.
async fn prod(extra: &str) -> (World, Folder) {
    let world = World::on_moto().await;
    put_items(&world.client, &world.table, seed_items(20)).await;
    let config = format!("[stages.prod]\ntable = \"{}\"\n{extra}", world.table);
    let world = world.with_config(&config);
    let folder = Folder::new();
    folder.write("20250101-add-status.toml", MAJOR);
    (world, folder)
}

fn json(ran: &dynamigrate_tests::Ran) -> Value {
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {ran:?}"))
}

#[tokio::test]
async fn prod_requires_point_in_time_recovery_and_pitr_enable_turns_it_on() {
    let (world, folder) = prod("").await;
    let before = snapshot(&world.client, &world.table).await;
    let ran = world.files(&folder.dir, &["--stage", "prod", "--yes", "run"]).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains(&format!("point-in-time recovery is off for table {}", world.table)), "{ran:?}");
    assert!(ran.stderr.contains("dynamigrate pitr enable"), "the way to fix it: {ran:?}");
    dynamigrate_tests::assert_same(&snapshot(&world.client, &world.table).await, &before, "refused");
    assert!(!table_exists(&world.client, &world.history).await, "nothing written, not even the history table");

    let status = world.files(&folder.dir, &["--stage", "prod", "status"]).await;
    assert!(status.stdout.contains("point-in-time recovery OFF"), "{status:?}");
    let enabled = world.files(&folder.dir, &["--stage", "prod", "pitr", "enable", "--json"]).await;
    assert_eq!(enabled.code, 0, "{enabled:?}");
    assert_eq!(json(&enabled)["enabled"], true);
    let status = world.files(&folder.dir, &["--stage", "prod", "status"]).await;
    assert!(status.stdout.contains("point-in-time recovery on, restorable from"), "{status:?}");
    // The stage's own switch turns the check off.
    let (world, folder) = prod("require_pitr = false\nbackup_before = \"never\"\n").await;
    let ran = world.files(&folder.dir, &["--stage", "prod", "--yes", "run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
}

#[tokio::test]
async fn a_major_migration_on_prod_is_backed_up_first_and_its_arn_recorded() {
    let (world, folder) = prod("").await;
    assert_eq!(world.files(&folder.dir, &["--stage", "prod", "pitr", "enable"]).await.code, 0);
    let ran = world.files(&folder.dir, &["--stage", "prod", "--yes", "run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("backup: arn:aws:dynamodb:"), "{ran:?}");
    let attempts = world.attempts().await;
    let arn = attempts[0].backup_arn.clone().expect("the attempt records the backup");
    let listed = json(&world.files(&folder.dir, &["--stage", "prod", "backup", "list", "--json"]).await);
    let backup = listed.as_array().unwrap().iter().find(|b| b["arn"] == arn.as_str()).expect("listed");
    assert_eq!(backup["status"], "AVAILABLE");
    assert!(backup["name"].as_str().unwrap().starts_with(&format!("dynamigrate-{}-20250101_add_status-", world.table)));
    let status = world.files(&folder.dir, &["--stage", "prod", "status"]).await;
    assert!(status.stdout.contains(&format!("backed up first: {arn}")), "{status:?}");
}

#[tokio::test]
async fn a_backup_that_never_becomes_available_stops_the_run_with_nothing_migrated() {
    let (mut world, folder) = prod("require_pitr = false\nbackup_timeout_seconds = 3\n").await;
    let faults = Faults { backup_creating_for: Some(Duration::MAX), ..Faults::default() };
    let proxy = FaultProxy::start(&world.endpoint, faults).await.unwrap();
    world.endpoint = proxy.endpoint.clone();
    let before = snapshot(&world.client, &world.table).await;
    let ran = world.files(&folder.dir, &["--stage", "prod", "--yes", "run"]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.contains("did not complete") && ran.stdout.contains("gave up waiting"), "{ran:?}");
    dynamigrate_tests::assert_same(&snapshot(&world.client, &world.table).await, &before, "not migrated");
    let attempt = &world.attempts().await[0];
    assert_eq!((attempt.state, attempt.backup_arn.is_none()), (dynamigrate::AttemptState::Failed, true));

    // One that stays CREATING for two seconds is waited for, then the migration runs.
    proxy.set_faults(Faults { backup_creating_for: Some(Duration::from_secs(2)), ..Faults::default() });
    let ran = world.files(&folder.dir, &["--stage", "prod", "--yes", "run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(world.attempts().await.iter().any(|a| a.backup_arn.is_some()));
}

#[tokio::test]
async fn backups_are_created_listed_and_deleted_with_confirmation() {
    let (world, folder) = prod("").await;
    let created = world.files(&folder.dir, &["--stage", "prod", "backup", "create", "--json"]).await;
    assert_eq!(created.code, 0, "{created:?}");
    let arn = json(&created)[0]["arn"].as_str().unwrap().to_string();
    let refused = world.files(&folder.dir, &["--stage", "prod", "backup", "delete", &arn]).await;
    assert_eq!(refused.code, 2, "no terminal to confirm on: {refused:?}");
    assert!(refused.stderr.contains("pass --yes"), "{refused:?}");
    let listed = world.files(&folder.dir, &["--stage", "prod", "backup", "list"]).await;
    assert!(listed.stdout.contains(&arn), "still there: {listed:?}");
    let deleted = world.files(&folder.dir, &["--stage", "prod", "--yes", "backup", "delete", &arn]).await;
    assert_eq!(deleted.code, 0, "{deleted:?}");
    let listed = json(&world.files(&folder.dir, &["--stage", "prod", "backup", "list", "--json"]).await);
    assert!(
        listed.as_array().unwrap().iter().all(|b| b["arn"] != arn.as_str() || b["status"] == "DELETED"),
        "{listed}"
    );
}

#[tokio::test]
async fn a_dry_run_takes_no_backup_and_says_which_it_would_take() {
    let (world, folder) = prod("").await;
    let ran = world.files(&folder.dir, &["--stage", "prod", "run", "--dry-run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains(&format!("backup: would back up {} first", world.table)), "{ran:?}");
    let listed = json(&world.files(&folder.dir, &["--stage", "prod", "backup", "list", "--json"]).await);
    assert_eq!(listed, serde_json::json!([]));
}

#[tokio::test]
async fn the_policy_is_an_iam_document_naming_every_table_of_the_stage() {
    let world = World::new()
        .await
        .with_config("[stages.prod]\nregion = \"eu-west-1\"\n[stages.prod.tables]\norders = \"prod-orders\"\n");
    let ran = world.command(&["--stage", "prod", "policy", "--account", "123456789012"]).output().await.unwrap();
    let text = String::from_utf8_lossy(&ran.stdout);
    assert!(ran.status.success(), "{text} {}", String::from_utf8_lossy(&ran.stderr));
    let document: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(document["Version"], "2012-10-17");
    let statements = document["Statement"].as_array().unwrap();
    assert!(statements.iter().all(|s| s["Effect"] == "Allow" && s["Action"].is_array() && !s["Resource"].is_null()));
    for table in [world.table.as_str(), "prod-orders", world.history.as_str()] {
        assert!(text.contains(&format!("arn:aws:dynamodb:eu-west-1:123456789012:table/{table}\"")), "{table}: {text}");
    }
}

#[tokio::test]
async fn restores_go_to_a_new_table_from_the_backup_before_a_migration_or_a_point_in_time() {
    let (world, folder) = prod("").await;
    assert_eq!(world.files(&folder.dir, &["--stage", "prod", "pitr", "enable"]).await.code, 0);
    let before = snapshot(&world.client, &world.table).await;
    assert_eq!(world.files(&folder.dir, &["--stage", "prod", "--yes", "run"]).await.code, 0);
    let migrated = snapshot(&world.client, &world.table).await;
    assert_ne!(migrated, before);

    let restored = dynamigrate_tests::unique_name("restored");
    let args = ["--stage", "prod", "restore", "--before", "20250101_add_status", "--to-table", &restored];
    let ran = world.files(&folder.dir, &args).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("cannot restore in place: to cut over"), "{ran:?}");
    dynamigrate_tests::assert_same(
        &snapshot(&world.client, &restored).await,
        &before,
        "the items from before the migration",
    );

    let at = dynamigrate::clock::rfc3339(dynamigrate::clock::now_ms());
    let to_time = dynamigrate_tests::unique_name("pitr");
    let ran = world
        .files(&folder.dir, &["--stage", "prod", "restore", "--to-time", &at, "--to-table", &to_time, "--json"])
        .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(json(&ran)["table"], to_time.as_str());
    assert_eq!(snapshot(&world.client, &to_time).await.map(|items| items.len()), Some(20));

    let again = world.files(&folder.dir, &["--stage", "prod", "restore", "--latest", "--to-table", &restored]).await;
    assert_eq!(again.code, 2, "a restore never writes over a table: {again:?}");
    assert!(again.stderr.contains("exists already"), "{again:?}");
}

#[tokio::test]
async fn an_export_writes_objects_under_its_prefix_and_says_where() {
    let (world, folder) = prod("").await;
    assert_eq!(world.files(&folder.dir, &["--stage", "prod", "pitr", "enable"]).await.code, 0);
    let sdk = aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(&world.endpoint)
        .credentials_provider(aws_sdk_dynamodb::config::SharedCredentialsProvider::new(
            aws_sdk_dynamodb::config::Credentials::new("dynamigratelocal", "dynamigratelocal", None, None, "tests"),
        ))
        .build();
    let s3 = dynamigrate::aws::s3_client(&sdk);
    let bucket = format!("exports-{}", fastrand::u32(..));
    s3.create_bucket().bucket(&bucket).send().await.expect("create bucket");

    let ran = world
        .files(&folder.dir, &["--stage", "prod", "export", "--bucket", &bucket, "--prefix", "exports/items/", "--json"])
        .await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let exported = json(&ran);
    assert_eq!(exported["location"], format!("s3://{bucket}/exports/items"));
    let listed = s3.list_objects_v2().bucket(&bucket).prefix("exports/items").send().await.unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert!(!keys.is_empty(), "the export wrote objects under the prefix");
    assert_eq!(exported["objects"].as_array().map(Vec::len), Some(keys.len()), "{exported}");
    let text = world.files(&folder.dir, &["--stage", "prod", "export", "--bucket", &bucket]).await;
    assert!(text.stdout.contains(&format!("s3://{bucket}/dynamigrate/{}/", world.table)), "{text:?}");
}
