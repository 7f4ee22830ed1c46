//! The steering task: every tick it takes what the writes saw from the [`Window`], the throttles
//! the SDK retried on its own, and the request rate the limiter allows, asks the
//! [policy](super::policy) and resizes the window.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::policy::WindowPolicy;
use super::Window;
use crate::aws::RetryStats;
use crate::backfill::rate::RateControl;

const TICK: Duration = Duration::from_millis(100);

pub(crate) struct Steering {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Steering {
    /// Steers `window` until [`Self::finish`]; `max` bounds it (memory);
    /// `items_per_request` turns the limiter's item rate into requests.
    pub fn spawn(
        window: Arc<Window>,
        max: usize,
        rate: Arc<RateControl>,
        retries: Arc<RetryStats>,
        items_per_request: f64,
    ) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut policy = WindowPolicy::new(window.size(), max);
            window.resize(policy.size());
            // The SDK retries throttled and failed requests itself before the writer sees an
            // answer: those count as much as the ones the writer sees.
            let sdk = |r: &RetryStats| (r.throttled(), r.snapshot().total().saturating_sub(r.throttled()));
            let (mut throttled, mut errors) = sdk(&retries);
            let mut last = Instant::now();
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    () = tokio::time::sleep(TICK) => {}
                }
                let now = Instant::now();
                let mut seen = window.take_recent(now.duration_since(last));
                last = now;
                let (t, e) = sdk(&retries);
                seen.throttled += t.saturating_sub(throttled);
                seen.errors += e.saturating_sub(errors);
                (throttled, errors) = (t, e);
                let decision = policy.observe(seen, rate.requests_per_second(items_per_request));
                if let Some(j) = policy.take_judged() {
                    let (rtt, full) = (j.round_trip.as_secs_f64() * 1000.0, if j.full { "full" } else { "not full" });
                    tracing::trace!("in-flight window {}: {:.0} requests/s, {rtt:.1} ms, {full}", j.size, j.throughput);
                }
                if let Some(decision) = decision {
                    tracing::debug!("in-flight window {} -> {} ({:?})", window.size(), decision.size, decision.reason);
                    window.resize(decision.size);
                }
            }
        });
        Self { stop, task }
    }

    pub async fn finish(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}
