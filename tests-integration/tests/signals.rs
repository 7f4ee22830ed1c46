//! Signals at every wait, output to closed pipes, and secrets in logs: the last of the contract's
//! promises, tried on the real binary.

use std::process::Stdio;
use std::time::{Duration, Instant};

use dynamigrate::AttemptState;
use dynamigrate_tests::fixtures::is_migrated;
use dynamigrate_tests::{assert_same, finish, get_item, planted, put_items, scan_all, seed_items, snapshot, World};

const FIRST: &str = "20250101_first";

/// Sends `signal` (`-INT`, `-TERM`) to a child.
fn kill(child: &tokio::process::Child, signal: &str) {
    let pid = child.id().expect("running").to_string();
    assert!(std::process::Command::new("kill").args([signal, &pid]).status().unwrap().success());
}

/// A lock another runner holds for a minute.
async fn hold_lock(world: &World) {
    planted::plant(world, planted::lock("alice@build-7", "build-7", 4242, 60_000)).await;
}

#[tokio::test]
async fn a_signal_while_waiting_for_the_lock_stops_at_once_with_nothing_taken() {
    for signal in ["-INT", "-TERM"] {
        let world = World::new().await;
        hold_lock(&world).await;
        let history = snapshot(&world.client, &world.history).await;
        let child = world.command(&["run", "--wait", "60"]).spawn().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let signalled = Instant::now();
        kill(&child, signal);
        let ran = finish(child).await;
        assert!(signalled.elapsed() < Duration::from_secs(2), "{signal}: took {:?}", signalled.elapsed());
        assert_eq!(ran.code, 130, "{signal}: {ran:?}");
        assert!(ran.stderr.contains("interrupted while waiting for the lock held by alice@build-7"), "{}", ran.stderr);
        assert!(ran.stderr.contains("nothing was changed"), "{}", ran.stderr);
        assert_same(&snapshot(&world.client, &world.history).await, &history, "the other runner's lock is untouched");
        assert_eq!(world.marker_runs(FIRST).await, None);
    }
}

#[tokio::test]
async fn a_signal_during_a_slow_backfill_stops_within_a_second_and_the_next_run_finishes() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(400)).await;
    // Two items a second: a page of 100 takes fifty seconds, so the stop must cut into a page.
    let args = ["run", "--rate", "2", "--page-size", "100", "--segments", "2"];
    let mut command = world.command(&args);
    command.env("FIXTURE_BACKFILL", "1");
    let child = command.spawn().unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let signalled = Instant::now();
    kill(&child, "-INT");
    let ran = finish(child).await;
    assert!(signalled.elapsed() < Duration::from_secs(2), "took {:?}: {ran:?}", signalled.elapsed());
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.contains("`run` again to resume"), "{}", ran.stdout);
    assert!(get_item(&world.client, &world.history, "LOCK", "LOCK").await.is_none(), "the lock was released");
    let attempt = world.attempts().await.pop().unwrap();
    assert_eq!(attempt.state, AttemptState::Failed);

    let resumed = world.run_with(&["run"], &[("FIXTURE_BACKFILL", "1")]).await;
    assert_eq!(resumed.code, 0, "{resumed:?}");
    assert!(scan_all(&world.client, &world.table).await.iter().all(is_migrated), "nothing was skipped");
}

#[tokio::test]
async fn an_interrupted_down_says_to_run_down_again() {
    let world = World::new().await;
    assert_eq!(world.run(&["run"]).await.code, 0);
    let mut command = world.command(&["down"]);
    command.env("FIXTURE_SLEEP_MS", "20000");
    let child = command.spawn().unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    kill(&child, "-INT");
    let ran = finish(child).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stderr.contains("`down` again to resume"), "{}", ran.stderr);
    assert!(ran.stdout.contains("fix it and `down` again"), "{}", ran.stdout);
    assert!(!ran.stderr.contains("`run` again") && !ran.stdout.contains("`run` again"), "{ran:?}");
}

#[tokio::test]
async fn closed_output_pipes_end_the_output_not_the_run() {
    let world = World::new().await;
    let mut command = world.command(&["--json", "run"]);
    command.stdout(Stdio::piped());
    let mut child = command.spawn().unwrap();
    drop(child.stdout.take()); // `| true`: nobody reads the result
    let ran = finish(child).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
    let attempts = world.attempts().await;
    assert_eq!(attempts.len(), 3, "the run was applied and recorded");
    assert!(attempts.iter().all(|a| a.state == AttemptState::Succeeded));

    let mut command = world.command(&["run", "--to", "20250909_nope"]);
    let mut child = command.spawn().unwrap();
    drop(child.stderr.take()); // `2>&-` on a failure
    let ran = finish(child).await;
    assert_eq!(ran.code, 2, "{ran:?}");
}

/// Arguments and extra environment of one run.
type Invocation = (&'static [&'static str], &'static [(&'static str, &'static str)]);

#[tokio::test]
async fn credentials_never_reach_the_logs_at_any_verbosity() {
    let world = World::new().await;
    put_items(&world.client, &world.table, seed_items(20)).await;
    // DynamoDB Local runs with -sharedDb: any credentials of letters and digits work.
    let key = "AKIDPLANTEDKEY4TEST";
    let secret = "PlantedSecret0123456789abcdefSECRET";
    let token = "PlantedSessionToken0123456789TOKEN";
    let runs: [Invocation; 3] = [
        (&["-vvv", "run"], &[]),
        (&["run"], &[("DYNAMIGRATE_LOG", "trace")]),
        (&["-vv", "--log-format", "json", "status"], &[]),
    ];
    for (args, env) in runs {
        let mut command = world.command(args);
        command
            .env("AWS_ACCESS_KEY_ID", key)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_SESSION_TOKEN", token)
            .env("FIXTURE_BACKFILL", "1")
            .envs(env.iter().copied());
        let ran = finish(command.spawn().unwrap()).await;
        assert_eq!(ran.code, 0, "{args:?}: {}", ran.stderr.lines().rev().take(5).collect::<Vec<_>>().join("\n"));
        assert!(ran.stderr.lines().count() > 20, "{args:?} {env:?}: the SDK's own logs were on");
        for planted in [key, secret, token] {
            let output = format!("{}{}", ran.stdout, ran.stderr);
            assert!(!output.contains(planted), "{args:?} {env:?} printed a credential");
        }
    }
}
