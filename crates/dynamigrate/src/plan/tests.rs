//! The planner's unit tests: states from histories, and what `run` and `down` would do.

use super::*;
use crate::attempt::RunIdentity;

fn id(s: &str) -> MigrationId {
    MigrationId::parse(s).unwrap()
}

fn local(ids: &[&str]) -> Vec<LocalMigration> {
    ids.iter()
        .map(|s| LocalMigration {
            id: id(s),
            description: format!("{s} description"),
            has_down: true,
            checksum: None,
            phase: None,
            table: None,
            upgrades_to: None,
            requires: None,
        })
        .collect()
}

fn attempt(migration: &str, n: u32, direction: Direction, state: AttemptState) -> Attempt {
    Attempt {
        migration_id: id(migration),
        attempt: n,
        direction,
        state,
        description: "d".into(),
        stage: "dev".into(),
        started_at: "2026-01-01T00:00:00Z".into(),
        finished_at: None,
        duration_ms: None,
        items_processed: 0,
        items_modified: 0,
        error: None,
        checksum: None,
        allowed_modified: Vec::new(),
        verification: None,
        backup_arn: None,
        ran_by: RunIdentity {
            run_id: format!("run-{n}"),
            owner: "me@host".into(),
            host: "host".into(),
            pid: 1,
            user: "me".into(),
            tool_version: "0".into(),
        },
    }
}

fn states(status: &Status) -> Vec<(String, &'static str)> {
    status.entries.iter().map(|e| (e.id.to_string(), e.state.label())).collect()
}

#[test]
fn fresh_history_means_everything_pending_in_id_order() {
    let status = Status::derive(&local(&["20250102_b", "20250101_a"]), &[], None);
    assert_eq!(states(&status), [("20250101_a".into(), "pending"), ("20250102_b".into(), "pending")]);
    assert_eq!(status.plan_up(None, false, false).unwrap(), [id("20250101_a"), id("20250102_b")]);
    assert!(status.has_work());
}

#[test]
fn latest_attempt_decides_the_state() {
    use AttemptState::*;
    use Direction::*;
    let history = [
        attempt("20250101_a", 1, Up, Failed),
        attempt("20250101_a", 2, Up, Succeeded),
        attempt("20250102_b", 1, Up, Succeeded),
        attempt("20250102_b", 2, Down, RolledBack),
        attempt("20250103_c", 1, Up, Failed),
        attempt("20250104_d", 1, Up, Running),
    ];
    let status = Status::derive(&local(&["20250101_a", "20250102_b", "20250103_c", "20250104_d"]), &history, None);
    assert_eq!(
        states(&status),
        [
            ("20250101_a".into(), "applied"),
            ("20250102_b".into(), "pending"),
            ("20250103_c".into(), "failed"),
            ("20250104_d".into(), "interrupted"),
        ]
    );
    assert_eq!(status.entries[0].attempts, 2);
    assert_eq!(status.plan_up(None, false, false).unwrap(), [id("20250102_b"), id("20250103_c"), id("20250104_d")]);
}

#[test]
fn a_running_attempt_of_the_lock_holder_is_live() {
    let history = [attempt("20250101_a", 1, Direction::Up, AttemptState::Running)];
    let status = Status::derive(&local(&["20250101_a"]), &history, Some("run-1"));
    assert_eq!(status.entries[0].state, MigrationState::Running(Direction::Up));
}

#[test]
fn applied_migrations_absent_from_the_binary_are_missing_and_block_run() {
    let history = [
        attempt("20250101_a", 1, Direction::Up, AttemptState::Succeeded),
        attempt("20250105_gone", 1, Direction::Up, AttemptState::Succeeded),
        attempt("20250106_reverted", 1, Direction::Down, AttemptState::RolledBack),
    ];
    let status = Status::derive(&local(&["20250101_a", "20250102_b"]), &history, None);
    assert_eq!(status.entries.last().map(|e| e.state), Some(MigrationState::Missing));
    assert_eq!(status.entries.len(), 3, "a rolled-back migration deleted from the code is not missing");
    assert_eq!(status.plan_up(None, false, false), Err(PlanError::Missing(vec![id("20250105_gone")])));
    assert_eq!(status.plan_up(None, true, false).unwrap(), [id("20250102_b")]);
}

#[test]
fn run_to_stops_after_the_target_and_rejects_unknown_targets() {
    let status = Status::derive(&local(&["20250101_a", "20250102_b", "20250103_c"]), &[], None);
    assert_eq!(status.plan_up(Some(&id("20250102_b")), false, false).unwrap(), [id("20250101_a"), id("20250102_b")]);
    assert_eq!(status.plan_up(Some(&id("20250109_x")), false, false), Err(PlanError::UnknownTarget(id("20250109_x"))));
}

