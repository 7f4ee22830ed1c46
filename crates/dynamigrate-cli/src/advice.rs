//! What to do next, in the CLI's words: the library says what is wrong without naming flags; the
//! command line adds how to fix it with its own flags and commands.

use dynamigrate::error::Error;
use dynamigrate::ledger::UnlockRefusal;
use dynamigrate::plan::PlanError;

/// Advice to append to an error's message, if the CLI has any.
pub fn for_error(error: &Error) -> Option<&'static str> {
    Some(match error.root() {
        Error::LockHeld(_) => "wait with --wait SECS, or if that runner is gone, run `dynamigrate unlock --force`",
        Error::UnlockRefused(UnlockRefusal::OtherOwner { .. }) => {
            "Releasing it needs --force; make sure that runner is gone first"
        }
        Error::UnlockRefused(UnlockRefusal::MaybeRunning { .. }) => "or pass --force",
        Error::UnlockRefused(UnlockRefusal::NotExpired { .. }) => "pass --force if that runner is gone",
        Error::UnlockRefused(UnlockRefusal::ChangedHands) => "run `dynamigrate status`",
        Error::Plan(PlanError::Missing(_)) => "pass --ignore-missing to run anyway",
        Error::Plan(PlanError::Modified(_)) => "pass --allow-modified to go on anyway (the run's attempts record it)",
        Error::Plan(PlanError::UnknownTarget(_) | PlanError::NotApplied(_)) => "check the id given to --to",
        Error::TableNotFound { .. } => "fix --table or the stage's `table`",
        Error::NoTable { .. } => "pass --table or set `table` in the stage",
        Error::NotALedger { .. } => "pass --history-table, or set history_table in the config",
        Error::Interrupted { .. } => "run the same command again when you are ready",
        Error::PitrOff { .. } => "`dynamigrate pitr enable` (with the same --stage and --table) turns it on",
        Error::Backup { .. } => {
            "`dynamigrate backup list` shows the table's backups; raise backup_timeout_seconds for a large table"
        }
        Error::CorruptLedger { key, .. } if key.pk == "LOCK" => {
            "a lock item no runner can read can be released with `dynamigrate unlock --force`"
        }
        _ => return None,
    })
}

/// The message and its advice, as the CLI prints them.
pub fn explain(error: &Error) -> String {
    match (for_error(error), error) {
        // A stopped backfill's advice is about the backfill, whatever stopped it.
        (_, Error::Backfill { .. }) => format!("{error}; its checkpoints are kept: `run` again to resume"),
        (Some(advice), _) => format!("{error}; {advice}"),
        (None, _) => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dynamigrate::MigrationId;

    #[test]
    fn advice_names_the_flags_the_library_does_not() {
        let missing = Error::Plan(PlanError::Missing(vec![MigrationId::parse("20250101_a").unwrap()]));
        let text = explain(&missing);
        assert!(text.contains("20250101_a") && text.ends_with("pass --ignore-missing to run anyway"), "{text}");
        assert!(!missing.to_string().contains("--"), "the library's own message names no flag");
        assert_eq!(explain(&Error::Internal("x".into())), Error::Internal("x".into()).to_string());
    }
}
