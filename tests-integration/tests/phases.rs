//! Expand → backfill → contract on DynamoDB Local: a contract step refused while an item is behind
//! and run once none is, verified between its upgrade and itself in one run; the version guard of an
//! upgrade under an application writing current-version items; and the upgrade's progress in versions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::types::AttributeValue as AV;
use dynamigrate::events::{Event, Observer};
use dynamigrate::versions::{self, Sampling, UpgradeChain, Versioning};
use dynamigrate::{async_trait, BackfillSettings, Migration, MigrationContext, Outcome, RunOptions};
use dynamigrate_tests::files::Folder;
use dynamigrate_tests::{put_items, s, scan_all, versioned_item, World};

/// An upgrade to `target` through `chain`, with knobs for the test.
struct Upgrade {
    chain: UpgradeChain,
    target: u64,
    settings: BackfillSettings,
}

#[async_trait]
impl Migration for Upgrade {
    fn id(&self) -> &str {
        "20250101_upgrade"
    }
    fn description(&self) -> &str {
        "an upgrade"
    }
    fn upgrades_to(&self) -> Option<u64> {
        Some(self.target)
    }
    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        let backfill = ctx.backfill().settings(self.settings.clone());
        Ok(versions::upgrade::run(backfill, &self.chain, self.target).await?.outcome())
    }
}

const LEGACY_V2: &str = r#"
description = "v2: the flag replaces the legacy attribute"
upgrade_to = 2
up = [{ default = "flag", value = true }]
"#;

const CONTRACT: &str = r#"
description = "contract: drop the legacy attribute"
requires = { version_at_least = 2 }
up = [{ remove = "legacy" }]
"#;

/// 20 unversioned items holding `legacy`, and a folder with the upgrade to v2 and the contract step.
async fn legacy_world() -> (World, Folder) {
    let world = World::new().await;
    put_items(
        &world.client,
        &world.table,
        (0..20).map(|i| versioned_item(&format!("ITEM#{i}"), None, &[("legacy", "x")])).collect(),
    )
    .await;
    let folder = Folder::new();
    folder.write("20250101-to-v2.toml", LEGACY_V2).write("20250301-drop-legacy.toml", CONTRACT);
    (world, folder)
}

