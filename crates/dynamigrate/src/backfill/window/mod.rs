//! The in-flight window: how many write requests a backfill keeps in flight at once, across all
//! its segments. Writers take a [`Slot`] before each request and report its round trip when the
//! answer comes; the [steering task](steer) reads those every tick, asks the pure
//! [policy](policy) and resizes the window. `--concurrency N` pins it at N.
//!
//! Why adaptive: a fixed window caps a run at window ÷ round trip. 16 writes in flight are plenty
//! against DynamoDB Local (well under a millisecond away) and 160 items/s at a 100 ms round trip
//! (from a laptop, or another region), whatever the table could take.

mod policy;
mod steer;

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use policy::{Interval, MAX as MAX_WINDOW, START as START_WINDOW};
pub(crate) use steer::Steering;

/// What the requests in flight may hold, roughly: the window is at most this divided by what one
/// request holds, so a table of 400 KB items does not keep hundreds of megabytes in flight, and
/// a window that noise keeps widening cannot take a run's memory with it.
pub const IN_FLIGHT_BYTES: u64 = 24 << 20;
/// What a request in flight holds besides its items: its connection's buffers, the signed request,
/// the answer being read, and what the allocator keeps around them over a long run. Measured in a
/// 1,000,000-item run whose window climbed from ~80 to 501: peak RSS went from 39 MiB to 83 MiB,
/// about 105 KiB a request (a 30,000-item run had shown about 50 KB). That run was on glibc's
/// malloc, whose arenas crept on their own; on jemalloc (the binary's allocator now) a 1M run at
/// this bound peaked at 55 MB, so the figure is on the safe side.
pub const REQUEST_BYTES: u64 = 96 << 10;

/// The widest window `item_bytes`-sized items allow, `items_per_request` to a request.
pub fn memory_bound(item_bytes: u64, items_per_request: u64) -> usize {
    let request = REQUEST_BYTES + item_bytes.max(1024) * items_per_request.max(1);
    (IN_FLIGHT_BYTES / request).clamp(1, MAX_WINDOW as u64) as usize
}

/// How one answer went, for the steering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Answered, whatever it said (a failed condition is an answer).
    Ok,
    /// Throttled or unprocessed: the table asks for less.
    Throttled,
    /// A timeout, a 5xx, a broken connection.
    Error,
}

/// The window of one backfill.
pub struct Window {
    slots: Arc<Semaphore>,
    size: AtomicUsize,
    /// Slots to take out of circulation as they come back, after a narrowing that found them busy.
    owed: AtomicUsize,
    pinned: bool,
    largest: AtomicUsize,
    /// Since the steering last looked.
    recent: Counters,
    /// Over the whole run, for the summary.
    total: Counters,
    waited_for_slot: AtomicBool,
}

#[derive(Default)]
struct Counters {
    answered: AtomicU64,
    micros: AtomicU64,
    throttled: AtomicU64,
    errors: AtomicU64,
}

impl Counters {
    fn add(&self, round_trip: Duration, answer: Answer) {
        self.answered.fetch_add(1, Relaxed);
        self.micros.fetch_add(round_trip.as_micros() as u64, Relaxed);
        match answer {
            Answer::Ok => {}
            Answer::Throttled => _ = self.throttled.fetch_add(1, Relaxed),
            Answer::Error => _ = self.errors.fetch_add(1, Relaxed),
        }
    }
}

/// A write's place in the window, given back when dropped.
pub struct Slot {
    permit: Option<OwnedSemaphorePermit>,
    window: Arc<Window>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // After a narrowing, returning slots pay off what is owed instead of going back.
        let owed = self.window.owed.fetch_update(Relaxed, Relaxed, |owed| owed.checked_sub(1));
        if let (Ok(_), Some(permit)) = (owed, self.permit.take()) {
            permit.forget();
        }
    }
}

