//! The dynamigrate command line, as a library: a team's migrations binary hands its migrations to
//! [`main`] and gets `status`, `run`, `down`, `versions`, `pitr`, `backup`, `policy`, `new` and
//! `unlock` with every option.
//!
//! ```no_run
//! # use dynamigrate::Migration;
//! # fn my_migrations() -> Vec<Box<dyn Migration>> { Vec::new() }
//! fn main() -> std::process::ExitCode {
//!     dynamigrate_cli::main(my_migrations())
//! }
//! ```
//!
//! The bare `dynamigrate` binary runs the migrations folder instead; a team's binary can run both
//! (their ids must not collide) with [`App`]:
//!
//! ```no_run
//! # use dynamigrate::Migration;
//! # fn my_migrations() -> Vec<Box<dyn Migration>> { Vec::new() }
//! fn main() -> std::process::ExitCode {
//!     dynamigrate_cli::App::new().migrations(my_migrations()).with_folder().main()
//! }
//! ```

/// A backfill runs for hours, and with glibc's malloc its memory crept at a fixed window: the live
/// heap stayed near 16 MB (heaptrack) while glibc's per-thread arenas grew about 1 MB a minute
/// (a 300,000-item run, pinned at 253 writes in flight: 42 → 62 MB and rising; `malloc_trim` gave
/// back 3 MB; with jemalloc 38 → 50 MB in the first 30 s, then flat between 49 and 56 MB). The
/// measurements are in docs/benchmarks.md.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod advice;
mod args;
mod aws;
mod census;
pub mod config;
mod confirm;
mod contract;
pub mod exit;
mod folder;
mod logging;
mod new;
mod output;
mod rails;
mod render;
mod signals;

use std::ffi::OsString;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use dynamigrate::versions::Sampling;
use dynamigrate::{
    BackfillSettings, DownOptions, DownTarget, Migration, MigrationSet, RunOptions, Runner, RunnerConfig,
};
use serde::Serialize;

use args::{Cli, Command, LogFormat};
use config::Overrides;
use render::{ProgressMode, Renderer};

/// Runs the CLI on this process's arguments with compiled-in migrations only.
pub fn main(migrations: Vec<Box<dyn Migration>>) -> ExitCode {
    App::new().migrations(migrations).main()
}

/// Runs the CLI on the given arguments (the first is the program name), compiled-in migrations only.
pub async fn run<I, T>(migrations: Vec<Box<dyn Migration>>, args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    App::new().migrations(migrations).run(args).await
}

/// Which migrations the command line works with: compiled-in ones, the migrations folder's, or both.
#[derive(Default)]
pub struct App {
    migrations: Vec<Box<dyn Migration>>,
    folder: bool,
}

impl App {
    pub fn new() -> Self {
        Self::default()
    }

    /// Migrations compiled into this binary.
    pub fn migrations(mut self, migrations: Vec<Box<dyn Migration>>) -> Self {
        self.migrations.extend(migrations);
        self
    }

    /// Also run the migrations folder's files (`--dir`, the config's `migrations_dir`, or
    /// `migrations/` beside the config).
    pub fn with_folder(mut self) -> Self {
        self.folder = true;
        self
    }

    /// Runs on this process's arguments with its own Tokio runtime.
    pub fn main(self) -> ExitCode {
        match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
            Ok(runtime) => runtime.block_on(self.run(std::env::args_os())),
            Err(e) => {
                output::error_line(&format!("cannot start the async runtime: {e}"));
                ExitCode::from(exit::FAILED)
            }
        }
    }

    /// Runs on the given arguments (the first is the program name).
    pub async fn run<I, T>(self, args: I) -> ExitCode
    where
        I: IntoIterator<Item = T>,
        T: Into<OsString> + Clone,
    {
        let cli = match Cli::try_parse_from(args) {
            Ok(cli) => cli,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() { exit::INVALID } else { exit::OK });
            }
        };
        let json = cli.global.json;
        // The environment is checked before anything reads it, the log filter included.
        if let Err(message) = contract::check_environment() {
            return finish(Err(Failure::invalid(message)), json);
        }
        logging::redact_environment();
        logging::init(cli.global.verbose, cli.global.log_format);
        finish(execute(cli, self).await, json)
    }
}

