//! A migration file as a `dynamigrate::Migration`: `up` (and `down`) is one backfill configured
//! from the file, with its operations or its script as the transform.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use dynamigrate::clock::{now_ms, rfc3339};
use dynamigrate::{Change, Item, Migration, MigrationContext, MigrationId, Outcome, Transform};
use dynamigrate_script::{Entry, RunInfo};

use crate::format::{Body, Parsed};
use crate::ops::{apply_all, Op};
use crate::spec::FileSpec;

/// One file of the migrations folder, read and checked.
pub struct FileMigration {
    id: MigrationId,
    path: PathBuf,
    checksum: String,
    spec: FileSpec,
    body: Body,
}

impl FileMigration {
    pub(crate) fn new(id: MigrationId, path: PathBuf, checksum: String, parsed: Parsed) -> Self {
        Self { id, path, checksum, spec: parsed.spec, body: parsed.body }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn spec(&self) -> &FileSpec {
        &self.spec
    }

    async fn backfill(&self, ctx: &MigrationContext, entry: Entry) -> anyhow::Result<Outcome> {
        let table = match &self.spec.table {
            Some(logical) => ctx.table(logical)?.to_string(),
            None => ctx.table_name.clone(),
        };
        let transform: Arc<dyn Transform> = match &self.body {
            Body::Operations { up, down } => {
                let ops = match entry {
                    Entry::Up => up.clone(),
                    Entry::Down => down.clone().unwrap_or_default(),
                };
                Arc::new(Operations { ops, fingerprint: format!("toml:{}:{}", self.checksum, entry.name()) })
            }
            Body::Script(script) => {
                let key_names = dynamigrate::backfill::key_names(&ctx.client, &table).await?;
                let info = RunInfo {
                    migration: self.id.to_string(),
                    table: table.clone(),
                    started_at: rfc3339(now_ms()),
                    dry_run: ctx.dry_run,
                };
                Arc::new(script.transform(entry, key_names, info))
            }
        };
        let backfill = self.spec.configure(ctx.backfill().table(table), entry == Entry::Up);
        let summary = backfill.run_shared(transform).await?;
        Ok(summary.outcome())
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

/// A TOML file's operations as a transform.
struct Operations {
    ops: Vec<Op>,
    fingerprint: String,
}

impl Transform for Operations {
    fn apply(&self, item: &Item) -> anyhow::Result<Change> {
        apply_all(&self.ops, item).map_err(anyhow::Error::msg)
    }

    fn fingerprint(&self) -> String {
        self.fingerprint.clone()
    }
}
