//! The lease lock: races between real processes, expiry and takeover, heartbeat, fencing, unlock.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use dynamigrate::clock::{now_ms, rfc3339};
use dynamigrate::ledger::LeaseLock;
use dynamigrate::Ledger;
use dynamigrate::{Attempt, AttemptState, Direction, Error, MigrationId, RunIdentity};
use dynamigrate_tests::{get_item, planted, World};

/// Writes a lock item as another runner would have left it.
async fn plant_lock(world: &World, owner: &str, host: &str, pid: u32, expires_in_ms: i64) {
    planted::plant(world, planted::lock(owner, host, pid, expires_in_ms)).await;
}

async fn lock_item(world: &World) -> Option<HashMap<String, AttributeValue>> {
    get_item(&world.client, &world.history, "LOCK", "LOCK").await
}

#[tokio::test]
async fn two_processes_race_and_exactly_one_runs() {
    let world = World::new().await;
    let spawn = || {
        let mut command = world.command(&["run"]);
        command.env("FIXTURE_SLEEP_MS", "1500");
        command.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = tokio::join!(dynamigrate_tests::finish(a), dynamigrate_tests::finish(b));
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(codes, [0, 3], "one runs, the other finds the lock: {a:?} {b:?}");
    let loser = if a.code == 3 { &a } else { &b };
    assert!(loser.stderr.contains("locked by"), "{}", loser.stderr);
    assert!(loser.stderr.contains(" since ") && loser.stderr.contains("expires"), "{}", loser.stderr);
    for id in ["20250101_first", "20250102_second", "20250103_third"] {
        assert_eq!(world.marker_runs(id).await, Some(1), "{id} ran exactly once");
    }
    assert!(lock_item(&world).await.is_none(), "the winner released the lock");
}

#[tokio::test]
async fn a_held_lock_fails_fast_or_after_wait_with_who_holds_it() {
    let world = World::new().await;
    plant_lock(&world, "alice@build-7", "build-7", 4242, 60_000).await;
    let ran = world.run(&["run"]).await;
    assert_eq!(ran.code, 3, "{ran:?}");
    assert!(ran.stderr.contains("locked by alice@build-7 on build-7 (pid 4242) since"), "{}", ran.stderr);
    let waited = world.run(&["run", "--wait", "1"]).await;
    assert_eq!(waited.code, 3, "{waited:?}");
    assert_eq!(world.marker_runs("20250101_first").await, None);
}

#[tokio::test]
async fn an_expired_lease_is_taken_over() {
    let world = World::new().await;
    plant_lock(&world, "crashed@gone-host", "gone-host", 4242, -5_000).await;
    let ran = world.run(&["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stderr.contains("took over the expired lease of crashed@gone-host"), "{}", ran.stderr);
    assert_eq!(world.marker_runs("20250103_third").await, Some(1));
    assert!(lock_item(&world).await.is_none());
}

#[tokio::test]
async fn a_runner_waiting_for_the_lock_takes_it_when_it_frees() {
    let world = World::new().await;
    plant_lock(&world, "alice@build-7", "build-7", 4242, 2_000).await;
    let ran = world.run(&["run", "--wait", "20"]).await;
    assert_eq!(ran.code, 0, "the planted lease expires and the waiting runner takes it: {ran:?}");
    assert_eq!(world.marker_runs("20250101_first").await, Some(1));
}

#[tokio::test]
async fn the_heartbeat_keeps_a_long_run_locked_past_its_lease() {
    let world = World::new().await;
    let world = world.with_config("lease_seconds = 3\n");
    let mut long = world.command(&["run", "--to", "20250101_first"]);
    long.env("FIXTURE_SLEEP_MS", "7000");
    let long = long.spawn().unwrap();
    // Well past one lease length, the runner must still hold the lock.
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let second = world.run(&["run"]).await;
    assert_eq!(second.code, 3, "the lease was renewed: {second:?}");
    let first = dynamigrate_tests::finish(long).await;
    assert_eq!(first.code, 0, "{first:?}");
}

#[tokio::test]
async fn unlock_releases_only_with_force_for_another_owner() {
    let world = World::new().await;
    assert_eq!(world.run(&["unlock"]).await.code, 0, "nothing to release is fine");

    plant_lock(&world, "alice@build-7", "build-7", 4242, 60_000).await;
    let refused = world.run(&["unlock"]).await;
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(refused.stderr.contains("needs --force"), "{}", refused.stderr);
    assert!(lock_item(&world).await.is_some());
    let forced = world.run(&["unlock", "--force"]).await;
    assert_eq!(forced.code, 0, "{forced:?}");
    assert!(forced.stdout.contains("released the lock held by alice@build-7"), "{}", forced.stdout);
    assert!(lock_item(&world).await.is_none());

    // Our own stale lock (same owner, same host, dead pid) needs no --force.
    let me = RunIdentity::current();
    let owner = [("DYNAMIGRATE_OWNER", "ci-job-17")];
    plant_lock(&world, "ci-job-17", &me.host, u32::MAX - 1, 60_000).await;
    let own = world.run_with(&["unlock"], &owner).await;
    assert_eq!(own.code, 0, "{own:?}");
    assert!(lock_item(&world).await.is_none());

    // ...but a live process of ours does.
    plant_lock(&world, "ci-job-17", &me.host, std::process::id(), 60_000).await;
    let live = world.run_with(&["unlock"], &owner).await;
    assert_eq!(live.code, 3, "{live:?}");
    assert!(live.stderr.contains("may still be running"), "{}", live.stderr);
}

#[tokio::test]
async fn history_writes_are_fenced_on_holding_the_lease() {
    let world = World::new().await;
    let history = Ledger::new(world.client.clone(), &world.history);
    history.ensure_table().await.unwrap();
    let first = RunIdentity::current();
    let mut second = RunIdentity::current();
    second.owner = "other@host".into();
    let lease = Duration::from_secs(3);
    let lock_a = LeaseLock::new(history.clone(), first.clone(), "dev", lease);
    lock_a.try_acquire("run").await.unwrap();

    let attempt = Attempt {
        migration_id: MigrationId::parse("20250101_first").unwrap(),
        attempt: 1,
        direction: Direction::Up,
        state: AttemptState::Running,
        description: "d".into(),
        stage: "dev".into(),
        started_at: rfc3339(now_ms()),
        finished_at: None,
        duration_ms: None,
        items_processed: 0,
        items_modified: 0,
        error: None,
        checksum: None,
        allowed_modified: Vec::new(),
        verification: None,
        backup_arn: None,
        ran_by: first.clone(),
    };
    history.write_attempt(&attempt, &lock_a.fence()).await.expect("the holder may write");
    let outsider =
        history.write_attempt(&attempt, &LeaseLock::new(history.clone(), second.clone(), "dev", lease).fence()).await;
    assert!(matches!(outsider, Err(Error::LeaseLost)), "{outsider:?}");

    // A stalls longer than its lease; B takes over; A's next write is refused.
    let lock_b = LeaseLock::new(history.clone(), second.clone(), "dev", lease);
    assert!(matches!(lock_b.try_acquire("run").await, Err(Error::LockHeld(_))));
    tokio::time::sleep(lease + Duration::from_millis(300)).await;
    lock_b.try_acquire("run").await.expect("expired lease is taken over");
    let stale = history.write_attempt(&attempt, &lock_a.fence()).await;
    assert!(matches!(stale, Err(Error::LeaseLost)), "{stale:?}");
    assert_eq!(history.all_attempts().await.unwrap().len(), 1);
}
