//! The adaptive controller: a task that reads the run's consumed write units and throttles every
//! tick, asks the [policy](super::policy) what to do, and sets the write limit.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::policy::{Policy, Tick};
use super::RateControl;
use crate::aws::RetryStats;

const TICK: Duration = Duration::from_millis(250);

pub struct Controller {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Controller {
    pub fn spawn(rate: Arc<RateControl>, retries: Arc<RetryStats>) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let throttles = || retries.throttled() + rate.throttled.load(Relaxed);
            let mut policy = Policy::new(rate.start, rate.ceiling, Instant::now(), throttles());
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    () = tokio::time::sleep(TICK) => {}
                }
                let units = rate.write_milliunits.load(Relaxed) as f64 / 1000.0;
                let tick = Tick { now: Instant::now(), units, throttles: throttles(), limit: rate.write_rate() };
                if let Some(adjustment) = policy.tick(tick) {
                    rate.writes.set_rate(adjustment.limit);
                    if let Some(backing_off) = adjustment.backing_off {
                        rate.backing_off.store(backing_off, Relaxed);
                    }
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
