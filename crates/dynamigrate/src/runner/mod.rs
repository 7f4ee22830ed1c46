//! The runner: reads the history, plans, takes the lock, runs migrations in order and records each
//! attempt. A dry run follows the same plan but writes nothing anywhere and takes no lock.

mod dry_run;
mod execute;
mod options;
mod record;
mod report;
mod safety;
mod status;
mod versions;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use tokio_util::sync::CancellationToken;

pub use options::{DownOptions, RunOptions, RunnerConfig, DEFAULT_BACKUP_TIMEOUT};
pub use report::{MigrationReport, PlannedMigration, RunReport, StatusReport};
pub use safety::{PitrLine, Restore};

use crate::attempt::{Attempt, AttemptState, Direction, RunIdentity};
use crate::aws::{table_exists, RetryStats};
use crate::backfill::{BackfillEnv, BackfillSettings, Scope};
use crate::clock::{now_ms, rfc3339};
use crate::context::MigrationContext;
use crate::events::{Observer, Silent};
use crate::id::MigrationId;
use crate::ledger::{Fence, LeaseLock, Ledger, UnlockOutcome};
use crate::migration::{Migration, MigrationSet};
use crate::plan::{PlanError, Status};
use crate::Error;
use execute::execute;
use record::{ended_before, next_attempt, settle};
use status::busy;

/// What the plan found of the history table: a run creates it only when it was missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum History {
    Verified,
    Missing,
}

/// One locked run: where history goes, which table and direction, how to stop, what backfills get.
struct LockedRun<'a> {
    ledger: &'a Ledger,
    fence: Fence,
    table: &'a str,
    direction: Direction,
    token: CancellationToken,
    settings: &'a BackfillSettings,
    /// Applied migrations whose code changed, which the plan was allowed to go past.
    modified: Vec<MigrationId>,
}

pub struct Runner {
    client: Client,
    config: RunnerConfig,
    migrations: MigrationSet,
    identity: RunIdentity,
    shutdown: CancellationToken,
    retry_stats: Arc<RetryStats>,
    observer: Arc<dyn Observer>,
    /// For exports: reads what they wrote to S3.
    s3: Option<aws_sdk_s3::Client>,
}

impl Runner {
    pub fn new(client: Client, config: RunnerConfig, migrations: MigrationSet) -> Self {
        Self {
            client,
            config,
            migrations,
            identity: RunIdentity::current(),
            shutdown: CancellationToken::new(),
            retry_stats: Arc::default(),
            observer: Arc::new(Silent),
            s3: None,
        }
    }

    /// The S3 client exports read their objects with (see [`crate::aws::s3_client`]).
    pub fn with_s3(mut self, s3: aws_sdk_s3::Client) -> Self {
        self.s3 = Some(s3);
        self
    }

    /// The retry counters of the client (from [`crate::aws::migration_client`]), so that run
    /// summaries can say how many requests were retried and why.
    pub fn with_retry_stats(mut self, stats: Arc<RetryStats>) -> Self {
        self.retry_stats = stats;
        self
    }

