//! The runner end to end: the real fixture binary against DynamoDB Local.

use dynamigrate::{AttemptState, Direction};
use dynamigrate_tests::{assert_same, snapshot, World};

const FIRST: &str = "20250101_first";
const SECOND: &str = "20250102_second";
const THIRD: &str = "20250103_third";

#[tokio::test]
async fn run_applies_in_id_order_and_records_every_attempt() {
    let world = World::new().await;
    // Listed out of order: the runner must still apply them by id.
    let ids = format!("{THIRD},{FIRST},{SECOND}");
    let ran = world.run_with(&["run"], &[("FIXTURE_IDS", &ids)]).await;
    assert_eq!(ran.code, 0, "{ran:?}");

    let attempts = world.attempts().await;
    assert_eq!(attempts.len(), 3);
    let mut by_start = attempts.clone();
    by_start.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    let order: Vec<&str> = by_start.iter().map(|a| a.migration_id.as_str()).collect();
    assert_eq!(order, [FIRST, SECOND, THIRD]);
    for attempt in &attempts {
        assert_eq!(attempt.state, AttemptState::Succeeded);
        assert_eq!(attempt.direction, Direction::Up);
        assert_eq!((attempt.items_processed, attempt.items_modified), (1, 1));
        assert!(attempt.finished_at.is_some() && attempt.duration_ms.is_some());
        assert_eq!(attempt.stage, "dev");
        assert!(attempt.ran_by.pid > 0 && !attempt.ran_by.host.is_empty() && !attempt.ran_by.tool_version.is_empty());
    }
    for id in [FIRST, SECOND, THIRD] {
        assert_eq!(world.marker_runs(id).await, Some(1));
    }
    // The lock is released at the end.
    let status = world.run(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&status.stdout).expect("status --json is JSON");
    assert!(json["lock"].is_null(), "{json}");
    assert_eq!(json["entries"].as_array().map(Vec::len), Some(3));
    assert!(json["entries"].as_array().unwrap().iter().all(|e| e["state"] == "applied"), "{json}");
}

