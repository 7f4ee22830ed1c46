//! `ctx.backfill()`: the convenient way into the engine from a Rust migration. The builder fills a
//! [`BackfillSpec`] and, when run, adds what the migration's run provides: the command line's and
//! the stage's settings, the checkpoints in the ledger, and a place for the summary.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;

use super::change::{Change, Guard};
use super::engine;
use super::rate::RateMode;
use super::settings::{BackfillSettings, WriteMode};
use super::spec::BackfillSpec;
use super::summary::BackfillSummary;
use super::transform::Transform;
use super::value::Item;
use super::Scope;
use crate::attempt::Direction;
use crate::ledger::{CheckpointStore, Fence, Ledger};
use crate::Error;

/// What a migration's run gives its backfills. Made by the runner, kept in the context.
#[derive(Clone)]
pub(crate) struct BackfillEnv {
    pub scope: Scope,
    /// From the command line and the stage: they win over what the migration's code sets.
    pub overrides: BackfillSettings,
    /// Where checkpoints go, fenced on the run's lock. None in a dry run: it writes nothing anywhere.
    pub ledger: Option<(Ledger, Fence)>,
    pub direction: Direction,
    pub summaries: Arc<Mutex<Vec<BackfillSummary>>>,
}

impl BackfillEnv {
    fn checkpoints(&self, name: &str) -> Option<CheckpointStore> {
        let direction = match self.direction {
            Direction::Up => "up",
            Direction::Down => "down",
        };
        let (ledger, fence) = self.ledger.as_ref()?;
        let migration = self.scope.migration.clone()?;
        Some(CheckpointStore::new(ledger.clone(), migration, format!("{direction}#{name}"), fence.clone()))
    }

    fn record(&self, summary: &BackfillSummary) {
        if let Ok(mut summaries) = self.summaries.lock() {
            summaries.push(summary.clone());
        }
    }

    /// The summaries of the backfills run so far, finished or stopped part-way.
    pub fn take_summaries(&self) -> Vec<BackfillSummary> {
        self.summaries.lock().map(|mut s| std::mem::take(&mut *s)).unwrap_or_default()
    }
}

/// Which items, how to scan them and how to write: built from [`MigrationContext::backfill`](crate::MigrationContext::backfill).
#[must_use = "a backfill does nothing until .run(transform) is awaited"]
pub struct Backfill {
    spec: BackfillSpec,
    env: BackfillEnv,
}

impl Backfill {
    pub(crate) fn new(table: &str, env: BackfillEnv) -> Self {
        Self { spec: BackfillSpec::new(table), env }
    }

    /// The backfill as data, as it stands.
    pub fn spec(&self) -> &BackfillSpec {
        &self.spec
    }

