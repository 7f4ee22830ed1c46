//! A migration file as a `dynamigrate::Migration`: `up` (and `down`) is one backfill configured
//! from the file, with its operations or its script as the transform. An upgrade step's `up` runs
//! the table's chain of steps up to its version; its `down` undoes its own step and lowers the
//! version by one.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use dynamigrate::backfill::Backfill;
use dynamigrate::clock::{now_ms, rfc3339};
use dynamigrate::versions::{self, Requirement};
use dynamigrate::{Migration, MigrationContext, MigrationId, Outcome, Phase, Transform};
use dynamigrate_script::{Entry, RunInfo};

use crate::chain::{self, Downgrade, Step, StepCode, Steps};
use crate::format::{Body, Parsed};
use crate::ops::Operations;
use crate::spec::FileSpec;

/// One file of the migrations folder, read and checked.
pub struct FileMigration {
    id: MigrationId,
    path: PathBuf,
    checksum: String,
    spec: FileSpec,
    body: Body,
    /// For an upgrade step: every step of its table, linked when the folder was read.
    steps: Option<Steps>,
}

impl FileMigration {
    pub(crate) fn new(id: MigrationId, path: PathBuf, checksum: String, parsed: Parsed) -> Self {
        Self { id, path, checksum, spec: parsed.spec, body: parsed.body, steps: None }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn spec(&self) -> &FileSpec {
        &self.spec
    }

    /// This file's step, when it is an upgrade: the table it upgrades and its code.
    pub(crate) fn step(&self) -> Option<(Option<String>, Step)> {
        let to = self.spec.lifecycle.upgrade_to?;
        let code = match &self.body {
            Body::Operations { up, .. } => StepCode::Operations(up.clone()),
            Body::Script(script) => StepCode::Script(script.clone()),
        };
        Some((self.spec.table.clone(), Step { to, id: self.id.clone(), checksum: self.checksum.clone(), code }))
    }

    pub(crate) fn link(&mut self, steps: Steps) {
        self.steps = Some(steps);
    }

    async fn backfill(&self, ctx: &MigrationContext, entry: Entry) -> anyhow::Result<Outcome> {
        let table = match &self.spec.table {
            Some(logical) => ctx.table(logical)?.to_string(),
            None => ctx.table_name.clone(),
        };
        let info = RunInfo {
            migration: self.id.to_string(),
            table: table.clone(),
            started_at: rfc3339(now_ms()),
            dry_run: ctx.dry_run,
        };
        let backfill = self.spec.configure(ctx.backfill().table(&table), entry == Entry::Up);
        let summary = match (self.spec.lifecycle.upgrade_to, &self.steps, entry) {
            (Some(to), Some(steps), Entry::Up) => {
                let key_names = dynamigrate::backfill::key_names(&ctx.client, &table).await?;
                let chain = chain::chain(steps, ctx.versioning(&table), &key_names, &info);
                chain.check().map_err(anyhow::Error::msg)?;
                let backfill = self.guarded(versions::upgrade::prepare(backfill, &chain, to).await);
                backfill.run_shared(Arc::new(chain.transform(to))).await?
            }
            (Some(to), _, Entry::Down) => {
                let versioning = ctx.versioning(&table);
                let inner = self.transform(ctx, &table, entry, info).await?;
                let downgrade = Downgrade { inner, attribute: versioning.attribute.clone(), from: to };
                let backfill = self.operations_guarded(backfill, entry);
                backfill.select(versioning.at(to)).run_shared(Arc::new(downgrade)).await?
            }
            _ => {
                let backfill = self.operations_guarded(backfill, entry);
                backfill.run_shared(self.transform(ctx, &table, entry, info).await?).await?
            }
        };
        Ok(summary.outcome())
    }

    /// The file's own guard wins over the upgrade's version guard, when it names one.
    fn guarded(&self, backfill: Backfill) -> Backfill {
        match &self.spec.guard {
            Some(guard) => backfill.guard(guard.clone()),
            None => backfill,
        }
    }

    /// A TOML file's operations are guarded on what they read (`FileSpec::operations_guard`), not on
    /// the whole item, unless the file says otherwise.
    fn operations_guarded(&self, backfill: Backfill, entry: Entry) -> Backfill {
        let Body::Operations { up, down } = &self.body else { return backfill };
        let ops = match entry {
            Entry::Up => up.as_slice(),
            Entry::Down => down.as_deref().unwrap_or_default(),
        };
        match self.spec.operations_guard(ops, entry == Entry::Up) {
            Some(guard) => backfill.guard(guard),
            None => backfill,
        }
    }

    async fn transform(
        &self,
        ctx: &MigrationContext,
        table: &str,
        entry: Entry,
        info: RunInfo,
    ) -> anyhow::Result<Arc<dyn Transform>> {
        Ok(match &self.body {
            Body::Operations { up, down } => {
                let ops = match entry {
                    Entry::Up => up.clone(),
                    Entry::Down => down.clone().unwrap_or_default(),
                };
                Arc::new(Operations { ops, fingerprint: format!("toml:{}:{}", self.checksum, entry.name()) })
            }
            Body::Script(script) => {
                let key_names = dynamigrate::backfill::key_names(&ctx.client, table).await?;
                Arc::new(script.transform(entry, key_names, info))
            }
        })
    }
}

#[async_trait]
impl Migration for FileMigration {
    fn id(&self) -> &str {
        self.id.as_str()
    }

    fn description(&self) -> &str {
        &self.spec.description
    }

    fn checksum(&self) -> Option<String> {
        Some(self.checksum.clone())
    }

    fn phase(&self) -> Option<Phase> {
        self.spec.lifecycle.phase
    }

    fn table(&self) -> Option<String> {
        self.spec.table.clone()
    }

    fn upgrades_to(&self) -> Option<u64> {
        self.spec.lifecycle.upgrade_to
    }

    fn major(&self) -> bool {
        self.spec.major
    }

    fn requires(&self) -> Option<Requirement> {
        self.spec.lifecycle.requires.clone()
    }

    async fn up(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        self.backfill(ctx, Entry::Up).await
    }

    fn has_down(&self) -> bool {
        match &self.body {
            Body::Operations { down, .. } => down.is_some(),
            Body::Script(script) => script.has_down,
        }
    }

    async fn down(&self, ctx: &MigrationContext) -> anyhow::Result<Outcome> {
        anyhow::ensure!(self.has_down(), "migration {} has no down", self.id);
        self.backfill(ctx, Entry::Down).await
    }
}
