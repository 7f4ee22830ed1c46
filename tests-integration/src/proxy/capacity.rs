//! Capacity mode: per-table token buckets in capacity units, charged with what the real server
//! says each request consumed, as DynamoDB charges provisioned capacity.

use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use serde_json::Value;

use super::{Kind, State};

/// Provisioned throughput, per table.
#[derive(Debug, Clone, Copy)]
pub struct Capacity {
    pub write_units_per_second: f64,
    pub read_units_per_second: f64,
    /// Unused capacity kept for bursts, in seconds of capacity (DynamoDB keeps up to 300 s);
    /// 0 keeps none beyond one unit.
    pub burst_seconds: f64,
}

impl Capacity {
    pub fn new(write_units_per_second: f64, read_units_per_second: f64) -> Self {
        Self { write_units_per_second, read_units_per_second, burst_seconds: 300.0 }
    }
}

/// A token bucket in capacity units. Admits while it holds any tokens, and is charged afterwards
/// with what the request consumed, as DynamoDB does; it may go negative, which throttles until
/// refilled. It starts empty: burst capacity is what went unused, and a new table has used nothing.
#[derive(Debug)]
struct Bucket {
    rate: f64,
    max: f64,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn new(rate: f64, burst_seconds: f64) -> Self {
        Self { rate, max: (rate * burst_seconds).max(1.0), tokens: 0.0, refilled: Instant::now() }
    }

    fn refill(&mut self) {
        let now = Instant::now();
        self.tokens = (self.tokens + self.rate * now.duration_since(self.refilled).as_secs_f64()).min(self.max);
        self.refilled = now;
    }

    fn admit(&mut self) -> bool {
        self.refill();
        self.tokens > 0.0
    }

    fn charge(&mut self, units: f64) {
        self.tokens -= units;
    }
}

#[derive(Debug)]
pub(super) struct TableBuckets {
    write: Bucket,
    read: Bucket,
}

pub(super) fn admit(state: &State, capacity: Capacity, table: &str, kind: &Kind) -> bool {
    let Ok(mut buckets) = state.buckets.lock() else { return true };
    let buckets = buckets.entry(table.to_string()).or_insert_with(|| TableBuckets {
        write: Bucket::new(capacity.write_units_per_second, capacity.burst_seconds),
        read: Bucket::new(capacity.read_units_per_second, capacity.burst_seconds),
    });
    match kind {
        Kind::Write => buckets.write.admit(),
        Kind::Read => buckets.read.admit(),
        Kind::Control => true,
    }
}

/// Charges what the server reports in `ConsumedCapacity` (an object, or a list for batches).
pub(super) fn charge(state: &State, table: &str, kind: &Kind, answer: &Value) {
    let units: f64 = match answer.get("ConsumedCapacity") {
        Some(Value::Array(list)) => list.iter().filter_map(|c| c["CapacityUnits"].as_f64()).sum(),
        Some(object) => object["CapacityUnits"].as_f64().unwrap_or(0.0),
        None => 0.0,
    };
    let milli = (units * 1000.0) as u64;
    let Ok(mut buckets) = state.buckets.lock() else { return };
    let Some(buckets) = buckets.get_mut(table) else { return };
    match kind {
        Kind::Write => {
            buckets.write.charge(units);
            state.stats.write_milliunits.fetch_add(milli, Relaxed);
        }
        Kind::Read => {
            buckets.read.charge(units);
            state.stats.read_milliunits.fetch_add(milli, Relaxed);
        }
        Kind::Control => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_bucket_admits_while_it_holds_tokens_and_refills_at_its_rate() {
        let mut bucket = Bucket::new(100.0, 300.0);
        assert_eq!(bucket.tokens, 0.0, "starts empty: no unused capacity yet");
        bucket.refilled -= Duration::from_millis(500);
        assert!(bucket.admit());
        assert!((bucket.tokens - 50.0).abs() < 1.0, "{}", bucket.tokens);
        bucket.charge(60.0);
        assert!(!bucket.admit(), "in debt after overspending");
        bucket.refilled -= Duration::from_secs(1000);
        bucket.refill();
        assert_eq!(bucket.tokens, 30_000.0, "at most 300 s of unused capacity is kept");
    }
}
