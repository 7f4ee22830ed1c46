//! Which segments a pass scans: all of them afresh, or those an interrupted run left unfinished,
//! with that run's division of the table. Pure, so resuming is unit-tested apart from I/O.

use std::collections::VecDeque;

use super::settings::choose_segments;
use crate::ledger::{Checkpoint, Counts};

/// The segments of a run: fresh, or where an interrupted run's checkpoints left them.
#[derive(Debug, PartialEq)]
pub(crate) struct SegmentPlan {
    checkpoints: Vec<Checkpoint>,
    pub total: u32,
    pub resumed: bool,
    /// What the interrupted runs did, for the progress line and the summary.
    pub earlier: Counts,
    pub done_before: u64,
}

impl SegmentPlan {
    /// A resumed backfill keeps the interrupted run's segment count whatever is asked now: the
    /// checkpoints' positions belong to that division of the table.
    pub fn new(existing: Vec<Checkpoint>, requested: Option<u32>, table_size_bytes: u64) -> Self {
        let total = match existing.first() {
            Some(previous) => {
                if requested.is_some_and(|s| s != previous.total_segments) {
                    tracing::warn!(
                        "resuming with the {} segments of the interrupted run; the segment count cannot change mid-backfill",
                        previous.total_segments
                    );
                }
                previous.total_segments
            }
            None => requested.unwrap_or_else(|| choose_segments(table_size_bytes)).max(1),
        };
        let checkpoints: Vec<Checkpoint> = (0..total)
            .map(|segment| {
                existing.iter().find(|c| c.segment == segment).cloned().unwrap_or(Checkpoint {
                    segment,
                    total_segments: total,
                    ..Checkpoint::default()
                })
            })
            .collect();
        let mut earlier = Counts::default();
        checkpoints.iter().for_each(|c| earlier.add(&c.counts));
        let done_before = checkpoints.iter().filter(|c| c.done).count() as u64;
        Self { checkpoints, total, resumed: !existing.is_empty(), earlier, done_before }
    }

    /// A random `percent` of `total` segments (at least one), where `total` divides the table's
    /// `items` into segments of about a thousand items (100 to DynamoDB's most, 1,000,000): small
    /// segments make the sample spread over the table.
    pub fn sample(items: u64, percent: f64) -> Self {
        let total = (items / 1000).clamp(100, 1_000_000) as u32;
        let wanted = ((f64::from(total) * percent / 100.0).ceil() as u32).clamp(1, total);
        let mut chosen: Vec<u32> = (0..total).collect();
        fastrand::shuffle(&mut chosen);
        chosen.truncate(wanted as usize);
        chosen.sort_unstable();
        let checkpoints =
            chosen.into_iter().map(|segment| Checkpoint { segment, total_segments: total, ..Checkpoint::default() });
        Self { checkpoints: checkpoints.collect(), total, resumed: false, earlier: Counts::default(), done_before: 0 }
    }

    /// Segments this plan scans (a sample scans some of `total`).
    pub fn len(&self) -> usize {
        self.checkpoints.len()
    }

    /// The part of `items` this plan's segments hold, roughly.
    pub fn share_of(&self, items: u64) -> u64 {
        items * self.checkpoints.len() as u64 / u64::from(self.total.max(1))
    }

    pub fn log_resume(&self, name: &str) {
        if self.resumed {
            tracing::info!(
                "resuming backfill {name} from checkpoints: {}/{} segments done, {} items scanned before",
                self.done_before,
                self.total,
                self.earlier.scanned
            );
        }
    }

    /// The segments still to scan, in order.
    pub fn pending(self) -> VecDeque<Checkpoint> {
        self.checkpoints.into_iter().filter(|c| !c.done).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::Item;
    use aws_sdk_dynamodb::types::AttributeValue;

    fn counts(scanned: u64) -> Counts {
        Counts { scanned, processed: scanned, modified: scanned, ..Counts::default() }
    }

    #[test]
    fn a_fresh_run_takes_the_requested_or_chosen_segments() {
        let plan = SegmentPlan::new(Vec::new(), Some(7), 0);
        assert_eq!((plan.total, plan.resumed, plan.done_before), (7, false, 0));
        assert_eq!(plan.pending().iter().map(|c| c.segment).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
        assert_eq!(SegmentPlan::new(Vec::new(), None, 0).total, 16, "at least 16 segments");
    }

    #[test]
    fn a_sample_takes_its_share_of_small_segments_at_random() {
        let plan = SegmentPlan::sample(1_000_000, 5.0);
        assert_eq!((plan.total, plan.len()), (1000, 50));
        assert_eq!(plan.share_of(1_000_000), 50_000);
        let segments: Vec<u32> = plan.pending().iter().map(|c| c.segment).collect();
        assert!(segments.windows(2).all(|w| w[0] < w[1]) && segments.iter().all(|s| *s < 1000), "{segments:?}");
        assert_eq!(SegmentPlan::sample(10, 0.001).len(), 1, "at least one segment");
        assert_eq!(SegmentPlan::sample(5_000_000_000, 0.01).total, 1_000_000, "DynamoDB's most");
    }

    #[test]
    fn a_resumed_run_keeps_the_interrupted_runs_segments_and_skips_the_done_ones() {
        let key = Item::from([("pk".to_string(), AttributeValue::S("ITEM#9".into()))]);
        let existing = vec![
            Checkpoint { segment: 0, total_segments: 3, last_key: None, done: true, counts: counts(10) },
            Checkpoint { segment: 2, total_segments: 3, last_key: Some(key.clone()), done: false, counts: counts(5) },
        ];
        let plan = SegmentPlan::new(existing, Some(8), 0);
        assert_eq!((plan.total, plan.resumed, plan.done_before, plan.earlier.scanned), (3, true, 1, 15));
        let pending = plan.pending();
        assert_eq!(pending.iter().map(|c| c.segment).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(pending[0], Checkpoint { segment: 1, total_segments: 3, ..Checkpoint::default() });
        assert_eq!(pending[1].last_key, Some(key), "segment 2 goes on from where it stopped");
    }
}
