//! What the core reports while it works, as data: progress snapshots and finished backfills.
//! The core never draws a bar or prints; whoever runs it (the CLI) implements [`Observer`] and
//! renders events as it likes: a bar on a terminal, log lines in CI, JSON for a log pipeline.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backfill::summary::BackfillSummary;
use crate::ledger::Counts;

/// Something worth telling whoever watches the run.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// How far a long piece of work is; sent about once a second.
    Progress(&'a ProgressSnapshot),
    /// The work is over; the last snapshot.
    ProgressEnded(&'a ProgressSnapshot),
    /// A backfill ended (finished, stopped or failed part-way), with what it did.
    BackfillFinished(&'a BackfillSummary),
}

/// Hears the core's events. Called from many tasks: keep it quick.
pub trait Observer: Send + Sync {
    fn on_event(&self, event: &Event<'_>);
}

/// An observer that ignores everything: the default, and what tests use.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Observer for Silent {
    fn on_event(&self, _: &Event<'_>) {}
}

/// How far a piece of work is, at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct ProgressSnapshot {
    pub label: String,
    /// Items finished.
    pub done: u64,
    /// Items expected in all, when known; an estimate for a backfill (DescribeTable's ItemCount).
    pub total: Option<u64>,
    pub per_second: f64,
    pub elapsed_ms: u64,
    /// For a scan: segments finished, and how many there are.
    pub segments: Option<(u64, u32)>,
    /// For a backfill: what happened to the items so far.
    pub backfill: Option<BackfillProgress>,
}

/// A backfill's side of a progress snapshot.
#[derive(Debug, Clone, Serialize)]
pub struct BackfillProgress {
    pub counts: Counts,
    pub conflicts: u64,
    pub dry_run: bool,
    /// The rate limit in force, e.g. "limit 95 WCU/s, backing off".
    pub limit: Option<String>,
    /// Write requests allowed in flight now (the window); None in a dry run.
    pub in_flight: Option<usize>,
    /// How far the backfill has come toward its goal, e.g. "71.3% of items at v2".
    pub completion: Option<String>,
}

impl ProgressSnapshot {
    /// Seconds left at the current rate, when there is a total to reach.
    pub fn eta_seconds(&self) -> Option<f64> {
        let total = self.total.filter(|t| *t > 0)?;
        (self.per_second > 0.0).then(|| total.saturating_sub(self.done) as f64 / self.per_second)
    }

    /// Progress in thousandths, for a bar: items against the total, or else segments done. Never a
    /// full bar before the end, since a total is an estimate.
    pub fn permille(&self) -> u64 {
        match (self.total.filter(|t| *t > 0), self.segments) {
            (Some(total), _) => (self.done * 1000 / total).min(999),
            (None, Some((done, of))) => done * 1000 / u64::from(of.max(1)),
            (None, None) => 0,
        }
    }
}

impl fmt::Display for ProgressSnapshot {
    /// `5915/~20000 items (29.6% of an estimate), ETA 11s | scanned 20000, modified 5915, ... | 1340 items/s`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.total.filter(|t| *t > 0), self.segments) {
            (Some(total), _) => {
                let percent = (self.done as f64 * 100.0 / total as f64).min(99.9);
                let eta = self.eta_seconds().map_or("?".to_string(), format_duration);
                write!(f, "{}/~{total} items ({percent:.1}% of an estimate), ETA {eta}", self.done)?;
            }
            (None, Some((done, of))) => write!(f, "{} items, segments {done}/{of}", self.done)?,
            (None, None) => write!(f, "{} items", self.done)?,
        }
        if let Some(b) = &self.backfill {
            let c = &b.counts;
            let modified = if b.dry_run { "would modify" } else { "modified" };
            write!(
                f,
                " | scanned {}, {modified} {}, skipped {}, failed {}, conflicts {}",
                c.scanned, c.modified, c.skipped, c.failed, b.conflicts
            )?;
            if let Some(completion) = &b.completion {
                write!(f, " | {completion}")?;
            }
        }
        write!(f, " | {:.0} items/s", self.per_second)?;
        let window = self.backfill.as_ref().and_then(|b| b.in_flight).map(|n| format!("window {n}"));
        let limit = self.backfill.as_ref().and_then(|b| b.limit.clone());
        let details: Vec<String> = window.into_iter().chain(limit).collect();
        if !details.is_empty() {
            write!(f, " ({})", details.join(", "))?;
        }
        Ok(())
    }
}

/// `42s`, `12m34s`, `2h01m`.
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=99 => format!("{s}s"),
        100..=5999 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// How often a [`Progress`] handle reports.
const REPORT_EVERY_MS: u64 = 1000;

