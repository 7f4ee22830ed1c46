//! Rate control: how fast a backfill may go.
//!
//! Three caps, each a token bucket: items per second (`--rate`), write capacity units per second
//! (`--max-wcu`) and read capacity units per second (`--max-rcu`). The capacity buckets are charged
//! with the `ConsumedCapacity` DynamoDB reports, so they count what the table really spends, not a
//! guess. A caller reserves what it expects to spend (a running average) and settles the
//! difference afterwards, so many concurrent writers do not all wake up at once and overshoot.
//!
//! Every scan page asks for its consumed capacity; writes ask on a sample (the first
//! [`MEASURE_FIRST`], then one in [`MEASURE_EVERY`]) and the others are charged the running
//! average. Asking costs the server real work per write (for a put it must size the old item too:
//! 20% of the throughput on DynamoDB Local, see docs/benchmarks.md), and one request in sixteen
//! keeps the average close: a backfill's items are written by one transform, so they cost alike.
//!
//! In adaptive mode the write rate also follows the table. Where it starts comes from
//! DescribeTable ([`TableCapacity`]): on a provisioned table at 90% of its write capacity, taken as
//! the capacity to settle under; on an on-demand table at its warm throughput (what it serves at
//! once) and doubling every quarter second from there until the table first throttles; when the
//! table says neither, the same doubling from 4,000 WCU/s, what AWS documents any on-demand table
//! serves at once. On throttling it drops to 90% of what was actually consumed over the last two seconds
//! (multiplicative decrease), never below a quarter of the best rate sustained; after each quiet
//! second it climbs by a fixed step (additive increase): quickly back to 95% of the rate at which
//! the table last throttled, then slowly. On a provisioned table it settles just under the capacity
//! instead of living on retries. It reads every throttle as "too fast"; where throttling does not
//! follow the load, use fixed mode and the caps.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::aws::RetryStats;

/// How the write rate is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateMode {
    /// Only the configured caps.
    Fixed,
    /// The caps, and below them back off on throttling and creep back up.
    #[default]
    Adaptive,
}

impl std::str::FromStr for RateMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fixed" => Ok(Self::Fixed),
            "adaptive" => Ok(Self::Adaptive),
            other => Err(format!("unknown rate mode {other:?}: use fixed or adaptive")),
        }
    }
}

