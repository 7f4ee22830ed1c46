//! How wide the in-flight window should be, as a pure state machine: fed what the writes saw over
//! an interval (answers, their round trips, throttles, errors, whether writers waited for a slot)
//! and the request rate the limiter allows, it says when to widen or narrow. No clock, no I/O: the
//! [steering task](super::steer) feeds it and applies what it says.
//!
//! The reasoning is Little's law: requests in flight = rate × round trip. A window that is too
//! narrow caps a run at window ÷ round trip, whatever the table could take (16 writes at 100 ms is
//! 160 items/s); one that is too wide only adds queueing (the round trip grows, the rate does not)
//! and memory. So the window doubles, then grows by half, while that raises the throughput at all,
//! nothing throttles and the round trip stays near the fastest seen; it goes back when a widening
//! brought nothing, narrows on throttling, errors and rising latency, and never exceeds what the rate
//! limiter lets through at the round trip measured (more would only wait for the limiter).

use std::time::Duration;

/// Where an adaptive window starts: what served well on every round trip measured, before there
/// is a measurement.
pub const START: usize = 16;
/// The narrowest an adaptive window gets.
pub const MIN: usize = 4;
/// The widest any window gets, pinned or not: at a 100 ms round trip 1,024 writes in flight carry
/// 10,000 requests a second, more than a single client process drives anyway. Memory lowers it for
/// large items (see [`super::memory_bound`]).
pub const MAX: usize = 1024;

/// A widening is kept if it raised the throughput above this factor of what it was: by any
/// margin, because the two mistakes cost unlike amounts. Keeping a widening that brought nothing
/// costs memory, within the bound, and some queueing, within [`LATENCY_TOLERANCE`]. Undoing one
/// that helped costs throughput until a later probe happens to win. On DynamoDB Local one 500 ms
/// interval moves by a fifth, more than the few percent a step near the top of the curve brings,
/// so a margin mostly undid real gains: at 10% a run at 100 ms settled at 128 and ran at 0.8x of
/// the same run pinned at 512. Modelled on a noisy server (`a_noisy_server_does_not_hold_the_window_down`
/// in the tests), a 5% margin cost 1-3% of a run's throughput against none and gained nothing.
const GAIN: f64 = 1.0;
/// Each widening multiplies the window by this; by [`SLOW_START_GROWTH`] until the first widening
/// that brought nothing or the first push-back (as TCP's slow start), so a long round trip is
/// reached in a few steps (16 to 256 in four).
const GROWTH: f64 = 1.5;
const SLOW_START_GROWTH: f64 = 2.0;
/// Throttling, errors and rising latency multiply it by this.
const NARROW: f64 = 0.75;
/// The round trip may grow to this multiple of the fastest one seen before the window narrows:
/// beyond it requests mostly queue somewhere (the client, the network, the server) rather than
/// run. Below it, whether a wider window helps is for the throughput to say (see [`GAIN`]): DynamoDB
/// Local on two shared cores still served more at 4× its unloaded round trip (a 100 ms run held
/// at 3× ran at 0.8× of the same run pinned at 512), and DynamoDB itself throttles rather than slows.
const LATENCY_TOLERANCE: f64 = 5.0;
/// The fastest round trip seen is forgotten slowly (this factor a decision), so a route that
/// became slower for good does not read as queueing forever.
const BASE_DRIFT: f64 = 1.02;
/// The window never exceeds the limiter's rate × round trip × this: enough to reach the rate
/// despite the round trip's spread, not so much that requests only wait for the limiter.
const LITTLE_HEADROOM: f64 = 1.5;
/// A decision waits for at least this long, and for four round trips, so that it sees the window
/// it last set at work rather than the change itself, over enough answers to tell a gain from noise.
const SETTLE: Duration = Duration::from_millis(500);
const SETTLE_ROUND_TRIPS: u32 = 4;
/// After a widening brought nothing, hold this long before trying again. Short, because a probe
/// costs only a moment of a wider window, and because one interval's verdict is weak evidence: on
/// DynamoDB Local at +0 ms the throughput moves by a fifth from one half-second to the next, and
/// its capacity grows over a run's first seconds. With 10 s here a 60,000-item run there spent its
/// first 10 s at 32 in flight after one such verdict. Measured, the change is within the noise
/// (one session 1,640 → 1,756 items/s, another 1,748 → 1,736; docs/benchmarks.md).
const PROBE_AGAIN: Duration = Duration::from_secs(2);
/// After the table or the route pushed back (throttling, errors, queueing), hold this long before
/// widening again: that is a signal to go slower, not a measurement to repeat soon.
const PUSHED_BACK_HOLD: Duration = Duration::from_secs(10);

