//! Safety rails around a run: point-in-time recovery checked before anything is written, an
//! on-demand backup taken (and waited for) before a major migration, restores into a new table,
//! exports to S3, and the least-privilege IAM policy the rest needs.
//!
//! Pure: `BackupPolicy`, backup names, the policy document. I/O: `pitr`, `backup`, `restore`,
//! `export`, each a thin call of the DynamoDB API plus the one patient wait (`wait`) they share.

mod backup;
mod export;
mod pitr;
mod policy;
mod restore;
mod wait;

use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub use backup::{backup_name, create_backup, delete_backup, describe_backup, list_backups, wait_for_backup, Backup};
pub use export::{export, ExportRequest, Exported};
pub use pitr::{enable_pitr, pitr, Pitr};
pub use policy::{policy_document, PolicyScope};
pub use restore::{restore, RestoreSource, Restored};
pub use wait::Patience;

/// When a stage takes an on-demand backup before a migration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupPolicy {
    #[default]
    Never,
    /// Before migrations marked major.
    Major,
    Always,
}

impl BackupPolicy {
    /// Whether a migration (major or not) gets a backup first.
    pub fn wants(self, major: bool) -> bool {
        match self {
            Self::Never => false,
            Self::Major => major,
            Self::Always => true,
        }
    }
}

impl FromStr for BackupPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "never" => Ok(Self::Never),
            "major" => Ok(Self::Major),
            "always" => Ok(Self::Always),
            other => Err(format!("backup_before = {other:?}: use \"never\", \"major\" or \"always\"")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_policy_picks_migrations() {
        assert!(!BackupPolicy::Never.wants(true));
        assert!(BackupPolicy::Major.wants(true) && !BackupPolicy::Major.wants(false));
        assert!(BackupPolicy::Always.wants(false));
        assert_eq!("major".parse::<BackupPolicy>(), Ok(BackupPolicy::Major));
        assert!("sometimes".parse::<BackupPolicy>().unwrap_err().contains("\"never\", \"major\" or \"always\""));
    }
}
