//! The adaptive write-rate policy, as a pure state machine: where the rate starts, and on each tick
//! (the write units consumed so far, the throttles seen so far, the current limit) whether to
//! change the limit. Slow start until the table first throttles, then AIMD. No clock, no I/O:
//! the [controller](super::controller) feeds it and applies what it says.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::TableCapacity;

/// Where the rate starts, in write units per second, on a table that states no capacity: a new
/// on-demand table serves 4,000 at once (AWS's documented warm throughput), and every on-demand
/// table at least that. (DynamoDB itself states it; DynamoDB Local and other emulators do not.)
pub(super) const UNSTATED_START_RATE: f64 = 4000.0;
/// A provisioned table starts at this share of its capacity: close enough to need no search, far
/// enough below that the application's own traffic rarely meets throttling.
pub(super) const PROVISIONED_START: f64 = 0.9;
/// How often the rate doubles until the table first throttles.
const SLOW_START_DOUBLING: Duration = Duration::from_millis(250);
/// Consumption is measured over this window.
const MEASURE_OVER: Duration = Duration::from_secs(2);
/// On throttling, the rate drops to this share of what was consumed.
const DECREASE: f64 = 0.9;
/// The adaptive rate never falls below this share of the best rate sustained.
const FLOOR: f64 = 0.25;
/// After a decrease, wait this long before climbing again.
const HOLD: Duration = Duration::from_secs(1);

/// Where the adaptive write rate starts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct AdaptiveStart {
    pub rate: f64,
    /// The capacity the rate settles under, when the table states it.
    pub capacity: Option<f64>,
    /// Double the rate until the table first throttles.
    pub slow_start: bool,
}

pub(super) fn adaptive_start(ceiling: f64, table: &TableCapacity) -> AdaptiveStart {
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

/// Whether the run is using its write limit: consuming at least half of it. Only then does the
/// limit grow (as TCP grows a window only while it is used).
fn in_use(consumed: f64, limit: f64) -> bool {
    consumed >= limit * 0.5
}

/// What the controller sees at a tick: running totals, and the limit in force.
#[derive(Debug, Clone, Copy)]
pub(super) struct Tick {
    pub now: Instant,
    /// Write units consumed since the backfill started.
    pub units: f64,
    /// Throttled requests since the backfill started.
    pub throttles: u64,
    /// The write limit now, units per second.
    pub limit: f64,
}

/// A new limit, and whether the run is now backing off (None: as it was).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Adjustment {
    pub limit: f64,
    pub backing_off: Option<bool>,
}

/// The policy's memory between ticks.
#[derive(Debug)]
pub(super) struct Policy {
    ceiling: f64,
    samples: VecDeque<(Instant, f64)>,
    seen_throttles: u64,
    last_change: Instant,
    slow_start: bool,
    /// What the table sustained when it last pushed back (or its provisioned capacity, until it
    /// does): its capacity, as far as we know.
    capacity: Option<f64>,
    /// The best rate sustained so far: backing off below a quarter of it cannot be what the table
    /// needs (throttling that does not follow our rate, e.g. a flaky service, would otherwise
    /// drive the rate to nothing).
    best: f64,
}

impl Policy {
    pub fn new(start: AdaptiveStart, ceiling: f64, now: Instant, throttles: u64) -> Self {
        Self {
            ceiling,
            samples: VecDeque::new(),
            seen_throttles: throttles,
            last_change: now,
            slow_start: start.slow_start,
            capacity: start.capacity,
            best: 0.0,
        }
    }

    /// Units per second consumed over the last [`MEASURE_OVER`].
    fn consumed(&mut self, now: Instant, units: f64) -> f64 {
        self.samples.push_back((now, units));
        while self.samples.front().is_some_and(|(t, _)| now.duration_since(*t) > MEASURE_OVER) {
            self.samples.pop_front();
        }
        let consumed = match (self.samples.front(), self.samples.back()) {
            (Some((t0, u0)), Some((t1, u1))) if t1 > t0 => (u1 - u0) / t1.duration_since(*t0).as_secs_f64(),
            _ => 0.0,
        };
        if self.samples.len() > 4 {
            self.best = self.best.max(consumed);
        }
        consumed
    }

    pub fn tick(&mut self, tick: Tick) -> Option<Adjustment> {
        let consumed = self.consumed(tick.now, tick.units);
        let since_change = tick.now.duration_since(self.last_change);
        let adjustment = if tick.throttles > self.seen_throttles {
            self.seen_throttles = tick.throttles;
            (since_change >= HOLD / 2 && consumed > 0.0).then(|| self.decrease(consumed))
        } else if !in_use(consumed, tick.limit) {
            // A limit the run does not reach says nothing about the table: raising it would only
            // let it climb without bound (and a later burst through it).
            None
        } else if self.slow_start && since_change >= SLOW_START_DOUBLING {
            let limit = (tick.limit * 2.0).min(self.ceiling);
            self.slow_start = limit < self.ceiling;
            Some(Adjustment { limit, backing_off: None })
        } else {
            self.capacity.filter(|_| since_change >= HOLD).map(|capacity| {
                // Additive increase: quickly back to 95% of the known capacity, then a slow creep,
                // so the rate spends its time just under what the table sustains.
                let step = if tick.limit < capacity * 0.95 { 0.02 } else { 0.0025 };
                Adjustment { limit: (tick.limit + capacity * step).min(self.ceiling), backing_off: Some(false) }
            })
        };
        if adjustment.is_some() {
            self.last_change = tick.now;
        }
        adjustment
    }

