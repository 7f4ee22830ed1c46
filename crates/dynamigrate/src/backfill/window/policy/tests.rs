//! The window policy's rules, each on a server model small enough to reason about by hand.

use super::*;

const MS: Duration = Duration::from_millis(1);

/// An interval of `elapsed` at a window of `size` with every request taking `rtt`.
fn busy(size: usize, rtt: Duration, elapsed: Duration) -> Interval {
    let answered = (size as f64 * elapsed.as_secs_f64() / rtt.as_secs_f64()) as u64;
    Interval { elapsed, answered, round_trips: rtt * answered as u32, full: true, ..Interval::default() }
}

#[test]
fn at_a_long_round_trip_the_window_widens_until_the_server_is_the_limit() {
    // A pure 100 ms delay in front of a server that serves at most 2,000 requests a second.
    let mut policy = WindowPolicy::new(START, MAX);
    let (delay, capacity): (f64, f64) = (0.1, 2000.0);
    for _ in 0..200 {
        let size = policy.size() as f64;
        // Past the server's capacity the excess waits in its queue.
        let rtt = delay.max(size / capacity);
        policy.observe(busy(policy.size(), Duration::from_secs_f64(rtt), 600 * MS), f64::INFINITY);
    }
    // 200 in flight carry 2,000/s at 100 ms; a little more is queueing, never much more.
    let size = policy.size();
    assert!((200..=450).contains(&size), "{size}");
}

#[test]
fn a_widening_that_brings_nothing_is_undone() {
    let mut policy = WindowPolicy::new(16, MAX);
    // The server is saturated: every widening only lengthens the round trip (900 answers in 600 ms
    // at any window, counted whole so that rounding cannot make a gain).
    let at = |size: usize| Interval {
        round_trips: Duration::from_secs_f64(size as f64 / 1500.0) * 900,
        answered: 900,
        ..busy(size, MS, 600 * MS)
    };
    let widened = policy.observe(at(16), f64::INFINITY).unwrap();
    assert_eq!(widened, Decision { size: 32, reason: Reason::Widened });
    let undone = policy.observe(at(32), f64::INFINITY).unwrap();
    assert_eq!(undone, Decision { size: 16, reason: Reason::NoGain });
    // It holds for a while (2 s), then probes again: every 3 to 4 s at 600 ms an interval.
    let mut probes = 0;
    for _ in 0..100 {
        let decision = policy.observe(at(policy.size()), f64::INFINITY);
        probes += usize::from(decision.is_some_and(|d| d.reason == Reason::Widened));
    }
    assert!((12..=20).contains(&probes), "{probes} probes in a minute");
    assert!(policy.size() <= 24, "probes after the first are by half, not double");
}

#[test]
fn throttling_errors_and_rising_latency_narrow_it_at_once() {
    let mut policy = WindowPolicy::new(64, MAX);
    let quiet = busy(64, 20 * MS, 600 * MS);
    policy.observe(quiet, f64::INFINITY);
    let size = policy.size();
    let throttled = Interval { throttled: 3, elapsed: 10 * MS, ..busy(size, 20 * MS, 10 * MS) };
    assert_eq!(policy.observe(throttled, f64::INFINITY).unwrap().reason, Reason::Throttled);
    assert_eq!(policy.size(), size * 3 / 4);
    let errors = Interval { errors: 1, ..busy(policy.size(), 20 * MS, 10 * MS) };
    assert_eq!(policy.observe(errors, f64::INFINITY).unwrap().reason, Reason::Errors);
    let slow = busy(policy.size(), 150 * MS, 600 * MS);
    assert_eq!(policy.observe(slow, f64::INFINITY).unwrap().reason, Reason::LatencyRising);
    for _ in 0..50 {
        policy.observe(Interval { throttled: 1, ..busy(policy.size(), 20 * MS, 10 * MS) }, f64::INFINITY);
    }
    assert_eq!(policy.size(), MIN, "never below the minimum");
}

#[test]
fn under_a_rate_limit_throttling_keeps_what_the_lowered_rate_needs() {
    // 500 requests a second allowed at 20 ms: 10 in flight carry it, however often it throttles.
    let mut policy = WindowPolicy::new(64, MAX);
    for _ in 0..50 {
        policy.observe(Interval { throttled: 1, ..busy(policy.size(), 20 * MS, 600 * MS) }, 500.0);
    }
    assert_eq!(policy.size(), 10);
}