/// A token bucket that may go into debt: a reservation larger than what is there is granted at once
/// and paid back by waiting. It saves at most 100 ms of rate: enough to smooth many concurrent
/// writers, too little to outrun the cap (a second of saved tokens kept a lowered rate from
/// biting for seconds).
#[derive(Debug)]
struct Bucket {
    /// Units per second; `f64::INFINITY` for no limit.
    rate: f64,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(rate: f64) -> Self {
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
    fn reserve(&mut self, units: f64, now: Instant) -> Duration {
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
    fn settle(&mut self, extra: f64) {
        if self.rate.is_finite() {
            self.tokens -= extra;
        }
    }

    fn set_rate(&mut self, rate: f64, now: Instant) {
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
struct Pacer {
    bucket: Mutex<Bucket>,
    /// Average units per request, in thousandths.
    average_milli: AtomicU64,
}

impl Pacer {
    fn new(rate: f64) -> Self {
        Self { bucket: Mutex::new(Bucket::new(rate)), average_milli: AtomicU64::new(1000) }
    }

    fn estimate(&self) -> f64 {
        self.average_milli.load(Relaxed) as f64 / 1000.0
    }

    async fn reserve(&self, units: f64) {
        let wait = self.bucket.lock().map(|mut b| b.reserve(units, Instant::now())).unwrap_or_default();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Settles a reservation with what a request spent: `None` when it did not ask DynamoDB, in
    /// which case it is taken to have cost the reservation and teaches nothing.
    fn settle(&self, reserved: f64, spent: Option<f64>) {
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

    fn rate(&self) -> f64 {
        self.bucket.lock().map(|b| b.rate).unwrap_or(f64::INFINITY)
    }

    fn set_rate(&self, rate: f64) {
        if let Ok(mut bucket) = self.bucket.lock() {
            bucket.set_rate(rate, Instant::now());
        }
    }
}

/// The caps a run asks for.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RateLimits {
    pub items_per_second: Option<f64>,
    pub write_units_per_second: Option<f64>,
    pub read_units_per_second: Option<f64>,
    pub mode: RateMode,
}

/// Writes that ask DynamoDB for their consumed capacity: the first ones, then one in this many.
pub const MEASURE_FIRST: u64 = 32;
pub const MEASURE_EVERY: u64 = 16;

/// What DescribeTable says about a table's write capacity, for where the adaptive rate starts.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TableCapacity {
    /// A provisioned table's `WriteCapacityUnits`.
    pub provisioned: Option<f64>,
    /// An on-demand table's warm throughput (`WarmThroughput.WriteUnitsPerSecond`): what it serves
    /// at once, without scaling.
    pub warm: Option<f64>,
    /// An on-demand table's `MaxWriteRequestUnits`: DynamoDB throttles everything beyond it.
    pub max: Option<f64>,
}

/// Where the adaptive write rate starts.
#[derive(Debug, Clone, Copy, PartialEq)]
struct AdaptiveStart {
    rate: f64,
    /// The capacity the rate settles under, when the table states it.
    capacity: Option<f64>,
    /// Double the rate until the table first throttles.
    slow_start: bool,
}

/// A provisioned table starts at this share of its capacity: close enough to need no search, far
/// enough below that the application's own traffic rarely meets throttling.
const PROVISIONED_START: f64 = 0.9;

fn adaptive_start(ceiling: f64, table: &TableCapacity) -> AdaptiveStart {
    match (table.provisioned, table.warm) {
        (Some(capacity), _) => AdaptiveStart {
            rate: (capacity * PROVISIONED_START).min(ceiling),
            capacity: Some(capacity),
            slow_start: false,
        },
        (None, warm) => {
            let rate = warm.unwrap_or(UNSTATED_START_RATE).min(ceiling);
            AdaptiveStart { rate, capacity: None, slow_start: rate < ceiling }
        }
    }
}

/// The highest write rate allowed: `--max-wcu`, and an on-demand table's maximum.
fn write_ceiling(limits: &RateLimits, table: &TableCapacity) -> f64 {
    limits.write_units_per_second.unwrap_or(f64::INFINITY).min(table.max.unwrap_or(f64::INFINITY))
}

/// For the log: where the adaptive rate starts, and why.
pub fn describe_start(limits: &RateLimits, table: &TableCapacity) -> String {
    let ceiling = write_ceiling(limits, table);
    let start = adaptive_start(ceiling, table);
    let why = match (table.provisioned, table.warm) {
        _ if start.rate >= ceiling => "the cap".to_string(),
        (Some(capacity), _) => format!(
            "{:.0}% of the table's provisioned {capacity:.0} WCU/s; DynamoDB Local records provisioned \
             capacity without enforcing it, use --rate-mode fixed there",
            PROVISIONED_START * 100.0
        ),
        (None, Some(warm)) => format!("the table's warm throughput, {warm:.0} WCU/s, doubling until it throttles"),
        (None, None) => "no capacity stated by the table: as a new on-demand table, doubling until it throttles".into(),
    };
    format!("adaptive write rate starts at {:.0} WCU/s ({why})", start.rate)
}

/// A reservation of write capacity, to settle with what the write consumed.
#[must_use]
pub struct WriteTicket {
    reserved: f64,
    measured: bool,
}

impl WriteTicket {
    pub fn reserved(&self) -> f64 {
        self.reserved
    }

    /// What the write should ask for: TOTAL if it is one of the sampled writes, else nothing (the
    /// field left out, which is NONE, in fewer bytes to send and sign).
    pub fn return_consumed_capacity(&self) -> Option<ReturnConsumedCapacity> {
        self.measured.then_some(ReturnConsumedCapacity::Total)
    }
}

/// Rate control for one backfill.
pub struct RateControl {
    items: Option<Pacer>,
    writes: Pacer,
    reads: Option<Pacer>,
    /// Write units consumed, in thousandths: what the adaptive controller measures.
    pub write_milliunits: AtomicU64,
    pub read_milliunits: AtomicU64,
    /// Writes reserved so far: which ones ask for their consumed capacity.
    writes_sent: AtomicU64,
    /// Throttled requests the engine saw after the SDK's retries (the SDK's own are in RetryStats).
    pub throttled: AtomicU64,
    backing_off: std::sync::atomic::AtomicBool,
    ceiling: f64,
    start: AdaptiveStart,
}

impl RateControl {
    /// `adaptive` says whether a [`Controller`] will steer the write rate, starting where `table`
    /// suggests (see [`TableCapacity`]). An on-demand table's maximum caps the rate either way.
    pub fn new(limits: &RateLimits, adaptive: bool, table: &TableCapacity) -> Self {
        let ceiling = write_ceiling(limits, table);
        let start = adaptive_start(ceiling, table);
        Self {
            items: limits.items_per_second.map(Pacer::new),
            writes: Pacer::new(if adaptive { start.rate } else { ceiling }),
            reads: limits.read_units_per_second.map(Pacer::new),
            write_milliunits: AtomicU64::new(0),
            read_milliunits: AtomicU64::new(0),
            writes_sent: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            backing_off: std::sync::atomic::AtomicBool::new(false),
            ceiling,
            start,
        }
    }

    /// Waits until one more item may be processed.
    pub async fn item(&self) {
        if let Some(items) = &self.items {
            items.reserve(1.0).await;
        }
    }

    /// Waits until a write of the usual cost may be sent; settle it with [`Self::wrote`].
    pub async fn write(&self) -> WriteTicket {
        let reserved = self.writes.estimate();
        self.writes.reserve(reserved).await;
        let n = self.writes_sent.fetch_add(1, Relaxed);
        WriteTicket { reserved, measured: n < MEASURE_FIRST || n.is_multiple_of(MEASURE_EVERY) }
    }

    /// Settles a write with the capacity DynamoDB says it consumed; `None` if the write did not ask
    /// (it is charged the running average) or the answer carried no figure.
    pub fn wrote(&self, ticket: WriteTicket, consumed_units: Option<f64>) {
        let consumed_units = consumed_units.filter(|_| ticket.measured);
        self.writes.settle(ticket.reserved, consumed_units);
        let spent = consumed_units.unwrap_or(ticket.reserved);
        self.write_milliunits.fetch_add((spent * 1000.0) as u64, Relaxed);
    }

    /// Waits until a scan page of the usual cost may be read.
    pub async fn read(&self) -> f64 {
        match &self.reads {
            Some(reads) => {
                let reserved = reads.estimate();
                reads.reserve(reserved).await;
                reserved
            }
            None => 0.0,
        }
    }

    pub fn was_read(&self, reserved: f64, consumed_units: f64) {
        if let Some(reads) = &self.reads {
            reads.settle(reserved, Some(consumed_units));
        }
        self.read_milliunits.fetch_add((consumed_units * 1000.0) as u64, Relaxed);
    }

    /// The current write cap in units per second (infinite when there is none).
    pub fn write_rate(&self) -> f64 {
        self.writes.rate()
    }

    pub fn is_backing_off(&self) -> bool {
        self.backing_off.load(Relaxed)
    }

    /// For the progress line: "limit 95 WCU/s, backing off".
    pub fn describe(&self) -> Option<String> {
        let rate = self.write_rate();
        let mut parts = Vec::new();
        if rate.is_finite() {
            let state = if self.is_backing_off() { ", backing off" } else { "" };
            parts.push(format!("limit {rate:.0} WCU/s{state}"));
        }
        if let Some(items) = &self.items {
            parts.push(format!("limit {:.0} items/s", items.rate()));
        }
        (!parts.is_empty()).then(|| parts.join(", "))
    }
}

/// Whether the run is using its write limit: consuming at least half of it. Only then does the
/// limit grow (as TCP grows a window only while it is used).
fn in_use(consumed: f64, limit: f64) -> bool {
    consumed >= limit * 0.5
}

/// The adaptive controller: watches throttling and the consumed write capacity, sets the write rate.
pub struct Controller {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

const TICK: Duration = Duration::from_millis(250);
/// Where the rate starts, in write units per second, on a table that states no capacity: a new
/// on-demand table serves 4,000 at once (AWS's documented warm throughput), and every on-demand
/// table at least that. (DynamoDB itself states it; DynamoDB Local and other emulators do not.)
const UNSTATED_START_RATE: f64 = 4000.0;
/// How often the rate doubles until the table first throttles.
const SLOW_START_DOUBLING: Duration = Duration::from_millis(250);
const MEASURE_OVER: Duration = Duration::from_secs(2);
const DECREASE: f64 = 0.9;
/// The adaptive rate never falls below this share of the best rate sustained.
const FLOOR: f64 = 0.25;
/// After a decrease, wait this long before climbing again.
const HOLD: Duration = Duration::from_secs(1);

impl Controller {
    pub fn spawn(rate: Arc<RateControl>, retries: Arc<RetryStats>) -> Self {
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            let mut samples: VecDeque<(Instant, u64)> = VecDeque::new();
            let throttles = || retries.throttled() + rate.throttled.load(Relaxed);
            let mut seen_throttles = throttles();
            let mut last_change = Instant::now();
            let mut slow_start = rate.start.slow_start;
            // What the table sustained when it last pushed back (or its provisioned capacity, until
            // it does): its capacity, as far as we know.
            let mut capacity: Option<f64> = rate.start.capacity;
            // The best rate sustained so far: backing off below a quarter of it cannot be what the
            // table needs (throttling that does not follow our rate, e.g. a flaky service, would
            // otherwise drive the rate to nothing).
            let mut best = 0.0_f64;
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    () = tokio::time::sleep(TICK) => {}
                }
                let now = Instant::now();
                samples.push_back((now, rate.write_milliunits.load(Relaxed)));
                while samples.front().is_some_and(|(t, _)| now.duration_since(*t) > MEASURE_OVER) {
                    samples.pop_front();
                }
                let consumed = match (samples.front(), samples.back()) {
                    (Some((t0, u0)), Some((t1, u1))) if t1 > t0 => {
                        (u1 - u0) as f64 / 1000.0 / t1.duration_since(*t0).as_secs_f64()
                    }
                    _ => 0.0,
                };
                if samples.len() > 4 {
                    best = best.max(consumed);
                }
                let current = throttles();
                let since_change = now.duration_since(last_change);
                if current > seen_throttles {
                    seen_throttles = current;
                    if since_change >= HOLD / 2 && consumed > 0.0 {
                        capacity = Some(capacity.map_or(consumed, |c| c * 0.5 + consumed * 0.5));
                        let new_rate = (consumed * DECREASE).max(best * FLOOR).min(rate.ceiling).max(1.0);
                        rate.writes.set_rate(new_rate);
                        slow_start = false;
                        rate.backing_off.store(true, Relaxed);
                        last_change = now;
                        tracing::debug!("throttled at {consumed:.1} WCU/s: write rate down to {new_rate:.1}");
                    }
                } else if !in_use(consumed, rate.write_rate()) {
                    // A limit the run does not reach says nothing about the table: raising it
                    // would only let it climb without bound (and a later burst through it).
                } else if slow_start && since_change >= SLOW_START_DOUBLING {
                    let new_rate = (rate.write_rate() * 2.0).min(rate.ceiling);
                    rate.writes.set_rate(new_rate);
                    slow_start = new_rate < rate.ceiling;
                    last_change = now;
                } else if let Some(capacity) = capacity.filter(|_| since_change >= HOLD) {
                    // Additive increase: quickly back to 95% of the known capacity, then a slow
                    // creep, so the rate spends its time just under what the table sustains.
                    let step = if rate.write_rate() < capacity * 0.95 { 0.02 } else { 0.0025 };
                    let new_rate = (rate.write_rate() + capacity * step).min(rate.ceiling);
                    rate.writes.set_rate(new_rate);
                    rate.backing_off.store(false, Relaxed);
                    last_change = now;
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
    fn the_adaptive_rate_starts_where_the_table_says() {
        let provisioned = TableCapacity { provisioned: Some(500.0), ..Default::default() };
        let start = adaptive_start(f64::INFINITY, &provisioned);
        assert_eq!(start, AdaptiveStart { rate: 450.0, capacity: Some(500.0), slow_start: false });
        assert_eq!(adaptive_start(300.0, &provisioned).rate, 300.0, "a cap below wins");

        let warm = TableCapacity { warm: Some(4000.0), ..Default::default() };
        assert_eq!(
            adaptive_start(f64::INFINITY, &warm),
            AdaptiveStart { rate: 4000.0, capacity: None, slow_start: true }
        );

        let unknown = adaptive_start(f64::INFINITY, &TableCapacity::default());
        assert_eq!(unknown, AdaptiveStart { rate: UNSTATED_START_RATE, capacity: None, slow_start: true });
        assert!(!adaptive_start(50.0, &TableCapacity::default()).slow_start, "already at the cap");
        assert_eq!(adaptive_start(50.0, &TableCapacity::default()).rate, 50.0);

        let capped = RateControl::new(&RateLimits::default(), true, &TableCapacity { max: Some(70.0), ..warm });
        assert_eq!(capped.write_rate(), 70.0, "an on-demand maximum caps the rate");
    }

    #[test]
    fn a_limit_grows_only_while_it_is_used() {
        assert!(in_use(2_500.0, 4_000.0));
        assert!(!in_use(1_000.0, 4_000.0), "a server that manages 1,000 WCU/s keeps a 4,000 limit as it is");
        assert!(!in_use(0.0, 100.0));
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

    #[tokio::test]
    async fn a_sample_of_writes_is_measured_and_the_rest_charged_the_average() {
        let control = RateControl::new(&RateLimits::default(), false, &TableCapacity::default());
        let mut measured = 0;
        for _ in 0..MEASURE_FIRST + 10 * MEASURE_EVERY {
            let ticket = control.write().await;
            let asks = ticket.return_consumed_capacity() == Some(ReturnConsumedCapacity::Total);
            measured += u64::from(asks);
            // Each write costs 2 units; only the measured ones say so.
            control.wrote(ticket, asks.then_some(2.0));
        }
        assert_eq!(measured, MEASURE_FIRST + 10);
        assert!(
            (control.writes.estimate() - 2.0).abs() < 0.1,
            "learned from the sample: {}",
            control.writes.estimate()
        );
        // The unmeasured ones were charged the average as it was learned: close to 2 units each.
        let total = control.write_milliunits.load(Relaxed) as f64 / 1000.0;
        let expected = 2.0 * (MEASURE_FIRST + 10 * MEASURE_EVERY) as f64;
        assert!((total - expected).abs() / expected < 0.05, "{total} vs {expected}");
    }
}

#[cfg(test)]
mod pacing {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sixteen_workers_hold_the_rate() {
        let control = Arc::new(RateControl::new(
            &RateLimits { write_units_per_second: Some(225.0), ..Default::default() },
            false,
            &TableCapacity::default(),
        ));
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (control, done) = (control.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while start.elapsed() < Duration::from_secs(3) {
                    let ticket = control.write().await;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    control.wrote(ticket, Some(1.0));
                    done.fetch_add(1, Relaxed);
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        let per_second = done.load(Relaxed) as f64 / start.elapsed().as_secs_f64();
        eprintln!("{per_second:.1}/s");
        assert!(per_second < 240.0, "{per_second}");
    }
}