/// What the writes saw over some time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Interval {
    pub elapsed: Duration,
    /// Requests answered, whatever the answer.
    pub answered: u64,
    /// Their round trips, summed.
    pub round_trips: Duration,
    /// Answers that said "too fast" (throttling, unprocessed batch items).
    pub throttled: u64,
    /// Timeouts, 5xx answers and broken connections.
    pub errors: u64,
    /// Some writer had to wait for a slot: the window was what limited the run.
    pub full: bool,
}

impl Interval {
    fn add(&mut self, other: &Self) {
        self.elapsed += other.elapsed;
        self.answered += other.answered;
        self.round_trips += other.round_trips;
        self.throttled += other.throttled;
        self.errors += other.errors;
        self.full |= other.full;
    }

    /// The mean round trip, when something was answered.
    pub fn round_trip(&self) -> Option<Duration> {
        u32::try_from(self.answered).ok().filter(|n| *n > 0).map(|n| self.round_trips / n)
    }

    /// Requests answered a second.
    fn throughput(&self) -> f64 {
        self.answered as f64 / self.elapsed.as_secs_f64().max(1e-3)
    }
}

/// Why the window changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Widened,
    /// The last widening did not raise the throughput (see [`GAIN`]): back to where it was.
    NoGain,
    Throttled,
    Errors,
    LatencyRising,
    /// More would only wait for the rate limiter.
    RateLimit,
}

/// A new window size, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub size: usize,
    pub reason: Reason,
}

/// The policy's memory between intervals.
#[derive(Debug)]
pub struct WindowPolicy {
    size: usize,
    max: usize,
    pending: Interval,
    /// The fastest round trip seen (drifting up slowly), in seconds.
    base: Option<f64>,
    /// The size and throughput before the last widening, to go back to if it brought nothing.
    before_widening: Option<(usize, f64)>,
    /// What is left of a hold (after a widening that brought nothing, or after push-back).
    holding: Duration,
    /// What the writes saw at the current size since it was set: a probe is judged against the
    /// mean of the whole hold, not against its last, noisy, interval.
    at_size: Interval,
    slow_start: bool,
    /// What is left of the round trip after a change during which answers still reflect the old
    /// window: not measured, so that a widening is judged by its effect, not its ramp.
    transition: Duration,
    /// What the last judgement saw, for the debug log.
    judged: Option<Judged>,
}

/// What one judgement of the window saw: requests answered a second, their mean round trip, and
/// whether writers waited for a slot.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Judged {
    pub size: usize,
    pub throughput: f64,
    pub round_trip: Duration,
    pub full: bool,
}

impl WindowPolicy {
    /// Starts at `start` and never exceeds `max` (both within [`MIN`]..=[`MAX`]).
    pub fn new(start: usize, max: usize) -> Self {
        let max = max.clamp(MIN, MAX);
        Self {
            size: start.clamp(MIN, max),
            max,
            pending: Interval::default(),
            base: None,
            before_widening: None,
            holding: Duration::ZERO,
            at_size: Interval::default(),
            slow_start: true,
            transition: Duration::ZERO,
            judged: None,
        }
    }

    /// What the last judgement saw, once.
    pub fn take_judged(&mut self) -> Option<Judged> {
        self.judged.take()
    }

    pub fn size(&self) -> usize {
        self.size
    }