#[tokio::test]
async fn a_contract_step_is_refused_while_one_item_is_behind_and_runs_once_none_is() {
    let (world, folder) = legacy_world().await;
    assert_eq!(world.files(&folder.dir, &["run", "--to", "20250101_to_v2"]).await.code, 0);
    put_items(&world.client, &world.table, vec![versioned_item("STRAY#1", Some(1), &[("legacy", "x")])]).await;

    let before = dynamigrate_tests::snapshot(&world.client, &world.table).await;
    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 1, "{ran:?}");
    assert!(ran.stdout.contains("refused: 1 of 21 items"), "{ran:?}");
    assert!(ran.stdout.contains(r#"{"pk":{"S":"STRAY#1"},"sk":{"S":"METADATA"}}"#), "the key is shown: {ran:?}");
    dynamigrate_tests::assert_same(&dynamigrate_tests::snapshot(&world.client, &world.table).await, &before, "refused");
    let attempts = world.attempts().await;
    let refused = attempts.iter().find(|a| a.migration_id.as_str() == "20250301_drop_legacy").unwrap();
    let verification = refused.verification.as_ref().expect("the attempt records its verification");
    assert_eq!(
        (refused.state, verification.passed, verification.failing),
        (dynamigrate::AttemptState::Failed, false, 1)
    );

    // The application rewrites the straggler at the current version; the contract step may run.
    put_items(&world.client, &world.table, vec![versioned_item("STRAY#1", Some(2), &[("flag", "set")])]).await;
    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    assert!(ran.stdout.contains("verified every item at v2 or above: passed"), "{ran:?}");
    assert!(scan_all(&world.client, &world.table).await.iter().all(|i| !i.contains_key("legacy")));
}

#[tokio::test]
async fn a_contract_step_after_its_upgrade_in_one_run_verifies_in_between() {
    let (world, folder) = legacy_world().await;
    let before = dynamigrate_tests::snapshot(&world.client, &world.table).await;
    // A dry run cannot know what the upgrade before it will do: it warns and goes on.
    let dry = world.files(&folder.dir, &["run", "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{dry:?}");
    assert!(dry.stderr.contains("a real run checks again after the steps before it"), "{dry:?}");
    dynamigrate_tests::assert_same(&dynamigrate_tests::snapshot(&world.client, &world.table).await, &before, "dry run");

    let ran = world.files(&folder.dir, &["run"]).await;
    assert_eq!(ran.code, 0, "{ran:?}");
    let items = scan_all(&world.client, &world.table).await;
    assert!(items.iter().all(|i| !i.contains_key("legacy") && i["version"] == AV::N("2".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_version_guard_loses_no_write_of_an_application_writing_current_items() {
    let world = World::new().await;
    let count = 300;
    put_items(
        &world.client,
        &world.table,
        (0..count).map(|i| versioned_item(&format!("ITEM#{i}"), Some(1), &[("name", "old")])).collect(),
    )
    .await;
    let chain = UpgradeChain::new(Versioning::default()).step(2, |mut item| {
        // A slow step widens the window between the read and the write.
        std::thread::sleep(std::time::Duration::from_millis(3));
        let name = item.remove("name").unwrap_or(AV::Null(true));
        item.insert("title".into(), name);
        Ok(item)
    });
    // The application: writes whole items at the current version, v2, while the backfill runs.
    let written: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let stop = tokio_util::sync::CancellationToken::new();
    let writer = {
        let (client, table, written, stop) = (world.client.clone(), world.table.clone(), written.clone(), stop.clone());
        tokio::spawn(async move {
            let mut k = 0;
            while !stop.is_cancelled() {
                k += 1;
                let pk = format!("ITEM#{}", fastrand::usize(0..count));
                let title = format!("app-{k}");
                let new = versioned_item(&pk, Some(2), &[("title", &title)]);
                client.put_item().table_name(&table).set_item(Some(new)).send().await.expect("app write");
                written.lock().unwrap().insert(pk, title);
            }
        })
    };
    let report = world
        .runner(vec![Box::new(Upgrade {
            chain,
            target: 2,
            settings: BackfillSettings { concurrency: Some(4), ..BackfillSettings::default() },
        })])
        .run(&RunOptions::default())
        .await
        .unwrap();
    stop.cancel();
    writer.await.unwrap();
    assert!(report.succeeded(), "{report:?}");
    let written = written.lock().unwrap().clone();
    assert!(written.len() > 20, "the application wrote during the backfill: {}", written.len());
    for item in scan_all(&world.client, &world.table).await {
        let pk = s(&item, "pk").unwrap();
        assert_eq!(item["version"], AV::N("2".into()), "{pk}");
        let expected = written.get(&pk).map_or("old", String::as_str);
        assert_eq!(s(&item, "title").as_deref(), Some(expected), "{pk}: the application's write survived");
        assert!(!item.contains_key("name"), "{pk}");
    }
    let conflicts: u64 = report.migrations[0].backfills.iter().map(|b| b.conflicts).sum();
    eprintln!("{} application writes, {conflicts} conflicts the guard caught", written.len());
}

/// Keeps what the progress line would say of an upgrade's completion.
#[derive(Default)]
struct Completions(Mutex<Vec<String>>);

impl Observer for Completions {
    fn on_event(&self, event: &Event<'_>) {
        if let Event::Progress(snapshot) | Event::ProgressEnded(snapshot) = event {
            if let Some(said) = snapshot.backfill.as_ref().and_then(|b| b.completion.clone()) {
                self.0.lock().unwrap().push(said);
            }
        }
    }
}

#[tokio::test]
async fn an_upgrade_shows_its_progress_as_the_share_of_items_at_its_version() {
    let world = World::new().await;
    put_items(
        &world.client,
        &world.table,
        (0..400).map(|i| versioned_item(&format!("ITEM#{i}"), Some(if i < 100 { 2 } else { 1 }), &[])).collect(),
    )
    .await;
    let chain = UpgradeChain::new(Versioning::default()).step(2, Ok);
    // Small, slow pages: the run lasts a few seconds, so the reporter speaks more than once.
    let settings = BackfillSettings {
        page_size: Some(20),
        page_delay_ms: Some(100),
        segments: Some(2),
        ..BackfillSettings::default()
    };
    let observer = Arc::new(Completions::default());
    let runner = world.runner(vec![Box::new(Upgrade { chain, target: 2, settings })]).with_observer(observer.clone());
    let census = runner.versions(None, Sampling::Full, &BackfillSettings::default()).await.unwrap();
    assert_eq!(census.percent_at_least(2), 25.0, "the baseline the progress line starts from");
    let report = runner.run(&RunOptions::default()).await.unwrap();
    assert!(report.succeeded(), "{report:?}");
    let said = observer.0.lock().unwrap().clone();
    assert!(said.len() >= 2, "{said:?}");
    assert!(said.iter().all(|s| s.ends_with("% of items at v2")), "{said:?}");
    let percent = |s: &String| s.split('%').next().unwrap().parse::<f64>().unwrap();
    assert!(percent(&said[0]) >= 25.0 && percent(&said[0]) < 100.0, "{said:?}");
    assert_eq!(said.last().map(percent), Some(100.0), "{said:?}");
}