    /// Who hears progress and finished backfills (the CLI draws them); nobody by default.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = observer;
        self
    }

    /// Cancel this token (e.g. on Ctrl-C) to make the current migration stop at its next check;
    /// the attempt is recorded as failed and the lock released.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    fn ledger(&self) -> Ledger {
        Ledger::new(self.client.clone(), &self.config.history_table)
    }

    fn lock(&self) -> LeaseLock {
        LeaseLock::new(self.ledger(), self.identity.clone(), &self.config.stage, self.config.lease)
    }

    pub async fn run(&self, options: &RunOptions) -> Result<RunReport, Error> {
        let plan =
            |status: &Status| status.plan_up(options.to.as_ref(), options.ignore_missing, options.allow_modified);
        self.start(Direction::Up, options.dry_run, options.wait, &options.backfill, plan).await
    }

    pub async fn down(&self, options: &DownOptions) -> Result<RunReport, Error> {
        let plan = |status: &Status| status.plan_down(&options.target);
        self.start(Direction::Down, options.dry_run, options.wait, &options.backfill, plan).await
    }

    /// Plans first, without writing: a plan that cannot be made, or that has nothing to do while no
    /// other runner is at work, returns before the history table is created or the lock taken.
    async fn start(
        &self,
        direction: Direction,
        dry_run: bool,
        wait: Duration,
        settings: &BackfillSettings,
        plan: impl Fn(&Status) -> Result<Vec<MigrationId>, PlanError>,
    ) -> Result<RunReport, Error> {
        // Independent reads, so together: at a 100 ms round trip each one in line costs 100 ms.
        let (table, status) = tokio::join!(self.target_table(), self.history_status());
        let (table, status) = (table?, status?);
        let planned = self.describe(&plan(&status.status)?);
        if dry_run {
            return self.dry_run(&table, direction, (&planned, status.lock.as_ref()), settings).await;
        }
        if planned.is_empty() && !busy(&status) {
            return Ok(self.report(&table, direction, false));
        }
        let ids: Vec<MigrationId> = planned.iter().map(|p| p.id.clone()).collect();
        self.check_pitr(&ids).await?;
        let history = if status.history_table_exists { History::Verified } else { History::Missing };
        self.run_locked((&table, history, &ids), direction, wait, settings, plan).await
    }

    pub async fn unlock(&self, force: bool) -> Result<UnlockOutcome, Error> {
        if !self.ledger().verify().await? {
            return Ok(UnlockOutcome::NotLocked);
        }
        self.lock().unlock(force).await
    }

    /// The stage's main table, which must exist: a typo must not end in a run that "succeeds" on nothing.
    async fn target_table(&self) -> Result<String, Error> {
        let table = self.config.table.clone().ok_or_else(|| Error::NoTable { stage: self.config.stage.clone() })?;
        if !table_exists(&self.client, &table).await? {
            return Err(Error::TableNotFound { table });
        }
        Ok(table)
    }

    /// `first` is what the plan before the lock found: likely what the plan under it finds too.
    async fn run_locked(
        &self,
        (table, history, first): (&str, History, &[MigrationId]),
        direction: Direction,
        wait: Duration,
        settings: &BackfillSettings,
        plan: impl Fn(&Status) -> Result<Vec<MigrationId>, PlanError>,
    ) -> Result<RunReport, Error> {
        let ledger = self.ledger();
        if history == History::Missing {
            ledger.ensure_table().await?;
        }
        let token = self.shutdown.child_token();
        let command = match direction {
            Direction::Up => "run",
            Direction::Down => "down",
        };
        let lease = self.lock().acquire(command, wait, token.clone()).await?;
        let fence = lease.fence().clone();
        let mut run = LockedRun { ledger: &ledger, fence, table, direction, token, settings, modified: Vec::new() };
        let result = self.run_planned(&mut run, first, &plan).await;
        let released = lease.release().await;
        let report = result?;
        released?;
        Ok(report)
    }

    async fn run_planned(
        &self,
        run: &mut LockedRun<'_>,
        first: &[MigrationId],
        plan: &impl Fn(&Status) -> Result<Vec<MigrationId>, PlanError>,
    ) -> Result<RunReport, Error> {
        // Plan again under the lock: the history may have moved since the caller looked. The
        // checkpoints of what the first plan found are read meanwhile (read-only: a round trip
        // less in line); a result is used only if the new plan still holds its migration.
        let (latest, mut checked) = tokio::join!(run.ledger.latest_attempts(), check_all(run, first));
        let latest = latest?;
        let status = Status::derive(&self.migrations.summaries(), &latest, Some(&self.identity.run_id));
        let ids = plan(&status)?;
        run.modified = status.modified();
        let run = &*run;
        // Every attempt number is settled before the first migration runs: a migration out of
        // numbers stops the run before anything was done, not half-way.
        let numbered = ids.iter().map(|id| Ok((id, next_attempt(&latest, id)?))).collect::<Result<Vec<_>, Error>>()?;
        // Likewise the checkpoints a resume would trust: a bad one is refused before any attempt.
        for id in &ids {
            match checked.remove(id) {
                Some(result) => result?,
                None => run.ledger.check_checkpoints(id, &run.fence).await?,
            }
        }
        let mut report = self.report(run.table, run.direction, false);
        for (id, number) in numbered {
            let Some(migration) = self.migrations.get(id) else {
                continue;
            };
            // Interrupted before this migration began: start nothing more (the first? nothing at all).
            if run.token.is_cancelled() {
                if report.migrations.is_empty() {
                    return Err(Error::Interrupted { while_: "preparing the run".into() });
                }
                break;
            }
            let migration_report = self.run_one(run, migration, id, number).await?;
            let failed = !migration_report.outcome.success;
            report.migrations.push(migration_report);
            if failed {
                break;
            }
        }
        Ok(report)
    }

    /// Records the attempt as running, runs the migration, records how it ended.
    async fn run_one(
        &self,
        run: &LockedRun<'_>,
        migration: &Arc<dyn Migration>,
        id: &MigrationId,
        number: u32,
    ) -> Result<MigrationReport, Error> {
        let verification =
            self.verify_first(migration, (id, run.direction), run.settings, true, run.token.clone()).await?;
        let started_ms = now_ms();
        let mut attempt = self.new_attempt(run, migration.as_ref(), (id, number), started_ms);
        attempt.verification = verification.clone();
        if let Some(verification) = verification.filter(|v| !v.passed) {
            let report = versions::refused(migration.as_ref(), id, verification);
            return ended_before(run, attempt, report).await;
        }
        run.ledger.write_attempt(&attempt, &run.fence).await?;
        match self.backup_first(run, migration, id).await {
            Ok(None) => {}
            Ok(Some(backup)) => {
                attempt.backup_arn = Some(backup.arn);
                run.ledger.write_attempt(&attempt, &run.fence).await?;
            }
            Err(error) => {
                let report = safety::not_backed_up(migration.as_ref(), id, run.direction, &error);
                return ended_before(run, attempt, report).await;
            }
        }

        let checkpoints = Some((run.ledger.clone(), run.fence.clone()));
        let env = self.backfill_env(id, false, run.token.clone(), run.settings, run.direction, checkpoints);
        let context = self.context(id, run.table, env);
        let mut report = execute(migration.as_ref(), id, run.direction, &context).await;
        report.verification = attempt.verification.clone();
        report.backup = attempt.backup_arn.clone();
        if report.outcome.success && run.token.is_cancelled() {
            report.outcome.success = false;
            report.error = Some("stopped before it finished (interrupted or lease lost)".into());
        }

        settle(&mut attempt, &report, started_ms);
        run.ledger.write_attempt(&attempt, &run.fence).await?;
        Ok(report)
    }

    /// A migration's attempt as it starts: running, numbered, with the run's facts.
    fn new_attempt(
        &self,
        run: &LockedRun<'_>,
        migration: &dyn Migration,
        (id, number): (&MigrationId, u32),
        started_ms: u64,
    ) -> Attempt {
        Attempt {
            migration_id: id.clone(),
            attempt: number,
            direction: run.direction,
            state: AttemptState::Running,
            description: migration.description().to_string(),
            stage: self.config.stage.clone(),
            started_at: rfc3339(started_ms),
            finished_at: None,
            duration_ms: None,
            items_processed: 0,
            items_modified: 0,
            error: None,
            checksum: migration.checksum(),
            allowed_modified: run.modified.clone(),
            verification: None,
            backup_arn: None,
            ran_by: self.identity.clone(),
        }
    }

    /// What one migration's backfills get from this run.
    fn backfill_env(
        &self,
        id: &MigrationId,
        dry_run: bool,
        cancel: CancellationToken,
        settings: &BackfillSettings,
        direction: Direction,
        ledger: Option<(Ledger, Fence)>,
    ) -> BackfillEnv {
        let scope = Scope {
            client: self.client.clone(),
            dry_run,
            cancel,
            observer: self.observer.clone(),
            retry_stats: self.retry_stats.clone(),
            migration: Some(id.clone()),
            completion: None,
        };
        BackfillEnv { scope, overrides: settings.clone(), ledger, direction, summaries: Arc::default() }
    }

    fn context(&self, id: &MigrationId, table: &str, backfills: BackfillEnv) -> MigrationContext {
        MigrationContext {
            migration_id: id.clone(),
            table_name: table.to_string(),
            tables: self.config.tables.clone(),
            dry_run: backfills.scope.dry_run,
            client: self.client.clone(),
            stage: self.config.stage.clone(),
            versioning: self.config.versioning.clone(),
            backfills,
        }
    }

    fn report(&self, table: &str, direction: Direction, dry_run: bool) -> RunReport {
        RunReport {
            stage: self.config.stage.clone(),
            table: table.to_string(),
            direction,
            dry_run,
            migrations: Vec::new(),
        }
    }
}

/// The checkpoints of each of `ids` checked as a resume would trust them, one result each.
async fn check_all(run: &LockedRun<'_>, ids: &[MigrationId]) -> HashMap<MigrationId, Result<(), Error>> {
    let mut checked = HashMap::new();
    for id in ids {
        checked.insert(id.clone(), run.ledger.check_checkpoints(id, &run.fence).await);
    }
    checked
}