    /// Multiplicative decrease: to 90% of what was consumed, never below the floor.
    fn decrease(&mut self, consumed: f64) -> Adjustment {
        self.capacity = Some(self.capacity.map_or(consumed, |c| c * 0.5 + consumed * 0.5));
        self.slow_start = false;
        let limit = (consumed * DECREASE).max(self.best * FLOOR).min(self.ceiling).max(1.0);
        tracing::debug!("throttled at {consumed:.1} WCU/s: write rate down to {limit:.1}");
        Adjustment { limit, backing_off: Some(true) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn a_limit_grows_only_while_it_is_used() {
        assert!(in_use(2_500.0, 4_000.0));
        assert!(!in_use(1_000.0, 4_000.0), "a server that manages 1,000 WCU/s keeps a 4,000 limit as it is");
        assert!(!in_use(0.0, 100.0));
    }

    /// Drives a policy tick by tick (250 ms apart) with a run that consumes what the limit allows,
    /// up to what the "table" sustains, and throttles beyond it.
    struct Run {
        policy: Policy,
        start: Instant,
        ticks: u32,
        units: f64,
        throttles: u64,
        limit: f64,
        backing_off: bool,
    }

    impl Run {
        fn new(start: AdaptiveStart, ceiling: f64) -> Self {
            let now = Instant::now();
            let policy = Policy::new(start, ceiling, now, 0);
            Self { policy, start: now, ticks: 0, units: 0.0, throttles: 0, limit: start.rate, backing_off: false }
        }

        /// One tick of a run that could go at `table` units per second.
        fn tick(&mut self, table: f64) -> Option<Adjustment> {
            self.ticks += 1;
            self.units += self.limit.min(table) * 0.25;
            if self.limit > table {
                self.throttles += 1;
            }
            let now = self.start + Duration::from_millis(250 * u64::from(self.ticks));
            let adjustment =
                self.policy.tick(Tick { now, units: self.units, throttles: self.throttles, limit: self.limit });
            if let Some(a) = adjustment {
                self.limit = a.limit;
                self.backing_off = a.backing_off.unwrap_or(self.backing_off);
            }
            adjustment
        }
    }

    #[test]
    fn slow_start_doubles_while_the_limit_is_used_and_stops_at_the_ceiling() {
        let mut run = Run::new(AdaptiveStart { rate: 100.0, capacity: None, slow_start: true }, 1_000.0);
        let limits: Vec<f64> = (0..6).filter_map(|_| run.tick(f64::INFINITY)).map(|a| a.limit).collect();
        assert_eq!(limits, [200.0, 400.0, 800.0, 1_000.0]);
        assert!(run.tick(f64::INFINITY).is_none(), "no growth without a capacity to creep to");
    }

    #[test]
    fn throttling_cuts_to_ninety_percent_of_what_was_consumed_then_it_climbs_back_just_under_it() {
        let mut run = Run::new(AdaptiveStart { rate: 4_000.0, capacity: None, slow_start: true }, f64::INFINITY);
        let first = (0..4).find_map(|_| run.tick(1_000.0));
        assert_eq!(first, Some(Adjustment { limit: 900.0, backing_off: Some(true) }), "90% of the 1,000 consumed");
        assert!(run.backing_off);
        // A long quiet stretch below capacity: additive increase, never past the ceiling.
        for _ in 0..200 {
            run.tick(1_000.0);
        }
        assert!((800.0..=1_060.0).contains(&run.limit), "stays around what the table sustains: {}", run.limit);
    }

    #[test]
    fn throttling_that_does_not_follow_the_rate_cannot_drive_it_below_a_quarter_of_the_best() {
        let mut run = Run::new(AdaptiveStart { rate: 1_000.0, capacity: Some(1_000.0), slow_start: false }, 2_000.0);
        for _ in 0..12 {
            run.tick(f64::INFINITY);
        }
        let best = run.limit;
        for _ in 0..100 {
            // Every tick throttled, whatever the rate: a flaky service, not a full table.
            run.throttles += 1;
            run.tick(f64::INFINITY);
        }
        assert!(run.limit >= best * 0.25 * 0.9, "{} vs best {best}", run.limit);
    }

    #[test]
    fn an_unused_limit_never_grows() {
        let mut run = Run::new(AdaptiveStart { rate: 4_000.0, capacity: None, slow_start: true }, f64::INFINITY);
        for _ in 0..20 {
            // The run manages 1,000 units/s whatever its limit: a slow server, no throttling.
            run.ticks += 1;
            run.units += 250.0;
            let now = run.start + Duration::from_millis(250 * u64::from(run.ticks));
            let tick = Tick { now, units: run.units, throttles: 0, limit: run.limit };
            assert_eq!(run.policy.tick(tick), None);
        }
    }
}
