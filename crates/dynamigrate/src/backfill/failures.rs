//! Items that could not be migrated: logged with key and reason, counted, and appended to a
//! JSON-lines file (`{"migration_id", "key", "error", "at"}`) to inspect and retry from.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::value::{key_json, key_text, Item};
use crate::clock::{now_ms, rfc3339};
use crate::id::MigrationId;

pub struct FailureLog {
    path: PathBuf,
    migration_id: MigrationId,
    /// A dry run writes nothing anywhere, this file included: it only logs.
    write_file: bool,
    file: Mutex<Option<std::fs::File>>,
}

impl FailureLog {
    pub fn new(path: PathBuf, migration_id: MigrationId, write_file: bool) -> Self {
        Self { path, migration_id, write_file, file: Mutex::new(None) }
    }

    pub fn default_path(migration_id: &MigrationId) -> PathBuf {
        PathBuf::from(format!("dynamigrate-failures-{migration_id}.jsonl"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn record(&self, key: &Item, error: &str) {
        tracing::warn!(migration = %self.migration_id, "item {} failed: {error}", key_text(key));
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
            if let Err(e) = writeln!(file, "{line}") {
                tracing::error!("cannot append to failures file {}: {e}", self.path.display());
            }
        }
    }
}