impl Window {
    /// A window of `size` slots; `pinned` ones never change (`--concurrency`).
    pub fn new(size: usize, pinned: bool) -> Arc<Self> {
        let size = size.max(1);
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(size)),
            size: AtomicUsize::new(size),
            owed: AtomicUsize::new(0),
            pinned,
            largest: AtomicUsize::new(size),
            recent: Counters::default(),
            total: Counters::default(),
            waited_for_slot: AtomicBool::new(false),
        })
    }

    /// Waits for a free slot. None if the window was closed (never, today).
    pub async fn slot(self: &Arc<Self>) -> Option<Slot> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                self.waited_for_slot.store(true, Relaxed);
                self.slots.clone().acquire_owned().await.ok()?
            }
        };
        Some(Slot { permit: Some(permit), window: self.clone() })
    }

    /// Records one answered request and how long it took from send to answer.
    pub fn answered(&self, sent: Instant, answer: Answer) {
        let round_trip = sent.elapsed();
        self.recent.add(round_trip, answer);
        self.total.add(round_trip, answer);
    }

    pub fn size(&self) -> usize {
        self.size.load(Relaxed)
    }

    pub fn is_pinned(&self) -> bool {
        self.pinned
    }

    pub fn largest(&self) -> usize {
        self.largest.load(Relaxed)
    }

    /// The mean round trip of every request answered so far.
    pub fn round_trip(&self) -> Option<Duration> {
        let answered = self.total.answered.load(Relaxed);
        (answered > 0).then(|| Duration::from_micros(self.total.micros.load(Relaxed) / answered))
    }

    /// What was answered since the last call, over `elapsed`.
    fn take_recent(&self, elapsed: Duration) -> Interval {
        let take = |counter: &AtomicU64| counter.swap(0, Relaxed);
        Interval {
            elapsed,
            answered: take(&self.recent.answered),
            round_trips: Duration::from_micros(take(&self.recent.micros)),
            throttled: take(&self.recent.throttled),
            errors: take(&self.recent.errors),
            full: self.waited_for_slot.swap(false, Relaxed),
        }
    }

    /// Makes the window `size` slots: new slots at once, fewer as busy ones come back.
    fn resize(&self, size: usize) {
        let now = self.size.swap(size, Relaxed);
        self.largest.fetch_max(size, Relaxed);
        if size > now {
            let mut more = size - now;
            // Slots still owed from a narrowing are simply kept instead.
            while more > 0 && self.owed.fetch_update(Relaxed, Relaxed, |o| o.checked_sub(1)).is_ok() {
                more -= 1;
            }
            self.slots.add_permits(more);
        } else {
            let fewer = now - size;
            let idle = self.slots.forget_permits(fewer);
            self.owed.fetch_add(fewer - idle, Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_narrowed_window_takes_busy_slots_back_as_they_return() {
        let window = Window::new(4, false);
        let busy: Vec<Slot> = futures_slots(&window, 3).await;
        window.resize(2);
        // One idle slot went at once; one of the three busy ones is owed.
        assert_eq!(window.slots.available_permits(), 0);
        drop(busy);
        assert_eq!(window.slots.available_permits(), 2);
        window.resize(5);
        assert_eq!(window.slots.available_permits(), 5);
        assert_eq!(window.largest(), 5);
    }

    #[tokio::test]
    async fn widening_first_cancels_what_is_owed() {
        let window = Window::new(4, false);
        let busy = futures_slots(&window, 4).await;
        window.resize(1);
        window.resize(3);
        drop(busy);
        assert_eq!(window.slots.available_permits(), 3);
    }

    #[tokio::test]
    async fn the_summary_sees_the_mean_round_trip_and_the_steering_what_is_new() {
        let window = Window::new(2, true);
        let sent = Instant::now() - Duration::from_millis(20);
        window.answered(sent, Answer::Ok);
        window.answered(sent, Answer::Throttled);
        let recent = window.take_recent(Duration::from_millis(250));
        assert_eq!((recent.answered, recent.throttled, recent.full), (2, 1, false));
        assert!(window.round_trip().unwrap() >= Duration::from_millis(20));
        assert_eq!(window.take_recent(Duration::from_millis(250)).answered, 0);
    }

    #[test]
    fn large_items_lower_the_bound() {
        assert_eq!(memory_bound(200, 1), 253);
        assert_eq!(memory_bound(400 << 10, 1), 49);
        assert_eq!(memory_bound(4 << 10, 25), 125);
    }

    async fn futures_slots(window: &Arc<Window>, n: usize) -> Vec<Slot> {
        let mut slots = Vec::new();
        for _ in 0..n {
            slots.push(window.slot().await.unwrap());
        }
        slots
    }
}