/// Says how it ended and turns that into the exit code.
fn finish(result: Result<u8, Failure>, json: bool) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            output::error_line(&failure.message);
            if json {
                output::json(&failure);
            }
            ExitCode::from(failure.exit_code)
        }
    }
}

/// An error on its way to the user: what to print and which exit code.
#[derive(Debug, Serialize)]
struct Failure {
    #[serde(rename = "error")]
    message: String,
    exit_code: u8,
}

impl Failure {
    fn invalid(message: impl ToString) -> Self {
        Self { message: message.to_string(), exit_code: exit::INVALID }
    }
}

impl From<dynamigrate::Error> for Failure {
    fn from(error: dynamigrate::Error) -> Self {
        Self { exit_code: exit::for_kind(error.kind()), message: advice::explain(&error) }
    }
}

impl From<config::ConfigError> for Failure {
    fn from(error: config::ConfigError) -> Self {
        Self::invalid(error)
    }
}

async fn execute(cli: Cli, app: App) -> Result<u8, Failure> {
    let global = &cli.global;
    let file = config::load(global.config.as_deref())?;
    let folder = folder::locate(global.dir.as_deref(), file.as_ref().map(|(p, f)| (p.as_path(), f)));
    if let Command::New { description, helper, toml, js, .. } = &cli.command {
        return new::new_file(&folder, description.as_deref(), *helper, (*toml, *js), global.json);
    }
    // Every migration is read and checked before any I/O: a bad id or file stops everything.
    let mut migrations = app.migrations;
    if app.folder {
        let files = folder::load(&folder, &migrations).map_err(Failure::invalid)?;
        migrations.extend(files.into_iter().map(|f| Box::new(f) as Box<dyn Migration>));
    }
    let migrations = MigrationSet::new(migrations)?;
    let overrides = Overrides {
        table: global.table.clone(),
        region: global.region.clone(),
        profile: global.profile.clone(),
        endpoint_url: global.endpoint_url.clone(),
        history_table: global.history_table.clone(),
    };
    let stage = config::resolve(file.as_ref().map(|(p, f)| (p.as_path(), f)), &global.stage, &overrides)?;
    contract::check_stage(&stage).map_err(Failure::invalid)?;
    // The backfill knobs too are checked before credentials are resolved (which may go to the network).
    let backfill = match &cli.command {
        Command::Run { backfill, .. } | Command::Down { backfill, .. } => settings(backfill, &stage)?,
        Command::Versions { segments, max_rcu, .. } => {
            let scan = BackfillSettings { segments: *segments, max_rcu: *max_rcu, ..BackfillSettings::default() };
            settings(&scan, &stage)?
        }
        _ => BackfillSettings::default(),
    };
    if let Command::Restore(args) = &cli.command {
        rails::check_restore(args)?;
    }
    if let Command::Export(args) = &cli.command {
        rails::check_export(args)?;
    }
    // The policy is made from the stage alone: no credentials needed.
    if let Command::Policy { account, export_bucket, export_prefix } = cli.command {
        return rails::policy(&stage, account, export_bucket, export_prefix);
    }
    let (client, retry_stats, s3) = aws::client(&stage).await.map_err(Failure::invalid)?;
    let runner_config = RunnerConfig {
        stage: stage.name.clone(),
        table: stage.table.clone(),
        tables: stage.tables.clone(),
        history_table: stage.history_table.clone(),
        lease: stage.lease,
        versioning: stage.versioning.clone(),
        require_pitr: stage.require_pitr,
        backup_before: stage.backup_before,
        backup_timeout: stage.backup_timeout,
    };
    let progress =
        if global.json || global.log_format == LogFormat::Json { ProgressMode::Log } else { ProgressMode::detect() };
    let runner = Runner::new(client, runner_config, migrations)
        .with_retry_stats(retry_stats)
        .with_s3(s3)
        .with_observer(Arc::new(Renderer::new(progress, cli.command.resumed_by())));
    let json = global.json;

    match cli.command {
        Command::Status { check } => {
            let report = runner.status().await?;
            if json {
                output::json(&report)
            } else {
                output::status(&report)
            }
            Ok(if check && report.status.has_work() { exit::CHECK_FOUND_WORK } else { exit::OK })
        }
        Command::Run { dry_run, to, wait, ignore_missing, allow_modified, .. } => {
            let wait = Duration::from_secs(wait.wait);
            let options = RunOptions { to, dry_run, wait, ignore_missing, allow_modified, backfill };
            confirm_if_asked(&stage, global.yes || dry_run, "apply", runner.plan_up(&options)).await?;
            let _interrupt = signals::stop_on_signal(runner.shutdown_token(), "run");
            Ok(print_run(&runner.run(&options).await?, json))
        }
        Command::Down { steps, to, dry_run, wait, .. } => {
            let target = to.map_or(DownTarget::Steps(steps.unwrap_or(1) as usize), DownTarget::To);
            let options = DownOptions { target, dry_run, wait: Duration::from_secs(wait.wait), backfill };
            confirm_if_asked(&stage, global.yes || dry_run, "roll back", runner.plan_down(&options)).await?;
            let _interrupt = signals::stop_on_signal(runner.shutdown_token(), "down");
            Ok(print_run(&runner.down(&options).await?, json))
        }
        Command::Versions { at_least, sample, .. } => {
            let sampling = sample.map_or(Sampling::Full, Sampling::Percent);
            let census = runner.versions(global.table.as_deref(), sampling, &backfill).await?;
            if json {
                output::json(&census)
            } else {
                census::print(&census)
            }
            let behind = at_least.is_some_and(|n| census.at_least(n) < census.items);
            Ok(if behind { exit::CHECK_FOUND_WORK } else { exit::OK })
        }
        Command::Pitr { action } => rails::pitr(&runner, global.table.as_deref(), action, json).await,
        Command::Backup { action } => rails::backup(&runner, global.table.as_deref(), action, global.yes, json).await,
        // A restore or an export goes on in DynamoDB whatever happens here: Ctrl-C only stops the waiting.
        Command::Restore(args) => rails::restore(&runner, global.table.as_deref(), args, json).await,
        Command::Export(args) => rails::export(&runner, global.table.as_deref(), args, json).await,
        Command::New { .. } | Command::Policy { .. } => unreachable!("handled before any I/O"),
        Command::Unlock { force } => {
            let outcome = runner.unlock(force).await?;
            if json {
                output::json(&outcome)
            } else {
                output::unlock(&outcome)
            }
            Ok(exit::OK)
        }
    }
}

