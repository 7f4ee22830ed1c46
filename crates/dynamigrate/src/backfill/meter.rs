//! Live counts of a backfill and how they are shown: an `indicatif` bar on a terminal, a log line
//! every few seconds otherwise. The hot path only does atomic adds; a reporter task samples them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::checkpoint::Counts;
use crate::progress::ProgressMode;

#[derive(Default)]
pub struct Meter {
    pub scanned: AtomicU64,
    pub processed: AtomicU64,
    pub modified: AtomicU64,
    pub skipped: AtomicU64,
    pub failed: AtomicU64,
    /// Conditional writes that found the item changed since it was read.
    pub conflicts: AtomicU64,
    /// Requests sent again (unprocessed batch items, transient errors).
    pub retries: AtomicU64,
    pub segments_done: AtomicU64,
    /// Scanned items the server-side filter left out: done as soon as their page arrives.
    pub filtered_out: AtomicU64,
}

impl Meter {
    /// Starts from what earlier (interrupted) runs already did, so totals cover the whole backfill.
    pub fn resuming(counts: &Counts, segments_done: u64) -> Self {
        let meter = Self::default();
        meter.add(counts);
        meter.segments_done.store(segments_done, Relaxed);
        meter.filtered_out.store(counts.scanned.saturating_sub(counts.processed), Relaxed);
        meter
    }

    /// Items finished: transformed and written (or skipped, or failed), or filtered out. Progress and
    /// rate use this rather than items scanned, which runs a whole 1 MB page ahead of the writes.
    pub fn settled(&self) -> u64 {
        self.processed.load(Relaxed) + self.filtered_out.load(Relaxed)
    }

    pub fn add(&self, c: &Counts) {
        self.scanned.fetch_add(c.scanned, Relaxed);
        self.processed.fetch_add(c.processed, Relaxed);
        self.modified.fetch_add(c.modified, Relaxed);
        self.skipped.fetch_add(c.skipped, Relaxed);
        self.failed.fetch_add(c.failed, Relaxed);
    }

    pub fn counts(&self) -> Counts {
        Counts {
            scanned: self.scanned.load(Relaxed),
            processed: self.processed.load(Relaxed),
            modified: self.modified.load(Relaxed),
            skipped: self.skipped.load(Relaxed),
            failed: self.failed.load(Relaxed),
        }
    }
}

/// What the reporter knows beyond the counts.
pub struct ReportScope {
    pub label: String,
    /// DescribeTable's ItemCount: an estimate AWS refreshes about every 6 hours.
    pub estimated_items: Option<u64>,
    pub total_segments: u32,
    pub mode: ProgressMode,
    pub dry_run: bool,
    /// Shown on the progress line: the current limit and whether it is backing off.
    pub rate: Option<Arc<super::rate::RateControl>>,
}

const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const RATE_WINDOW: Duration = Duration::from_secs(10);
const LOG_EVERY: Duration = Duration::from_secs(5);

pub struct Reporter {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Reporter {
    pub fn spawn(meter: Arc<Meter>, scope: ReportScope) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let bar = (scope.mode == ProgressMode::Bar).then(|| new_bar(&scope));
            let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
            let mut last_log = Instant::now();
            loop {
                tokio::select! {
                    () = stopped.cancelled() => break,
                    () = tokio::time::sleep(SAMPLE_EVERY) => {}
                }
                let now = Instant::now();
                samples.push_back((now, meter.settled()));
                while samples.front().is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW) {
                    samples.pop_front();
                }
                let line = status_line(&meter, &scope, rate(&samples));
                if let Some(bar) = &bar {
                    bar.set_position(progress_permille(&meter, &scope));
                    bar.set_message(line);
                } else if scope.mode == ProgressMode::Log && last_log.elapsed() >= LOG_EVERY {
                    last_log = now;
                    tracing::info!("{}: {line}", scope.label);
                }
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
        });
        Self { stop, task }
    }

    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Items per second over the recent window.
fn rate(samples: &VecDeque<(Instant, u64)>) -> f64 {
    match (samples.front(), samples.back()) {
        (Some((t0, n0)), Some((t1, n1))) if t1 > t0 => (n1 - n0) as f64 / t1.duration_since(*t0).as_secs_f64(),
        _ => 0.0,
    }
}

/// Progress in thousandths: items scanned against the estimate, or else segments done.
fn progress_permille(meter: &Meter, scope: &ReportScope) -> u64 {
    let done_segments = meter.segments_done.load(Relaxed);
    match scope.estimated_items.filter(|n| *n > 0) {
        Some(estimate) => (meter.settled() * 1000 / estimate).min(999),
        None => done_segments * 1000 / u64::from(scope.total_segments.max(1)),
    }
}

fn status_line(meter: &Meter, scope: &ReportScope, rate: f64) -> String {
    let c = meter.counts();
    let done_segments = meter.segments_done.load(Relaxed);
    let modified = if scope.dry_run { "would modify" } else { "modified" };
    let settled = meter.settled();
    let position = match scope.estimated_items.filter(|n| *n > 0) {
        Some(estimate) => {
            let percent = (settled as f64 * 100.0 / estimate as f64).min(99.9);
            let eta = if rate > 0.0 {
                format_duration(estimate.saturating_sub(settled) as f64 / rate)
            } else {
                "?".to_string()
            };
            format!("{settled}/~{estimate} items ({percent:.1}% of an estimate), ETA {eta}")
        }
        None => format!("{settled} items, segments {done_segments}/{}", scope.total_segments),
    };
    let limit = scope.rate.as_ref().and_then(|r| r.describe()).map(|l| format!(" ({l})")).unwrap_or_default();
    format!(
        "{position} | scanned {}, {modified} {}, skipped {}, failed {}, conflicts {} | {rate:.0} items/s{limit}",
        c.scanned,
        c.modified,
        c.skipped,
        c.failed,
        meter.conflicts.load(Relaxed)
    )
}

fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=99 => format!("{s}s"),
        100..=5999 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

fn new_bar(scope: &ReportScope) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix} [{bar:25}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(scope.label.clone());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(estimated_items: u64, total_segments: u32) -> ReportScope {
        ReportScope {
            label: "x".into(),
            estimated_items: Some(estimated_items),
            total_segments,
            mode: ProgressMode::Hidden,
            dry_run: false,
            rate: None,
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
        let meter = Meter::default();
        meter.segments_done.store(2, Relaxed);
        let scope = scope(0, 8);
        assert_eq!(progress_permille(&meter, &scope), 250);
        assert!(status_line(&meter, &scope, 0.0).contains("segments 2/8"));
    }

    #[test]
    fn progress_counts_finished_items_not_fetched_ones() {
        let meter = Meter::default();
        meter.scanned.store(1000, Relaxed);
        meter.processed.store(100, Relaxed);
        meter.filtered_out.store(50, Relaxed);
        let scope = scope(1000, 4);
        assert_eq!(progress_permille(&meter, &scope), 150);
        assert!(status_line(&meter, &scope, 10.0).contains("150/~1000 items (15.0% of an estimate), ETA 85s"));
    }
}
