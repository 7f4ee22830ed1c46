//! Exit codes, documented in the README.

use dynamigrate::ErrorKind;

/// Everything went as asked.
pub const OK: u8 = 0;
/// A migration failed (or DynamoDB failed us while running).
pub const FAILED: u8 = 1;
/// Bad usage, configuration or input; nothing was changed.
pub const INVALID: u8 = 2;
/// Another runner holds the lock.
pub const LOCK_HELD: u8 = 3;
/// `status --check` found pending, failed or missing migrations.
pub const CHECK_FOUND_WORK: u8 = 4;
/// Ctrl-C or SIGTERM before any work began (128 + SIGINT, as shells report it); nothing was changed.
pub const INTERRUPTED: u8 = 130;

pub fn for_kind(kind: ErrorKind) -> u8 {
    match kind {
        // A history item we cannot trust is bad input like any other, found before anything ran (one
        // found inside a migration fails that migration, which is exit 1 by the run's report).
        ErrorKind::Invalid | ErrorKind::CorruptLedger => INVALID,
        ErrorKind::LockHeld => LOCK_HELD,
        ErrorKind::Interrupted => INTERRUPTED,
        // A failed migration, DynamoDB failing us, a ledger item we cannot trust, a bug of ours:
        // the run did not do what was asked, and may have done part of it.
        _ => FAILED,
    }
}