/// The command line's backfill knobs over the stage's, checked before anything runs.
fn settings(command_line: &BackfillSettings, stage: &config::Stage) -> Result<BackfillSettings, Failure> {
    let settings = command_line.or(&stage.backfill);
    settings.validate()?;
    if let Some(file) = &settings.failures_file {
        contract::check_failures_file(file).map_err(Failure::invalid)?;
    }
    Ok(settings)
}

/// Shows the plan and asks for the stage name when the stage wants confirmation and there is work;
/// the plan is only computed then. A dry run, or `--yes`, never asks.
async fn confirm_if_asked(
    stage: &config::Stage,
    skip: bool,
    action: &str,
    plan: impl std::future::Future<Output = Result<Vec<dynamigrate::runner::PlannedMigration>, dynamigrate::Error>>,
) -> Result<(), Failure> {
    if skip || !stage.confirm {
        return Ok(());
    }
    let plan = plan.await?;
    if plan.is_empty() {
        return Ok(());
    }
    confirm::confirm(stage, action, &plan).map_err(Failure::invalid)
}

/// Prints what `run` or `down` did and says which exit code that means.
fn print_run(report: &dynamigrate::RunReport, json: bool) -> u8 {
    if json {
        output::json(report)
    } else {
        output::run_report(report)
    }
    if report.succeeded() {
        exit::OK
    } else {
        exit::FAILED
    }
}