#[test]
fn the_window_stays_within_what_the_rate_limiter_lets_through() {
    // 1,000 requests a second allowed at 100 ms: 100 in flight reach it; 150 with headroom.
    let mut policy = WindowPolicy::new(START, MAX);
    for _ in 0..100 {
        policy.observe(busy(policy.size(), 100 * MS, 600 * MS), 1000.0);
    }
    assert!((100..=150).contains(&policy.size()), "{}", policy.size());
    // The limiter drops to 100/s (the table throttled): the window follows.
    let decision = policy.observe(busy(policy.size(), 100 * MS, 600 * MS), 100.0).unwrap();
    assert_eq!(decision, Decision { size: 15, reason: Reason::RateLimit });
}

#[test]
fn a_window_nobody_fills_is_left_alone() {
    let mut policy = WindowPolicy::new(16, MAX);
    let idle = Interval { full: false, ..busy(8, 50 * MS, 600 * MS) };
    for _ in 0..20 {
        assert_eq!(policy.observe(idle, f64::INFINITY), None);
    }
    // Nothing answered yet: nothing to decide on.
    assert_eq!(policy.observe(Interval { elapsed: 600 * MS, ..Interval::default() }, 1.0), None);
}

#[test]
fn the_round_trip_after_a_change_is_not_measured() {
    let mut policy = WindowPolicy::new(16, MAX);
    assert!(policy.observe(busy(16, 100 * MS, 600 * MS), f64::INFINITY).is_some());
    // The first 100 ms after the change: answers of the old window, ignored however slow.
    let ramp = busy(16, 600 * MS, 100 * MS);
    assert_eq!(policy.observe(ramp, f64::INFINITY), None);
    assert_eq!(policy.pending, Interval::default());
}

#[test]
fn decisions_wait_for_four_round_trips() {
    let mut policy = WindowPolicy::new(16, MAX);
    for _ in 0..3 {
        assert_eq!(policy.observe(busy(16, 150 * MS, 150 * MS), f64::INFINITY), None);
    }
    assert!(policy.observe(busy(16, 150 * MS, 150 * MS), f64::INFINITY).is_some());
}

#[test]
fn the_maximum_bounds_the_start_and_every_widening() {
    let mut policy = WindowPolicy::new(500, 40);
    assert_eq!(policy.size(), 40);
    for _ in 0..20 {
        policy.observe(busy(policy.size(), 100 * MS, 600 * MS), f64::INFINITY);
    }
    assert_eq!(policy.size(), 40);
}

#[test]
fn each_judgement_is_told_once_for_the_log() {
    let mut policy = WindowPolicy::new(16, MAX);
    assert_eq!(policy.observe(busy(16, 100 * MS, 200 * MS), f64::INFINITY), None);
    assert_eq!(policy.take_judged(), None, "not settled yet: nothing judged");
    policy.observe(busy(16, 100 * MS, 400 * MS), f64::INFINITY);
    let judged = policy.take_judged().expect("a judgement");
    assert_eq!((judged.size, judged.full), (16, true));
    assert!((judged.round_trip.as_secs_f64() - 0.1).abs() < 1e-6, "{judged:?}");
    assert!((judged.throughput - 160.0).abs() < 1.0, "{judged:?}");
    assert_eq!(policy.take_judged(), None);
}

/// An interval of 600 ms at `size` in flight that served `rate` requests a second.
fn serving(size: usize, rate: f64) -> Interval {
    busy(size, Duration::from_secs_f64(size as f64 / rate), 600 * MS)
}

#[test]
fn a_probe_is_judged_against_the_whole_hold_not_its_last_interval() {
    let mut policy = WindowPolicy::new(16, MAX);
    policy.observe(serving(16, 1000.0), f64::INFINITY);
    assert_eq!(policy.observe(serving(32, 1000.0), f64::INFINITY).unwrap().reason, Reason::NoGain);
    // Holding at 16: a steady 1,000/s, then one lucky interval at 1,400/s just before the probe.
    for _ in 0..4 {
        assert_eq!(policy.observe(serving(16, 1000.0), f64::INFINITY), None);
    }
    let probe = policy.observe(serving(16, 1400.0), f64::INFINITY).unwrap();
    assert_eq!(probe, Decision { size: 24, reason: Reason::Widened });
    // 1,200/s at 24 is a gain over the hold's 1,080/s, though not over its last interval.
    let judged = policy.observe(serving(24, 1200.0), f64::INFINITY);
    assert_ne!(judged.map(|d| d.reason), Some(Reason::NoGain));
    assert!(policy.size() >= 24, "{}", policy.size());
}

