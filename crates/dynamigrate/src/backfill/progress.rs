//! The progress reporter of a scan: once a second it reads the meter and sends the observer a
//! [`ProgressSnapshot`]: items settled against DescribeTable's estimate (or segments done), the
//! rate over the last 10 s, the counts and the rate limit. How it is shown is the observer's affair.

use std::collections::VecDeque;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::meter::Meter;
use super::rate::RateControl;
use super::window::Window;
use crate::events::{rate_between, BackfillProgress, Event, Observer, ProgressSnapshot};

/// What the reporter knows beyond the counts.
pub(crate) struct ReportScope {
    pub label: String,
    /// DescribeTable's ItemCount: an estimate AWS refreshes about every 6 hours.
    pub estimated_items: Option<u64>,
    pub total_segments: u32,
    /// A backfill reports its counts and rate limit; a read-only scan only its position.
    pub writes: Option<Writes>,
    pub observer: Arc<dyn Observer>,
    pub completion: Option<super::Completion>,
}

/// A backfill's part of the report.
pub(crate) struct Writes {
    pub dry_run: bool,
    pub rate: Arc<RateControl>,
    pub window: Arc<Window>,
}

const SAMPLE_EVERY: Duration = Duration::from_secs(1);
const RATE_WINDOW: Duration = Duration::from_secs(10);

pub(crate) struct Reporter {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Reporter {
    pub fn spawn(meter: Arc<Meter>, scope: ReportScope) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let started = Instant::now();
            let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
            loop {
                let ended = tokio::select! {
                    () = stopped.cancelled() => true,
                    () = tokio::time::sleep(SAMPLE_EVERY) => false,
                };
                let now = Instant::now();
                samples.push_back((now, meter.settled()));
                while samples.front().is_some_and(|(t, _)| now.duration_since(*t) > RATE_WINDOW) {
                    samples.pop_front();
                }
                let rate = rate_between(samples.front(), samples.back());
                let snapshot = snapshot(&meter, &scope, rate, started.elapsed());
                if ended {
                    scope.observer.on_event(&Event::ProgressEnded(&snapshot));
                    return;
                }
                scope.observer.on_event(&Event::Progress(&snapshot));
            }
        });
        Self { stop, task }
    }

    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

fn snapshot(meter: &Meter, scope: &ReportScope, per_second: f64, elapsed: Duration) -> ProgressSnapshot {
    ProgressSnapshot {
        label: scope.label.clone(),
        done: meter.settled(),
        total: scope.estimated_items,
        per_second,
        elapsed_ms: crate::events::millis(elapsed),
        segments: Some((meter.segments_done.load(Relaxed), scope.total_segments)),
        backfill: scope.writes.as_ref().map(|writes| {
            let counts = meter.counts();
            BackfillProgress {
                completion: scope.completion.as_ref().and_then(|f| f(&counts, scope.estimated_items)),
                counts,
                conflicts: meter.conflicts.load(Relaxed),
                dry_run: writes.dry_run,
                limit: writes.rate.describe(),
                in_flight: (!writes.dry_run).then(|| writes.window.size()),
            }
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::Silent;

    #[test]
    fn progress_counts_finished_items_not_fetched_ones() {
        let meter = Meter::default();
        meter.scanned.store(1000, Relaxed);
        meter.processed.store(100, Relaxed);
        meter.filtered_out.store(50, Relaxed);
        let scope = ReportScope {
            label: "x".into(),
            estimated_items: Some(1000),
            total_segments: 4,
            writes: None,
            observer: Arc::new(Silent),
            completion: None,
        };
        let s = snapshot(&meter, &scope, 10.0, Duration::ZERO);
        assert_eq!(s.permille(), 150);
        assert!(s.to_string().contains("150/~1000 items (15.0% of an estimate), ETA 85s"), "{s}");
    }
}