    /// Takes what the writes saw since the last call; `allowed` is the request rate the limiter
    /// allows now (infinite without a limit). Returns a new size when the window should change.
    pub fn observe(&mut self, interval: Interval, allowed: f64) -> Option<Decision> {
        let pushed_back = interval.throttled > 0 || interval.errors > 0;
        if !pushed_back && interval.elapsed <= self.transition {
            self.transition -= interval.elapsed;
            return None;
        }
        self.transition = Duration::ZERO;
        self.pending.add(&interval);
        let seen = self.pending;
        let round_trip = seen.round_trip()?.as_secs_f64();
        let pushed_back = seen.throttled > 0 || seen.errors > 0;
        let settled = seen.elapsed >= SETTLE.max(Duration::from_secs_f64(round_trip) * SETTLE_ROUND_TRIPS);
        if !settled && !pushed_back {
            return None;
        }
        self.pending = Interval::default();
        let base = self.base.map_or(round_trip, |base| (base * BASE_DRIFT).min(round_trip));
        self.base = Some(base);
        let throughput = seen.throughput();
        self.at_size.add(&seen);
        self.judged = Some(Judged {
            size: self.size,
            throughput,
            round_trip: Duration::from_secs_f64(round_trip),
            full: seen.full,
        });
        let (target, reason) = self.target(&seen, round_trip, base, throughput, allowed);
        let (target, reason) = match allowed * round_trip * LITTLE_HEADROOM {
            cap if (target as f64) > cap.ceil() && target > MIN => (cap.ceil() as usize, Reason::RateLimit),
            _ => (target, reason),
        };
        let target = target.clamp(MIN, self.max);
        (target != self.size).then(|| {
            self.size = target;
            self.at_size = Interval::default();
            self.transition = Duration::from_secs_f64(round_trip);
            Decision { size: target, reason }
        })
    }

    /// The size the interval asks for, before the rate limiter's cap.
    fn target(
        &mut self,
        seen: &Interval,
        round_trip: f64,
        base: f64,
        throughput: f64,
        allowed: f64,
    ) -> (usize, Reason) {
        let narrowed = (self.size as f64 * NARROW) as usize;
        if seen.throttled > 0 || seen.errors > 0 {
            // The rate limiter answers throttling with a lower rate; the window narrows with it
            // but keeps what that rate needs (else a run on provisioned capacity would fall far
            // below it after a few throttles). Without a limiter, the window is the only answer.
            let needed = if allowed.is_finite() { (allowed * round_trip).ceil() as usize } else { 0 };
            let reason = if seen.throttled > 0 { Reason::Throttled } else { Reason::Errors };
            self.before_widening = None;
            self.holding = PUSHED_BACK_HOLD;
            self.slow_start = false;
            return (narrowed.max(needed.min(self.size)), reason);
        }
        if round_trip > base * LATENCY_TOLERANCE {
            // Requests queue somewhere. Hold before widening again: it would meet the same queue.
            self.before_widening = None;
            self.holding = PUSHED_BACK_HOLD;
            self.slow_start = false;
            return (narrowed, Reason::LatencyRising);
        }
        if !seen.full {
            // Something else limits the run (the scan, the limiter, the transform): a wider window
            // would not be used.
            self.before_widening = None;
            return (self.size, Reason::Widened);
        }
        if let Some((before, then)) = self.before_widening.take() {
            if throughput <= then * GAIN {
                self.holding = PROBE_AGAIN;
                self.slow_start = false;
                return (before, Reason::NoGain);
            }
        }
        if !self.holding.is_zero() {
            self.holding = self.holding.saturating_sub(seen.elapsed);
            return (self.size, Reason::Widened);
        }
        self.before_widening = Some((self.size, self.at_size.throughput()));
        let growth = if self.slow_start { SLOW_START_GROWTH } else { GROWTH };
        (((self.size as f64 * growth) as usize).max(self.size + 1), Reason::Widened)
    }
}

#[cfg(test)]
mod tests;
