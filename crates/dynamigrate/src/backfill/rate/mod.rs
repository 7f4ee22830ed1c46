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

mod bucket;
mod controller;
mod policy;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use aws_sdk_dynamodb::types::ReturnConsumedCapacity;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use bucket::Pacer;
pub use controller::Controller;
use policy::{adaptive_start, AdaptiveStart, PROVISIONED_START};

/// How the write rate is decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
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
    /// The run's stop: pacing waits end when it is cancelled.
    stop: CancellationToken,
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
    backing_off: AtomicBool,
    ceiling: f64,
    start: AdaptiveStart,
}

impl RateControl {
    /// `adaptive` says whether a [`Controller`] will steer the write rate, starting where `table`
    /// suggests (see [`TableCapacity`]). An on-demand table's maximum caps the rate either way.
    /// Waits end early once `stop` is cancelled.
    pub fn new(limits: &RateLimits, adaptive: bool, table: &TableCapacity, stop: CancellationToken) -> Self {
        let ceiling = write_ceiling(limits, table);
        let start = adaptive_start(ceiling, table);
        Self {
            stop,
            items: limits.items_per_second.map(Pacer::new),
            writes: Pacer::new(if adaptive { start.rate } else { ceiling }),
            reads: limits.read_units_per_second.map(Pacer::new),
            write_milliunits: AtomicU64::new(0),
            read_milliunits: AtomicU64::new(0),
            writes_sent: AtomicU64::new(0),
            throttled: AtomicU64::new(0),
            backing_off: AtomicBool::new(false),
            ceiling,
            start,
        }
    }

    /// Waits until one more item may be processed.
    /// False when the run is stopping instead.
    pub async fn item(&self) -> bool {
        match &self.items {
            Some(items) => items.reserve(1.0, &self.stop).await,
            None => !self.stop.is_cancelled(),
        }
    }

    /// Waits until a write of the usual cost may be sent; settle it with [`Self::wrote`]. None
    /// when the run is stopping instead.
    pub async fn write(&self) -> Option<WriteTicket> {
        let reserved = self.writes.estimate();
        if !self.writes.reserve(reserved, &self.stop).await {
            return None;
        }
        let n = self.writes_sent.fetch_add(1, Relaxed);
        Some(WriteTicket { reserved, measured: n < MEASURE_FIRST || n.is_multiple_of(MEASURE_EVERY) })
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
    /// None when the run is stopping instead.
    pub async fn read(&self) -> Option<f64> {
        match &self.reads {
            Some(reads) => {
                let reserved = reads.estimate();
                reads.reserve(reserved, &self.stop).await.then_some(reserved)
            }
            None => (!self.stop.is_cancelled()).then_some(0.0),
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

    /// The write requests per second the limits allow now, each carrying `items_per_request`
    /// items (infinite when nothing limits them): what the in-flight window sizes itself by.
    pub fn requests_per_second(&self, items_per_request: f64) -> f64 {
        let by_units = self.write_rate() / self.writes.estimate().max(1e-3);
        let by_items = self.items.as_ref().map_or(f64::INFINITY, |items| items.rate() / items_per_request.max(1.0));
        by_units.min(by_items)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_on_demand_maximum_caps_the_rate() {
        let warm = TableCapacity { warm: Some(4000.0), max: Some(70.0), ..Default::default() };
        let capped = RateControl::new(&RateLimits::default(), true, &warm, CancellationToken::new());
        assert_eq!(capped.write_rate(), 70.0, "an on-demand maximum caps the rate");
    }

    #[tokio::test]
    async fn a_sample_of_writes_is_measured_and_the_rest_charged_the_average() {
        let control =
            RateControl::new(&RateLimits::default(), false, &TableCapacity::default(), CancellationToken::new());
        let mut measured = 0;
        for _ in 0..MEASURE_FIRST + 10 * MEASURE_EVERY {
            let ticket = control.write().await.unwrap();
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
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sixteen_workers_hold_the_rate() {
        let control = Arc::new(RateControl::new(
            &RateLimits { write_units_per_second: Some(225.0), ..Default::default() },
            false,
            &TableCapacity::default(),
            CancellationToken::new(),
        ));
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..16 {
            let (control, done) = (control.clone(), done.clone());
            tasks.push(tokio::spawn(async move {
                while start.elapsed() < Duration::from_secs(3) {
                    let ticket = control.write().await.unwrap();
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

    #[tokio::test]
    async fn a_stop_ends_a_pacing_wait_at_once() {
        let stop = CancellationToken::new();
        let slow = RateLimits { items_per_second: Some(0.1), ..Default::default() };
        let control = RateControl::new(&slow, false, &TableCapacity::default(), stop.clone());
        let started = Instant::now();
        let waiting = tokio::spawn(async move { control.item().await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop.cancel();
        assert!(!waiting.await.unwrap(), "a stopped wait says so");
        assert!(started.elapsed() < Duration::from_secs(1), "not the 10 s the rate asked for");
    }
}
