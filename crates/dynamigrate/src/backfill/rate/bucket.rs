//! Token buckets: the pacing under every rate cap.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

/// A token bucket that may go into debt: a reservation larger than what is there is granted at once
/// and paid back by waiting. It saves at most 100 ms of rate: enough to smooth many concurrent
/// writers, too little to outrun the cap (a second of saved tokens kept a lowered rate from
/// biting for seconds).
#[derive(Debug)]
pub(super) struct Bucket {
    /// Units per second; `f64::INFINITY` for no limit.
    rate: f64,
    pub(super) tokens: f64,
    refilled: Instant,
}

impl Bucket {
    pub(super) fn new(rate: f64) -> Self {
        // Empty at the start: a cap must hold from the first second, not after a free burst.
        Self { rate, tokens: 0.0, refilled: Instant::now() }
    }

    fn refill(&mut self, now: Instant) {
        if self.rate.is_finite() {
            let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
            self.tokens = (self.tokens + elapsed * self.rate).min(self.rate * BURST);
        }
        self.refilled = now;
    }

    /// Takes `units` and says how long to wait before using them.
    pub(super) fn reserve(&mut self, units: f64, now: Instant) -> Duration {
        if !self.rate.is_finite() {
            return Duration::ZERO;
        }
        self.refill(now);
        self.tokens -= units;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.rate)
        }
    }

    /// Settles a reservation with what was really spent (positive: more than reserved).
    pub(super) fn settle(&mut self, extra: f64) {
        if self.rate.is_finite() {
            self.tokens -= extra;
        }
    }

    pub(super) fn set_rate(&mut self, rate: f64, now: Instant) {
        self.refill(now);
        // Slowing down takes effect at once: saved tokens would let the old pace run on.
        if rate < self.rate {
            self.tokens = self.tokens.min(0.0);
        }
        self.rate = rate;
    }
}

/// Seconds of rate a bucket may save up.
const BURST: f64 = 0.1;

/// A bucket shared by all workers, with a running estimate of what one request costs.
#[derive(Debug)]
pub(super) struct Pacer {
    pub(super) bucket: Mutex<Bucket>,
    /// Average units per request, in thousandths.
    average_milli: AtomicU64,
}

impl Pacer {
    pub(super) fn new(rate: f64) -> Self {
        Self { bucket: Mutex::new(Bucket::new(rate)), average_milli: AtomicU64::new(1000) }
    }

    pub(super) fn estimate(&self) -> f64 {
        self.average_milli.load(Relaxed) as f64 / 1000.0
    }

    /// Takes `units` and waits until they may be used; false, at once, if `stop` is cancelled
    /// meanwhile: a low rate must not hold Ctrl-C up.
    pub(super) async fn reserve(&self, units: f64, stop: &CancellationToken) -> bool {
        let wait = self.bucket.lock().map(|mut b| b.reserve(units, Instant::now())).unwrap_or_default();
        if wait.is_zero() {
            return !stop.is_cancelled();
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => true,
            () = stop.cancelled() => false,
        }
    }

    /// Settles a reservation with what a request spent: `None` when it did not ask DynamoDB, in
    /// which case it is taken to have cost the reservation and teaches nothing.
    pub(super) fn settle(&self, reserved: f64, spent: Option<f64>) {
        let Some(spent) = spent else { return };
        if let Ok(mut bucket) = self.bucket.lock() {
            bucket.settle(spent - reserved);
        }
        // Learn the cost only from requests that consumed capacity: a throttled request costs
        // nothing, and counting it would shrink the estimate and let more requests through
        // exactly when the table is pushing back. Exponentially weighted: recent ones count most.
        if spent > 0.0 {
            let average = self.estimate() * 0.9 + spent * 0.1;
            self.average_milli.store((average * 1000.0) as u64, Relaxed);
        }
    }

    pub(super) fn rate(&self) -> f64 {
        self.bucket.lock().map(|b| b.rate).unwrap_or(f64::INFINITY)
    }

    pub(super) fn set_rate(&self, rate: f64) {
        if let Ok(mut bucket) = self.bucket.lock() {
            bucket.set_rate(rate, Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_paces_to_its_rate_and_lets_debt_be_paid_by_waiting() {
        let start = Instant::now();
        let mut bucket = Bucket::new(100.0);
        bucket.refilled = start;
        let wait = bucket.reserve(50.0, start);
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "starts empty: {wait:?}");
        // After ten idle seconds only 100 ms of rate is saved: 10 units.
        let wait = bucket.reserve(60.0, start + Duration::from_secs(10));
        assert!((wait.as_secs_f64() - 0.5).abs() < 1e-6, "{wait:?}");
        // Slowing down drops what was saved.
        bucket.tokens = 10.0;
        bucket.set_rate(50.0, start + Duration::from_secs(10));
        assert!(bucket.tokens <= 0.0);
    }
    #[test]
    fn no_limit_never_waits() {
        let mut bucket = Bucket::new(f64::INFINITY);
        assert_eq!(bucket.reserve(1e9, Instant::now()), Duration::ZERO);
    }
    #[test]
    fn settling_charges_the_difference_and_learns_the_cost() {
        let pacer = Pacer::new(10.0);
        pacer.settle(1.0, Some(3.0));
        assert!((pacer.estimate() - 1.2).abs() < 1e-3);
        let tokens = pacer.bucket.lock().unwrap().tokens;
        assert!(tokens < -1.9, "charged the 2 units more than reserved: {tokens}");
        pacer.settle(1.2, Some(0.0));
        assert!((pacer.estimate() - 1.2).abs() < 1e-3, "a throttled request teaches nothing");
        pacer.settle(1.2, None);
        assert!((pacer.estimate() - 1.2).abs() < 1e-3, "an unmeasured request teaches nothing");
    }
}