/// A counter for a migration's own long loop (`ctx.progress(label, total)`), reported to the
/// observer about once a second. Counting is one atomic add.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: AtomicU64,
    started: Instant,
    last_report_ms: AtomicU64,
    observer: Arc<dyn Observer>,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: Option<u64>, observer: Arc<dyn Observer>) -> Self {
        let (done, last_report_ms) = (AtomicU64::new(0), AtomicU64::new(0));
        Self { label: label.into(), total, done, started: Instant::now(), last_report_ms, observer }
    }

    pub fn inc(&self, n: u64) {
        self.done.fetch_add(n, Relaxed);
        let now = self.started.elapsed().as_millis() as u64;
        let last = self.last_report_ms.load(Relaxed);
        let due = now >= last + REPORT_EVERY_MS;
        if due && self.last_report_ms.compare_exchange(last, now, Relaxed, Relaxed).is_ok() {
            self.observer.on_event(&Event::Progress(&self.snapshot()));
        }
    }

    pub fn position(&self) -> u64 {
        self.done.load(Relaxed)
    }

    /// Reports the final count and rate.
    pub fn finish(&self) {
        self.observer.on_event(&Event::ProgressEnded(&self.snapshot()));
    }

    pub fn snapshot(&self) -> ProgressSnapshot {
        let done = self.position();
        let elapsed = self.started.elapsed();
        ProgressSnapshot {
            label: self.label.clone(),
            done,
            total: self.total,
            per_second: done as f64 / elapsed.as_secs_f64().max(1e-3),
            elapsed_ms: elapsed.as_millis() as u64,
            segments: None,
            backfill: None,
        }
    }
}

/// Items per second from `(when, count)` samples: the change between the oldest and the newest.
pub(crate) fn rate_between(oldest: Option<&(Instant, u64)>, newest: Option<&(Instant, u64)>) -> f64 {
    match (oldest, newest) {
        (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => {
            n1.saturating_sub(*n0) as f64 / t1.duration_since(*t0).as_secs_f64()
        }
        _ => 0.0,
    }
}

/// `Duration` as whole milliseconds, for snapshots and summaries.
pub(crate) fn millis(duration: Duration) -> u64 {
    duration.as_millis().min(u128::from(u64::MAX)) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(done: u64, total: Option<u64>, segments: Option<(u64, u32)>, per_second: f64) -> ProgressSnapshot {
        ProgressSnapshot {
            label: "x".into(),
            done,
            total,
            per_second,
            elapsed_ms: 0,
            segments,
            backfill: Some(BackfillProgress {
                counts: Counts { scanned: 1000, ..Counts::default() },
                conflicts: 0,
                dry_run: false,
                limit: None,
                in_flight: Some(48),
                completion: None,
            }),
        }
    }

    #[test]
    fn eta_is_readable() {
        assert_eq!(format_duration(42.4), "42s");
        assert_eq!(format_duration(754.0), "12m34s");
        assert_eq!(format_duration(7300.0), "2h01m");
    }

    #[test]
    fn without_an_estimate_progress_counts_segments() {
        let s = snapshot(0, Some(0), Some((2, 8)), 0.0);
        assert_eq!(s.permille(), 250);
        assert!(s.to_string().contains("segments 2/8"), "{s}");
    }

    #[test]
    fn the_progress_line_shows_the_window_and_the_limit() {
        let mut s = snapshot(150, Some(1000), Some((0, 4)), 10.0);
        assert!(s.to_string().ends_with("| 10 items/s (window 48)"), "{s}");
        if let Some(backfill) = s.backfill.as_mut() {
            backfill.limit = Some("limit 95 WCU/s".into());
        }
        assert!(s.to_string().ends_with("(window 48, limit 95 WCU/s)"), "{s}");
    }

    #[test]
    fn progress_counts_finished_items_against_the_estimate() {
        let s = snapshot(150, Some(1000), Some((0, 4)), 10.0);
        assert_eq!(s.permille(), 150);
        assert!(s.to_string().contains("150/~1000 items (15.0% of an estimate), ETA 85s"), "{s}");
        assert!(s.to_string().contains("scanned 1000, modified 0"), "{s}");
        assert_eq!(snapshot(2000, Some(1000), None, 1.0).permille(), 999, "an estimate never fills the bar");
    }

    #[test]
    fn a_progress_handle_reports_at_most_once_a_second_and_at_the_end() {
        #[derive(Default)]
        struct Count(AtomicU64, AtomicU64);
        impl Observer for Count {
            fn on_event(&self, event: &Event<'_>) {
                match event {
                    Event::Progress(_) => self.0.fetch_add(1, Relaxed),
                    Event::ProgressEnded(s) => self.1.fetch_add(s.done, Relaxed),
                    _ => 0,
                };
            }
        }
        let seen = Arc::new(Count::default());
        let progress = Progress::new("loop", Some(10_000), seen.clone());
        for _ in 0..10_000 {
            progress.inc(1);
        }
        progress.finish();
        assert!(seen.0.load(Relaxed) <= 1, "{}", seen.0.load(Relaxed));
        assert_eq!(seen.1.load(Relaxed), 10_000);
    }
}