    /// Names this backfill, when a migration runs more than one (checkpoints are kept per name).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.spec.name = name.into();
        self
    }

    /// Works on another table than the stage's main one.
    pub fn table(mut self, table: impl Into<String>) -> Self {
        self.spec.table = table.into();
        self
    }

    /// Only items whose partition key begins with `prefix` (a server-side filter: a scan still reads
    /// the whole table, but the transform sees only these).
    pub fn pk_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.spec.selection.pk_prefix = Some(prefix.into());
        self
    }

    /// Only items whose sort key begins with `prefix` (server-side filter).
    pub fn sk_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.spec.selection.sk_prefix = Some(prefix.into());
        self
    }

    /// A server-side filter expression; give its placeholders with [`Self::name_placeholder`] and
    /// [`Self::value_placeholder`].
    pub fn filter(mut self, expression: impl Into<String>) -> Self {
        self.spec.selection.filter = Some(expression.into());
        self
    }

    pub fn name_placeholder(mut self, placeholder: impl Into<String>, attribute: impl Into<String>) -> Self {
        self.spec.selection.names.insert(placeholder.into(), attribute.into());
        self
    }

    pub fn value_placeholder(mut self, placeholder: impl Into<String>, value: AttributeValue) -> Self {
        self.spec.selection.values.insert(placeholder.into(), value);
        self
    }

    /// Reads only these attributes (the key is always added). Whole-item puts and batch mode need
    /// the whole item and are refused with a projection.
    pub fn projection<I, S>(mut self, attributes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.spec.selection.projection = Some(attributes.into_iter().map(Into::into).collect());
        self
    }

    /// What a conditional write checks; default [`Guard::Item`].
    pub fn guard(mut self, guard: Guard) -> Self {
        self.spec.guard = guard;
        self
    }

    /// All the knobs at once; the command line and the stage still win over them.
    pub fn settings(mut self, settings: BackfillSettings) -> Self {
        self.spec.settings = settings;
        self
    }

    pub fn segments(mut self, segments: u32) -> Self {
        self.spec.settings.segments = Some(segments);
        self
    }

    pub fn concurrency(mut self, writes_in_flight: u32) -> Self {
        self.spec.settings.concurrency = Some(writes_in_flight);
        self
    }

    pub fn page_size(mut self, items: u32) -> Self {
        self.spec.settings.page_size = Some(items);
        self
    }

    pub fn page_delay(mut self, delay: Duration) -> Self {
        self.spec.settings.page_delay_ms = Some(delay.as_millis().min(u128::from(u64::MAX)) as u64);
        self
    }

    pub fn max_failures(mut self, failures: u64) -> Self {
        self.spec.settings.max_failures = Some(failures);
        self
    }

    pub fn write_mode(mut self, mode: WriteMode) -> Self {
        self.spec.settings.write_mode = Some(mode);
        self
    }

    /// At most this many items per second.
    pub fn rate(mut self, items_per_second: f64) -> Self {
        self.spec.settings.rate = Some(items_per_second);
        self
    }

    /// At most this many write capacity units per second.
    pub fn max_wcu(mut self, units_per_second: f64) -> Self {
        self.spec.settings.max_wcu = Some(units_per_second);
        self
    }

    /// At most this many read capacity units per second.
    pub fn max_rcu(mut self, units_per_second: f64) -> Self {
        self.spec.settings.max_rcu = Some(units_per_second);
        self
    }

    pub fn rate_mode(mut self, mode: RateMode) -> Self {
        self.spec.settings.rate_mode = Some(mode);
        self
    }

    /// How often an item is re-read and transformed again after a conflict before it counts as failed.
    pub fn max_conflict_retries(mut self, retries: u32) -> Self {
        self.spec.settings.max_conflict_retries = Some(retries);
        self
    }

    /// Narrows the items to those `selection` also selects (its filter joined to any set before).
    pub fn select(mut self, selection: super::Selection) -> Self {
        self.spec.selection = std::mem::take(&mut self.spec.selection).and(selection);
        self
    }

    /// What the progress line says of how far the backfill has come (an upgrade's share of items
    /// at its version, say), from the live counts and the table's estimated size.
    pub fn completion(mut self, completion: super::Completion) -> Self {
        self.env.scope.completion = Some(completion);
        self
    }

    /// The history table of the run, when it writes (not in a dry run).
    pub(crate) fn ledger(&self) -> Option<&Ledger> {
        self.env.ledger.as_ref().map(|(ledger, _)| ledger)
    }

    /// Scans, transforms and writes; returns when every segment is done, or the run was stopped.
    /// A backfill that fails part-way returns [`Error::Backfill`] with what it did, and its
    /// summary goes into the migration's report and attempt either way.
    ///
    /// Takes a closure (or function) so that `|item| ...` needs no type annotation; any other
    /// [`Transform`] goes through [`Self::run_shared`].
    pub async fn run<F>(self, transform: F) -> anyhow::Result<BackfillSummary>
    where
        F: Fn(&Item) -> anyhow::Result<Change> + Send + Sync + 'static,
    {
        self.run_shared(Arc::new(transform)).await
    }

    /// [`Self::run`] with any transform, shared.
    pub async fn run_shared(self, transform: Arc<dyn Transform>) -> anyhow::Result<BackfillSummary> {
        let Self { mut spec, env } = self;
        spec.settings = env.overrides.or(&spec.settings);
        let result = engine::run(&spec, transform, &env.scope, env.checkpoints(&spec.name)).await;
        match &result {
            Ok(summary) => env.record(summary),
            Err(Error::Backfill { summary, .. }) => env.record(summary),
            Err(_) => {}
        }
        Ok(result?)
    }
}