#[tokio::test]
async fn a_second_run_is_a_no_op() {
    let world = World::new().await;
    assert_eq!(world.run(&["run"]).await.code, 0);
    let before = snapshot(&world.client, &world.table).await;
    let ran = world.run(&["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("nothing to apply"), "{}", ran.stdout);
    assert_same(&snapshot(&world.client, &world.table).await, &before, "table");
    assert_eq!(world.attempts().await.len(), 3);
}

#[tokio::test]
async fn a_failing_migration_is_recorded_stops_the_run_and_is_retried_next_time() {
    let world = World::new().await;
    let ran = world.run_with(&["run"], &[("FIXTURE_FAIL", SECOND)]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.contains("FAILED 20250102_second"), "{}", ran.stdout);
    assert_eq!(world.marker_runs(FIRST).await, Some(1));
    assert_eq!(world.marker_runs(THIRD).await, None, "the run stops at the first failure");
    let failed = world.attempts().await.into_iter().find(|a| a.migration_id.as_str() == SECOND).unwrap();
    assert_eq!(failed.state, AttemptState::Failed);
    assert!(failed.error.as_deref().unwrap_or("").contains("fixture failure requested"), "{failed:?}");

    let status = world.run(&["status", "--check"]).await;
    assert_eq!(status.code, 4, "a failed migration is work to do: {status:?}");
    assert!(status.stdout.contains("failed"), "{}", status.stdout);

    let retried = world.run(&["run"]).await;
    assert_eq!(retried.code, 0, "{retried:?}");
    let attempts = world.attempts().await;
    let second: Vec<_> = attempts.iter().filter(|a| a.migration_id.as_str() == SECOND).collect();
    assert_eq!(second.len(), 2, "every attempt is kept");
    assert_eq!((second[1].attempt, second[1].state), (2, AttemptState::Succeeded));
    assert_eq!(world.marker_runs(FIRST).await, Some(1), "the applied one is not run again");
    assert_eq!(world.marker_runs(THIRD).await, Some(1));
}

#[tokio::test]
async fn run_to_stops_after_the_target() {
    let world = World::new().await;
    assert_eq!(world.run(&["run", "--to", SECOND]).await.code, 0);
    assert_eq!(world.marker_runs(SECOND).await, Some(1));
    assert_eq!(world.marker_runs(THIRD).await, None);
    let unknown = world.run(&["run", "--to", "20250909_nope"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stderr.contains("no migration with that id"), "{}", unknown.stderr);
}

#[tokio::test]
async fn a_dry_run_changes_nothing_anywhere() {
    let world = World::new().await;
    // On a fresh world the dry run must not even create the history table.
    let ran = world.run(&["run", "--dry-run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("would apply 20250101_first"), "{}", ran.stdout);
    assert_same(&snapshot(&world.client, &world.history).await, &None, "no history table");
    assert_eq!(world.marker_runs(FIRST).await, None);

    // With some history, table and history stay byte-for-byte the same, and no lock item appears.
    assert_eq!(world.run(&["run", "--to", FIRST]).await.code, 0);
    let table_before = snapshot(&world.client, &world.table).await;
    let history_before = snapshot(&world.client, &world.history).await;
    let ran = world.run(&["run", "--dry-run", "--json"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let report: serde_json::Value = serde_json::from_str(&ran.stdout).expect("JSON report");
    assert_eq!(report["dry_run"], true);
    assert_eq!(report["migrations"].as_array().map(Vec::len), Some(2), "{report}");
    assert_same(&snapshot(&world.client, &world.table).await, &table_before, "table");
    assert_same(&snapshot(&world.client, &world.history).await, &history_before, "history");

    // The same holds for a dry-run down.
    let ran = world.run(&["down", "--dry-run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("would roll back 20250101_first"), "{}", ran.stdout);
    assert_same(&snapshot(&world.client, &world.table).await, &table_before, "table");
    assert_same(&snapshot(&world.client, &world.history).await, &history_before, "history");
}

#[tokio::test]
async fn status_check_exit_codes() {
    let world = World::new().await;
    assert_eq!(world.run(&["status", "--check"]).await.code, 4, "pending on a fresh history");
    assert_eq!(world.run(&["status"]).await.code, 0, "plain status never fails for pending work");
    assert_eq!(world.run(&["run"]).await.code, 0);
    assert_eq!(world.run(&["status", "--check"]).await.code, 0, "all applied");

    // A binary that lacks an applied migration sees it as missing, and run refuses.
    let fewer = [("FIXTURE_IDS", "20250101_first,20250102_second")];
    let status = world.run_with(&["status", "--check"], &fewer).await;
    assert_eq!(status.code, 4, "{status:?}");
    assert!(status.stdout.contains("missing"), "{}", status.stdout);
    let run = world.run_with(&["run"], &fewer).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--ignore-missing"), "{}", run.stderr);
}

#[tokio::test]
async fn down_rolls_back_newest_first_and_refuses_without_a_down() {
    let world = World::new().await;
    assert_eq!(world.run(&["run"]).await.code, 0);
    let ran = world.run(&["down", "--steps", "2"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(world.marker_runs(THIRD).await, None);
    assert_eq!(world.marker_runs(SECOND).await, None);
    assert_eq!(world.marker_runs(FIRST).await, Some(1));
    let mut downs: Vec<_> = world.attempts().await.into_iter().filter(|a| a.direction == Direction::Down).collect();
    downs.sort_by(|a, b| a.started_at.cmp(&b.started_at));
    let order: Vec<&str> = downs.iter().map(|a| a.migration_id.as_str()).collect();
    assert_eq!(order, [THIRD, SECOND]);
    assert!(downs.iter().all(|a| a.state == AttemptState::RolledBack));

    let status = world.run(&["status", "--json"]).await;
    let json: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    let states: Vec<&str> = json["entries"].as_array().unwrap().iter().map(|e| e["state"].as_str().unwrap()).collect();
    assert_eq!(states, ["applied", "pending", "pending"]);

    // Re-apply, then try to roll back past a migration that has no down: refused, nothing changes.
    assert_eq!(world.run(&["run"]).await.code, 0);
    let no_down = [("FIXTURE_NO_DOWN", SECOND)];
    let before = snapshot(&world.client, &world.table).await;
    let history_before = snapshot(&world.client, &world.history).await;
    let refused = world.run_with(&["down", "--to", FIRST], &no_down).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("20250102_second has no down"), "{}", refused.stderr);
    assert_same(&snapshot(&world.client, &world.table).await, &before, "the third was not rolled back either");
    assert_same(&snapshot(&world.client, &world.history).await, &history_before, "history");

    // down --to ID rolls back ID too.
    let ran = world.run(&["down", "--to", SECOND]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert_eq!(world.marker_runs(SECOND).await, None);
    assert_eq!(world.marker_runs(FIRST).await, Some(1));
}

#[tokio::test]
async fn prod_without_a_terminal_or_yes_refuses_and_writes_nothing() {
    let world = World::new().await;
    // DynamoDB Local has no point-in-time recovery to require.
    let config = format!("[stages.prod]\ntable = \"{}\"\nregion = \"us-east-1\"\nrequire_pitr = false\n", world.table);
    let world = world.with_config(&config);
    let refused = world.run(&["--stage", "prod", "run"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(refused.stderr.contains("needs confirmation"), "{}", refused.stderr);
    assert!(refused.stderr.contains("20250101_first"), "the plan is shown: {}", refused.stderr);
    assert_same(&snapshot(&world.client, &world.history).await, &None, "no history table, no lock");
    assert_eq!(world.marker_runs(FIRST).await, None);

    let refused = world.run_with(&["run"], &[("STAGE", "prod")]).await;
    assert_eq!(refused.code, 2, "STAGE selects the stage too: {refused:?}");

    let accepted = world.run(&["--stage", "prod", "--yes", "run"]).await;
    assert_eq!(accepted.code, 0, "{accepted:?}");
    assert_eq!(world.marker_runs(THIRD).await, Some(1));
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_exit_2() {
    let mut world = World::new().await;

    let real_table = std::mem::replace(&mut world.table, "no-such-table-anywhere".into());
    let missing_table = world.run(&["run"]).await;
    assert_eq!(missing_table.code, 2, "{missing_table:?}");
    assert!(missing_table.stderr.contains("\"no-such-table-anywhere\" does not exist"), "{}", missing_table.stderr);
    assert_same(&snapshot(&world.client, &world.history).await, &None, "nothing was created");
    world.table = real_table;

    let world = world.with_config("[stages.dev]\nregion = \"us-east-1\"\n[stages.prod]\nregion = \"us-east-1\"\n");
    let unknown_stage = world.run(&["--stage", "staging", "status"]).await;
    assert_eq!(unknown_stage.code, 2, "{unknown_stage:?}");
    assert!(unknown_stage.stderr.contains("unknown stage \"staging\""), "{}", unknown_stage.stderr);
    assert!(unknown_stage.stderr.contains("dev, prod"), "{}", unknown_stage.stderr);

    let world = world.with_config("[stages.dev]\ntabel = \"typo\"\n");
    let bad_config = world.run(&["status"]).await;
    assert_eq!(bad_config.code, 2, "{bad_config:?}");
    assert!(bad_config.stderr.contains("tabel"), "{}", bad_config.stderr);

    let mut world = world;
    world.config = Some("/no/such/dynamigrate.toml".into());
    let absent = world.run(&["status"]).await;
    assert_eq!(absent.code, 2, "an explicitly named config must exist: {absent:?}");
    world.config = None;

    for (extra, expected) in [("20250230_bad_date", "day does not exist"), (FIRST, "duplicate migration id")] {
        let ran = world.run_with(&["run"], &[("FIXTURE_EXTRA_ID", extra)]).await;
        assert_eq!(ran.code, 2, "{ran:?}");
        assert!(ran.stderr.contains(expected), "{}", ran.stderr);
        assert_same(&snapshot(&world.client, &world.history).await, &None, "nothing ran or was created");
        assert_eq!(world.marker_runs(FIRST).await, None);
    }

    let usage = world.run(&["run", "--to", "not-an-id"]).await;
    assert_eq!(usage.code, 2, "{usage:?}");
}

#[tokio::test]
async fn missing_credentials_are_a_clear_error() {
    let world = World::new().await;
    let mut command = world.command(&["status"]);
    command
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_CONFIG_FILE", "/nonexistent/aws/config")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/aws/credentials");
    let ran = dynamigrate_tests::finish(command.spawn().unwrap()).await;
    assert_eq!(ran.code, 2, "{ran:?}");
    assert!(ran.stderr.contains("no usable AWS credentials"), "{}", ran.stderr);
    assert!(ran.stderr.contains("AWS_PROFILE"), "says how to fix it: {}", ran.stderr);
}

#[tokio::test]
async fn logs_are_json_lines_on_request_and_uncoloured_text_without_a_terminal() {
    let world = World::new().await;
    let ran = world.run(&["run", "--log-format", "json"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("applied 20250101_first"), "the result on stdout stays as asked: {}", ran.stdout);
    let lines: Vec<&str> = ran.stderr.lines().collect();
    assert!(lines.len() >= 3, "{}", ran.stderr);
    for line in &lines {
        let log: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(log["timestamp"].is_string() && log["level"].is_string() && log["message"].is_string(), "{log}");
    }
    assert!(ran.stderr.contains("applying 20250101_first"), "{}", ran.stderr);

    let text = world.run(&["down"]).await;
    assert_eq!(text.code, 0, "{text:?}");
    assert!(text.stderr.contains("rolling back 20250103_third"), "{}", text.stderr);
    assert!(!text.stderr.contains('\u{1b}'), "no colour codes in a log that is not a terminal: {:?}", text.stderr);
}

#[tokio::test]
async fn scan_page_options_say_what_they_are() {
    let world = World::new().await;
    let help = world.run(&["run", "--help"]).await;
    assert_eq!(help.code, 0, "{help:?}");
    assert!(help.stdout.contains("--page-size") && help.stdout.contains("--page-delay-ms"), "{}", help.stdout);
    assert!(!help.stdout.contains("--batch-size"), "the old spelling is a hidden alias: {}", help.stdout);
    let bad = world.run(&["run", "--page-size", "0"]).await;
    assert_eq!(bad.code, 2, "{bad:?}");
    assert!(bad.stderr.contains("page_size = 0 is out of range"), "{}", bad.stderr);
    assert_same(&snapshot(&world.client, &world.history).await, &None, "nothing was created");
}