#[test]
fn down_goes_newest_first_by_steps_or_to_a_target() {
    use AttemptState::Succeeded;
    let history: Vec<_> =
        ["20250101_a", "20250102_b", "20250103_c"].iter().map(|m| attempt(m, 1, Direction::Up, Succeeded)).collect();
    let status = Status::derive(&local(&["20250101_a", "20250102_b", "20250103_c", "20250104_d"]), &history, None);
    assert_eq!(status.plan_down(&DownTarget::Steps(1)).unwrap(), [id("20250103_c")]);
    assert_eq!(
        status.plan_down(&DownTarget::Steps(9)).unwrap(),
        [id("20250103_c"), id("20250102_b"), id("20250101_a")]
    );
    assert_eq!(status.plan_down(&DownTarget::To(id("20250102_b"))).unwrap(), [id("20250103_c"), id("20250102_b")]);
    assert_eq!(status.plan_down(&DownTarget::To(id("20250104_d"))), Err(PlanError::NotApplied(id("20250104_d"))));
}

#[test]
fn down_refuses_before_running_anything_when_a_step_has_no_down() {
    let mut migrations = local(&["20250101_a", "20250102_b"]);
    migrations[0].has_down = false;
    let history: Vec<_> =
        ["20250101_a", "20250102_b"].iter().map(|m| attempt(m, 1, Direction::Up, AttemptState::Succeeded)).collect();
    let status = Status::derive(&migrations, &history, None);
    assert_eq!(status.plan_down(&DownTarget::Steps(1)).unwrap(), [id("20250102_b")]);
    assert_eq!(status.plan_down(&DownTarget::Steps(2)), Err(PlanError::NoDown(id("20250101_a"))));
}

#[test]
fn a_failed_down_stays_applied_for_down_and_is_skipped_by_run() {
    let history = [
        attempt("20250101_a", 1, Direction::Up, AttemptState::Succeeded),
        attempt("20250101_a", 2, Direction::Down, AttemptState::Failed),
    ];
    let status = Status::derive(&local(&["20250101_a"]), &history, None);
    assert_eq!(status.entries[0].state.label(), "failed (down)");
    assert!(status.plan_up(None, false, false).unwrap().is_empty());
    assert_eq!(status.plan_down(&DownTarget::Steps(1)).unwrap(), [id("20250101_a")]);
}

#[test]
fn an_applied_migration_whose_checksum_changed_is_modified_and_stops_run() {
    let mut local = local(&["20250101_a", "20250102_b", "20250103_c"]);
    local[0].checksum = Some("new".into());
    local[1].checksum = Some("same".into());
    let mut a = attempt("20250101_a", 1, Direction::Up, AttemptState::Succeeded);
    a.checksum = Some("old".into());
    let mut b = attempt("20250102_b", 1, Direction::Up, AttemptState::Succeeded);
    b.checksum = Some("same".into());
    let status = Status::derive(&local, &[a, b], None);
    let states: Vec<_> = status.entries.iter().map(|e| e.state).collect();
    assert_eq!(states, [MigrationState::Modified, MigrationState::Applied, MigrationState::Pending]);
    assert!(status.has_work());
    assert_eq!(status.plan_up(None, false, false), Err(PlanError::Modified(vec![id("20250101_a")])));
    assert_eq!(status.plan_up(None, false, true).unwrap(), [id("20250103_c")]);
    assert_eq!(status.plan_down(&DownTarget::Steps(2)).unwrap(), [id("20250102_b"), id("20250101_a")]);
}

#[test]
fn history_without_checksums_is_never_modified() {
    let mut local = local(&["20250101_a"]);
    local[0].checksum = Some("new".into());
    let status = Status::derive(&local, &[attempt("20250101_a", 1, Direction::Up, AttemptState::Succeeded)], None);
    assert_eq!(status.entries[0].state, MigrationState::Applied);
}

#[test]
fn a_contract_step_must_say_what_it_verifies_and_come_after_the_upgrades_it_waits_for() {
    let mut migrations = local(&["20250101_to_v2", "20250201_drop_name", "20250301_to_v3"]);
    migrations[0].upgrades_to = Some(2);
    migrations[2].upgrades_to = Some(3);
    migrations[1].phase = Some(Phase::Contract);
    let plan = |m: &[LocalMigration]| Status::derive(m, &[], None).plan_up(None, false, false);
    assert_eq!(plan(&migrations), Err(PlanError::Unverified(id("20250201_drop_name"))));
    let required = |version| Some(Required { table: None, version: Some(version), text: String::new() });
    migrations[1].requires = required(2);
    assert_eq!(plan(&migrations).unwrap().len(), 3, "v2 comes first");
    migrations[1].requires = required(3);
    let error = plan(&migrations).unwrap_err();
    assert_eq!(
        error,
        PlanError::ContractBeforeUpgrade {
            contract: id("20250201_drop_name"),
            upgrade: id("20250301_to_v3"),
            version: 3
        }
    );
    migrations[2].table = Some("orders".into());
    assert!(plan(&migrations).is_ok(), "an upgrade of another table is no gate");
}