#[test]
fn push_back_holds_longer_than_a_widening_that_brought_nothing() {
    // Intervals of 600 ms until the next widening.
    let until_widened = |policy: &mut WindowPolicy, rate: f64| {
        (1..100).find(|_| policy.observe(serving(policy.size(), rate), f64::INFINITY).is_some()).unwrap()
    };
    let mut policy = WindowPolicy::new(16, MAX);
    policy.observe(serving(16, 1000.0), f64::INFINITY);
    policy.observe(serving(32, 1000.0), f64::INFINITY);
    let after_no_gain = until_widened(&mut policy, 1000.0);
    let mut policy = WindowPolicy::new(16, MAX);
    let throttled = Interval { throttled: 1, ..serving(16, 1000.0) };
    assert_eq!(policy.observe(throttled, f64::INFINITY).unwrap().reason, Reason::Throttled);
    let after_throttling = until_widened(&mut policy, 1000.0);
    assert!((3..=6).contains(&after_no_gain), "{after_no_gain} intervals after no gain");
    assert!(after_throttling >= 16, "{after_throttling} intervals after throttling");
}

#[test]
fn a_widening_that_raises_the_throughput_at_all_is_kept() {
    // A gain this small is within the noise, and a window a little too wide costs only memory.
    let mut policy = WindowPolicy::new(16, MAX);
    policy.observe(serving(16, 1000.0), f64::INFINITY);
    assert_ne!(policy.observe(serving(32, 1010.0), f64::INFINITY).map(|d| d.reason), Some(Reason::NoGain));
    assert!(policy.size() >= 32, "{}", policy.size());
}

/// A small deterministic generator (xorshift), for noise the tests can repeat.
struct Noise(u64);

impl Noise {
    fn uniform(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A factor around one whose logarithm is normal with deviation `sigma` (Box-Muller).
    fn factor(&mut self, sigma: f64) -> f64 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        (sigma * (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()).exp()
    }
}

/// Requests served over `seconds` by the policy on a server that queues (it serves `capacity` ×
/// n / (n + `knee`) a second at n in flight) and whose pace moves by `sigma` from one half-second
/// to the next, as a share of what the same run pinned at `bound` serves.
fn share_of_pinned(seed: u64, capacity: f64, knee: f64, sigma: f64, seconds: u32, bound: usize) -> f64 {
    let mut noise = Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut policy = WindowPolicy::new(START, bound);
    let (mut served, mut pace) = (0.0, 1.0);
    for tick in 0..seconds * 10 {
        if tick % 5 == 0 {
            pace = noise.factor(sigma);
        }
        let size = policy.size();
        let rate = capacity * size as f64 / (size as f64 + knee) * pace;
        served += rate / 10.0;
        policy.observe(busy(size, Duration::from_secs_f64(size as f64 / rate), 100 * MS), f64::INFINITY);
    }
    let pinned = capacity * bound as f64 / (bound as f64 + knee);
    served / (pinned * f64::from(seconds))
}

/// The mean of [`share_of_pinned`] over 200 runs, for Local at +0 ms in batch mode, roughly: at most
/// ~330 batches a second, 240 of them at 32 in flight.
fn mean_share(sigma: f64, seconds: u32) -> f64 {
    (0..200).map(|seed| share_of_pinned(seed, 330.0, 12.0, sigma, seconds, 253)).sum::<f64>() / 200.0
}

#[test]
fn a_noisy_server_does_not_hold_the_window_down() {
    // A fifth from one half-second to the next is what DynamoDB Local shows at a fixed window.
    let (quiet, noisy, short) = (mean_share(0.0, 60), mean_share(0.2, 60), mean_share(0.2, 10));
    println!("share of the run pinned at the bound: quiet {quiet:.3}, noisy {noisy:.3}, noisy 10 s {short:.3}");
    assert!(quiet >= 0.96, "{quiet:.3}");
    assert!(noisy >= 0.96, "{noisy:.3}");
    assert!(short >= 0.88, "{short:.3}");
}
