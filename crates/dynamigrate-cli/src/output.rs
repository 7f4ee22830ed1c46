//! What the commands print: a human summary on stdout, or with `--json` one JSON document on stdout.
//! Logs always go to stderr, so stdout stays parseable.

use std::io::Write;

use dynamigrate::ledger::UnlockOutcome;
use dynamigrate::{BackfillSummary, Direction, MigrationState, RunReport, StatusReport};
use serde::Serialize;

// Every write ignores its error: a closed stdout or stderr (`| head`, `2>&-`) ends the output, never
// the process with a panic, and the work already done stays recorded.

pub fn json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(text) => _ = writeln!(std::io::stdout().lock(), "{text}"),
        Err(e) => error_line(&format!("cannot encode the result as JSON: {e}")),
    }
}

/// `error: ...` on stderr.
pub fn error_line(message: &str) {
    let _ = writeln!(std::io::stderr().lock(), "error: {message}");
}

pub fn status(report: &StatusReport) {
    let mut out = std::io::stdout().lock();
    let lock = match &report.lock {
        None => "free".to_string(),
        Some(h) if h.is_expired() => {
            format!("expired lease of {} on {} (taken over by the next run)", h.holder.owner, h.holder.host)
        }
        Some(h) => format!("held by {h}"),
    };
    let _ = writeln!(out, "stage {}, history table {}, lock {lock}", report.stage, report.history_table);
    if !report.history_table_exists {
        let _ = writeln!(out, "(the history table does not exist yet; the first real run creates it)");
    }
    let width = report.status.entries.iter().map(|e| e.id.as_str().len()).max().unwrap_or(2).max(2);
    let _ = writeln!(out, "  {:<width$}  {:<19}  {:<34}  DESCRIPTION", "ID", "STATE", "LAST ATTEMPT");
    for entry in &report.status.entries {
        let last = entry.last_attempt.as_ref().map_or_else(String::new, |a| {
            let took = a.duration_ms.map_or(String::new(), |ms| format!(" {:.1}s", ms as f64 / 1000.0));
            format!("#{} {}{took}", a.attempt, a.started_at)
        });
        let phase = entry.phase.map_or(String::new(), |p| format!("[{p}] "));
        let _ = writeln!(
            out,
            "  {:<width$}  {:<19}  {:<34}  {phase}{}",
            entry.id.as_str(),
            entry.state.label(),
            last,
            entry.description
        );
        if let Some(required) = &entry.requires {
            let _ = writeln!(out, "  {:<width$}  requires {}", "", required.text);
        }
        if let Some(arn) = entry.last_attempt.as_ref().and_then(|a| a.backup_arn.as_ref()) {
            let _ = writeln!(out, "  {:<width$}  backed up first: {arn}", "");
        }
        if let Some(error) = entry.last_attempt.as_ref().and_then(|a| a.error.as_ref()) {
            if entry.state != MigrationState::Applied {
                let _ = writeln!(out, "  {:<width$}  error: {error}", "");
            }
        }
    }
    let status = &report.status;
    let failed = status.entries.iter().filter(|e| matches!(e.state, MigrationState::Failed(_))).count();
    let interrupted = status.entries.iter().filter(|e| matches!(e.state, MigrationState::Interrupted(_))).count();
    let modified = match status.count(MigrationState::Modified) {
        0 => String::new(),
        n => format!(", {n} modified since applied"),
    };
    let _ = writeln!(
        out,
        "{} applied, {} pending, {failed} failed, {interrupted} interrupted, {} missing{modified}",
        status.count(MigrationState::Applied),
        status.count(MigrationState::Pending),
        status.count(MigrationState::Missing),
    );
    crate::census::status_lines(&mut out, &report.censuses);
    for line in &report.pitr {
        let _ = match (&line.pitr, &line.unknown) {
            (Some(pitr), _) => writeln!(out, "{}", pitr_line(pitr)),
            (None, why) => {
                writeln!(out, "{}: point-in-time recovery unknown: {}", line.table, why.as_deref().unwrap_or("?"))
            }
        };
    }
}

