//! Items that could not be migrated: logged with key and reason, counted, and appended to a
//! JSON-lines file (`{"migration_id", "key", "error", "at"}`) to inspect and retry from.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use super::value::{key_json, key_text, Item};
use crate::clock::{now_ms, rfc3339};
use crate::id::MigrationId;

pub(crate) struct FailureLog {
    path: PathBuf,
    migration_id: Option<MigrationId>,
    /// A dry run writes nothing anywhere, this file included: it only logs.
    write_file: bool,
    file: Mutex<Option<std::fs::File>>,
    /// Lines that reached the file: the summary names the file only when it holds them.
    filed: AtomicU64,
}

impl FailureLog {
    pub fn new(path: PathBuf, migration_id: Option<MigrationId>, write_file: bool) -> Self {
        Self { path, migration_id, write_file, file: Mutex::new(None), filed: AtomicU64::new(0) }
    }

    /// `dynamigrate-failures-<migration id, or backfill name>.jsonl`.
    pub fn default_path(owner: &str) -> PathBuf {
        PathBuf::from(format!("dynamigrate-failures-{owner}.jsonl"))
    }

    /// The file, once it holds at least one failed item.
    pub fn filed_in(&self) -> Option<&Path> {
        (self.filed.load(Relaxed) > 0).then_some(self.path.as_path())
    }

    pub fn record(&self, key: &Item, error: &str) {
        let migration = self.migration_id.as_ref().map_or("", MigrationId::as_str);
        tracing::warn!(migration, "item {} failed: {error}", key_text(key));
        if !self.write_file {
            return;
        }
        let line = serde_json::json!({
            "migration_id": self.migration_id,
            "key": key_json(key),
            "error": error,
            "at": rfc3339(now_ms()),
        });
        let Ok(mut file) = self.file.lock() else { return };
        if file.is_none() {
            match std::fs::OpenOptions::new().create(true).append(true).open(&self.path) {
                Ok(opened) => *file = Some(opened),
                Err(e) => {
                    tracing::error!("cannot open failures file {}: {e}", self.path.display());
                    return;
                }
            }
        }
        if let Some(file) = file.as_mut() {
            match writeln!(file, "{line}") {
                Ok(()) => _ = self.filed.fetch_add(1, Relaxed),
                Err(e) => tracing::error!("cannot append to failures file {}: {e}", self.path.display()),
            }
        }
    }
}