pub fn run_report(report: &RunReport) {
    let mut out = std::io::stdout().lock();
    let (done, verb) = match (report.direction, report.dry_run) {
        (Direction::Up, false) => ("applied", "apply"),
        (Direction::Up, true) => ("would apply", "apply"),
        (Direction::Down, false) => ("rolled back", "roll back"),
        (Direction::Down, true) => ("would roll back", "roll back"),
    };
    let resume = if report.direction == Direction::Down { "down" } else { "run" };
    if report.migrations.is_empty() {
        let _ = writeln!(out, "nothing to {verb} on stage {} (table {})", report.stage, report.table);
        return;
    }
    for m in &report.migrations {
        let seconds = m.duration_ms as f64 / 1000.0;
        let counts = format!("{} processed, {} modified", m.outcome.items_processed, m.outcome.items_modified);
        match &m.error {
            None => {
                let _ = writeln!(out, "{done} {}  ({counts}, {seconds:.1}s)", m.id);
            }
            Some(error) => {
                let _ = writeln!(out, "FAILED {}  ({counts}, {seconds:.1}s): {error}", m.id);
            }
        }
        if let Some(backup) = &m.backup {
            let _ = writeln!(out, "  backup: {backup}");
        }
        if let Some(v) = &m.verification {
            let result = if v.passed { "passed" } else { "FAILED" };
            let _ = writeln!(
                out,
                "  verified {}: {result} ({} items read, {} break it)",
                v.requirement, v.scanned, v.failing
            );
        }
        for backfill in &m.backfills {
            backfill_summary(&mut out, backfill, resume);
        }
    }
    if report.dry_run {
        let _ = writeln!(out, "dry run: nothing was written (not the table, not the history, not the lock)");
    } else if !report.succeeded() {
        let _ = writeln!(out, "stopped at the first failure; fix it and `{resume}` again to retry it");
    }
}

/// `resume` is the command that takes a stopped backfill up again (`run`, or `down` for a down's).
fn backfill_summary(out: &mut impl Write, b: &BackfillSummary, resume: &str) {
    let _ = writeln!(out, "  {b}");
    if b.write_units > 0.0 || b.read_units > 0.0 {
        let seconds = (b.duration_ms as f64 / 1000.0).max(1e-3);
        let _ = writeln!(
            out,
            "  capacity: {:.0} WCU ({:.0}/s), {:.0} RCU ({:.0}/s)",
            b.write_units,
            b.write_units / seconds,
            b.read_units,
            b.read_units / seconds
        );
    }
    if let Some(reason) = &b.stopped {
        let _ = writeln!(out, "  stopped: {reason}; checkpoints are kept, `{resume}` again to resume");
    }
    if let Some(file) = &b.failures_file {
        let _ = writeln!(
            out,
            "  {} failed items are listed in {file}; fix them or the transform and `{resume}` again",
            b.counts.failed
        );
    }
    for diff in &b.sample_diffs {
        let _ = writeln!(out, "  {}{}", diff.key, if diff.deleted { " (deleted)" } else { "" });
        for change in &diff.changes {
            let before = change.before.as_deref().unwrap_or("(absent)");
            let after = change.after.as_deref().unwrap_or("(absent)");
            let _ = writeln!(out, "      {}: {before} -> {after}", change.attribute);
        }
    }
}

pub fn unlock(outcome: &UnlockOutcome) {
    let mut out = std::io::stdout().lock();
    let _ = match outcome {
        UnlockOutcome::NotLocked => writeln!(out, "the lock is free; nothing to release"),
        UnlockOutcome::Released(h) => {
            let holder = &h.holder;
            writeln!(
                out,
                "released the lock held by {} on {} (pid {}) since {}",
                holder.owner, holder.host, holder.pid, h.acquired_at
            )
        }
        UnlockOutcome::ReleasedUnreadable => writeln!(out, "removed a lock item no runner could read"),
        _ => Ok(()),
    };
}

/// `table: on (restorable from ...)` or `table: OFF`.
pub fn pitr_line(pitr: &dynamigrate::safety::Pitr) -> String {
    match (&pitr.enabled, &pitr.earliest_restorable) {
        (true, Some(from)) => format!("{}: point-in-time recovery on, restorable from {from}", pitr.table),
        (true, None) => format!("{}: point-in-time recovery on", pitr.table),
        (false, _) => format!("{}: point-in-time recovery OFF (`dynamigrate pitr enable` turns it on)", pitr.table),
    }
}
