//! Orchestration: describe the table, load checkpoints, run segment workers, report, close.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::scan::ScanError;
use aws_sdk_dynamodb::types::{AttributeValue, BillingMode, KeyType, ReturnConsumedCapacity, TableDescription};
use aws_sdk_dynamodb::Client;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::checkpoint::{Checkpoint, CheckpointStore, Counts};
use super::failures::FailureLog;
use super::meter::{Meter, ReportScope, Reporter};
use super::rate::{self, Controller, RateControl, RateMode, TableCapacity};
use super::settings::{
    choose_segments, DEFAULT_CONCURRENCY, DEFAULT_MAX_FAILURES, DEFAULT_PAGE_SIZE, DEFAULT_SAMPLE_DIFFS,
};
use super::value::Item;
use super::{write, Backfill, BackfillSummary, Guard, ItemDiff, Transform, WriteMode};
use crate::aws::{is_transient, pause, PATIENCE_ROUNDS};
use crate::Error;

/// Everything the workers share.
pub(crate) struct Engine {
    pub client: Client,
    pub table: String,
    pub key_names: Vec<String>,
    pub guard: Guard,
    pub mode: WriteMode,
    pub dry_run: bool,
    pub scan: ScanSpec,
    pub transform: Arc<Transform>,
    pub meter: Arc<Meter>,
    pub failures: FailureLog,
    pub max_failures: u64,
    pub max_conflict_retries: u32,
    /// Bounds writes in flight across all segments.
    pub writes: Arc<Semaphore>,
    /// Stops the workers after their current page: Ctrl-C, lost lease, or too many failures.
    pub stop: CancellationToken,
    pub diffs: Mutex<Vec<ItemDiff>>,
    pub sample_diffs: usize,
    pub rate: Arc<RateControl>,
}

impl Engine {
    pub fn key_of(&self, item: &Item) -> Item {
        self.key_names.iter().filter_map(|k| item.get(k).map(|v| (k.clone(), v.clone()))).collect()
    }
}

/// The table's shape, from DescribeTable.
struct TableShape {
    key_names: Vec<String>,
    item_count: u64,
    size_bytes: u64,
    capacity: TableCapacity,
}

async fn describe(client: &Client, table: &str) -> Result<TableShape, Error> {
    let output = client.describe_table().table_name(table).send().await.map_err(|e| {
        if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) {
            Error::TableNotFound { table: table.to_string(), where_: String::new() }
        } else {
            Error::aws(format!("describing table {table}"), e)
        }
    })?;
    let description = output.table.ok_or_else(|| Error::Config(format!("DescribeTable gave nothing for {table}")))?;
    let mut key_names = Vec::new();
    for key_type in [KeyType::Hash, KeyType::Range] {
        key_names.extend(
            description
                .key_schema()
                .iter()
                .filter(|k| k.key_type() == &key_type)
                .map(|k| k.attribute_name().to_string()),
        );
    }
    Ok(TableShape {
        key_names,
        item_count: description.item_count.unwrap_or(0).max(0) as u64,
        size_bytes: description.table_size_bytes.unwrap_or(0).max(0) as u64,
        capacity: write_capacity(&description),
    })
}

/// The table's write capacity as DescribeTable states it; absent or non-positive figures mean
/// "not stated" (DynamoDB Local, for one, reports 0 WCU for on-demand tables and no warm throughput).
fn write_capacity(description: &TableDescription) -> TableCapacity {
    let positive = |units: Option<i64>| units.filter(|u| *u > 0).map(|u| u as f64);
    let on_demand =
        description.billing_mode_summary().and_then(|b| b.billing_mode()) == Some(&BillingMode::PayPerRequest);
    TableCapacity {
        provisioned: positive(description.provisioned_throughput().and_then(|p| p.write_capacity_units))
            .filter(|_| !on_demand),
        warm: positive(description.warm_throughput().and_then(|w| w.write_units_per_second)).filter(|_| on_demand),
        max: positive(description.on_demand_throughput().and_then(|o| o.max_write_request_units)),
    }
}

/// One Scan request's fixed parts: filter, projection, placeholders, page size.
pub(crate) struct ScanSpec {
    table: String,
    filter: Option<String>,
    projection: Option<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
    limit: i32,
}

pub(crate) struct Page {
    pub items: Vec<Item>,
    pub scanned: u64,
    pub last_key: Option<Item>,
    pub read_units: f64,
}

impl ScanSpec {
    fn build(spec: &Backfill<'_>, key_names: &[String], limit: i32) -> Result<Self, Error> {
        let mut names: HashMap<String, String> = spec.names.clone().into_iter().collect();
        let mut values: HashMap<String, AttributeValue> = spec.values.clone().into_iter().collect();
        let mut filters: Vec<String> = spec.filter.iter().map(|f| format!("({f})")).collect();
        let prefixes = [(&spec.pk_prefix, 0, "pk"), (&spec.sk_prefix, 1, "sk")];
        for (prefix, index, tag) in prefixes {
            let Some(prefix) = prefix else { continue };
            let attribute = key_names.get(index).ok_or_else(|| {
                Error::Config(format!("table {} has no sort key, so sk_prefix cannot apply", spec.table))
            })?;
            names.insert(format!("#dm_{tag}"), attribute.clone());
            values.insert(format!(":dm_{tag}"), AttributeValue::S(prefix.clone()));
            filters.push(format!("begins_with(#dm_{tag}, :dm_{tag})"));
        }
        let projection = spec.projection.as_ref().map(|attributes| {
            let mut all: Vec<&String> = key_names.iter().chain(attributes.iter()).collect();
            all.dedup();
            let placeholders: Vec<String> = all
                .iter()
                .enumerate()
                .map(|(i, attribute)| {
                    names.insert(format!("#dm_p{i}"), (*attribute).clone());
                    format!("#dm_p{i}")
                })
                .collect();
            placeholders.join(", ")
        });
        Ok(Self {
            table: spec.table.clone(),
            filter: (!filters.is_empty()).then(|| filters.join(" AND ")),
            projection,
            names,
            values,
            limit,
        })
    }

    pub fn is_projected(&self) -> bool {
        self.projection.is_some()
    }

    /// One page, waiting out transient errors beyond the SDK's retries.
    async fn page(&self, client: &Client, checkpoint: &Checkpoint) -> Result<Page, Error> {
        let mut round = 0;
        loop {
            match self.try_page(client, checkpoint).await {
                Err(error) if is_transient(&error) && round < PATIENCE_ROUNDS => {
                    round += 1;
                    pause(round).await;
                }
                result => {
                    let what = || format!("scanning {} segment {}", self.table, checkpoint.segment);
                    return result.map_err(|e| Error::aws(what(), e));
                }
            }
        }
    }

    async fn try_page(
        &self,
        client: &Client,
        checkpoint: &Checkpoint,
    ) -> Result<Page, SdkError<ScanError, HttpResponse>> {
        let output = client
            .scan()
            .table_name(&self.table)
            .segment(checkpoint.segment as i32)
            .total_segments(checkpoint.total_segments as i32)
            .set_exclusive_start_key(checkpoint.last_key.clone())
            .limit(self.limit)
            .set_filter_expression(self.filter.clone())
            .set_projection_expression(self.projection.clone())
            .set_expression_attribute_names(self.used_names())
            .set_expression_attribute_values((!self.values.is_empty()).then(|| self.values.clone()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await?;
        Ok(Page {
            read_units: output.consumed_capacity.as_ref().and_then(|c| c.capacity_units).unwrap_or(0.0),
            scanned: output.scanned_count.max(0) as u64,
            items: output.items.unwrap_or_default(),
            last_key: output.last_evaluated_key.filter(|k| !k.is_empty()),
        })
    }

    fn used_names(&self) -> Option<HashMap<String, String>> {
        (!self.names.is_empty()).then(|| self.names.clone())
    }

    /// GetItem after a conflict: strongly consistent, with the same projection.
    pub async fn reread(&self, client: &Client, key: &Item) -> Result<Option<Item>, String> {
        let projection_names: Option<HashMap<String, String>> = self.projection.as_ref().map(|_| {
            self.names.iter().filter(|(k, _)| k.starts_with("#dm_p")).map(|(k, v)| (k.clone(), v.clone())).collect()
        });
        let mut round = 0;
        loop {
            let result = client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key.clone()))
                .consistent_read(true)
                .set_projection_expression(self.projection.clone())
                .set_expression_attribute_names(projection_names.clone())
                .send()
                .await;
            match result {
                Ok(output) => return Ok(output.item),
                Err(error) if is_transient(&error) && round < PATIENCE_ROUNDS => {
                    round += 1;
                    pause(round).await;
                }
                Err(error) => return Err(format!("re-reading after a conflict: {}", DisplayErrorContext(error))),
            }
        }
    }
}

pub(crate) async fn run(spec: Backfill<'_>, transform: Arc<Transform>) -> anyhow::Result<BackfillSummary> {
    let started = Instant::now();
    let ctx = spec.ctx;
    let env = &ctx.backfill_env;
    let retries_before = env.retry_stats.snapshot();
    let settings = env.settings.or(&spec.settings);
    let shape = describe(&ctx.client, &spec.table).await?;
    let mode = settings.write_mode.unwrap_or_default();
    let scan = ScanSpec::build(&spec, &shape.key_names, settings.batch_size.unwrap_or(DEFAULT_PAGE_SIZE))?;
    if mode == WriteMode::Batch && scan.is_projected() {
        anyhow::bail!(
            "batch mode writes whole items, so it cannot work on a projection; drop .projection() or use update mode"
        );
    }
    let store = env.checkpoint_store(&ctx.migration_id, &spec.name);
    let existing = match &store {
        Some(store) => store.load().await?,
        None => Vec::new(),
    };
    let segments = SegmentPlan::new(existing, settings.segments, shape.size_bytes);
    segments.log_resume(&spec.name);

    let concurrency = settings.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1);
    let limits = settings.rate_limits();
    let adaptive = limits.mode == RateMode::Adaptive && !ctx.dry_run;
    let failures_path = settings.failures_file.clone().unwrap_or_else(|| FailureLog::default_path(&ctx.migration_id));
    let engine = Arc::new(Engine {
        client: ctx.client.clone(),
        table: spec.table.clone(),
        key_names: shape.key_names,
        guard: spec.guard.clone(),
        mode,
        dry_run: ctx.dry_run,
        scan,
        transform,
        meter: Arc::new(Meter::resuming(&segments.earlier, segments.done_before)),
        failures: FailureLog::new(failures_path, ctx.migration_id.clone(), !ctx.dry_run),
        max_failures: settings.max_failures.unwrap_or(DEFAULT_MAX_FAILURES),
        max_conflict_retries: spec.max_conflict_retries,
        writes: Arc::new(Semaphore::new(concurrency)),
        stop: ctx.cancel.child_token(),
        diffs: Mutex::new(Vec::new()),
        sample_diffs: settings.sample_diffs.unwrap_or(DEFAULT_SAMPLE_DIFFS),
        rate: Arc::new(RateControl::new(&limits, adaptive, &shape.capacity)),
    });
    if adaptive {
        tracing::info!("backfill {}: {}", spec.name, rate::describe_start(&limits, &shape.capacity));
    }
    let controller = adaptive.then(|| Controller::spawn(engine.rate.clone(), env.retry_stats.clone()));
    let reporter = Reporter::spawn(
        engine.meter.clone(),
        ReportScope {
            label: format!("backfill {}", spec.name),
            estimated_items: Some(shape.item_count),
            total_segments: segments.total,
            mode: ctx.progress_mode,
            dry_run: ctx.dry_run,
            rate: Some(engine.rate.clone()),
        },
    );
    let delay = settings.batch_delay.unwrap_or(Duration::ZERO);
    let (total_segments, resumed) = (segments.total, segments.resumed);
    let first_error = run_workers(&engine, store.as_ref(), segments.pending(), concurrency, delay).await;
    reporter.finish().await;
    if let Some(controller) = controller {
        controller.finish().await;
    }

    let completed = engine.meter.segments_done.load(Relaxed) == u64::from(total_segments);
    if let Some(error) = first_error {
        tracing::error!("backfill {} stopped: {error}; its checkpoints are kept, `run` again to resume", spec.name);
        return Err(error.into());
    }
    if let (true, Some(store)) = (completed, &store) {
        store.clear(0..total_segments).await?;
    }
    let run = RunFacts {
        segments: total_segments,
        resumed,
        completed,
        interrupted: ctx.is_cancelled(),
        started,
        retry_reasons: env.retry_stats.snapshot().since(&retries_before),
    };
    let summary = summarize(&spec, &engine, &run);
    log_summary(&summary);
    env.record(summary.clone());
    Ok(summary)
}

/// The segments of a run: fresh, or where an interrupted run's checkpoints left them.
#[derive(Debug, PartialEq)]
struct SegmentPlan {
    checkpoints: Vec<Checkpoint>,
    total: u32,
    resumed: bool,
    /// What the interrupted runs did, for the progress line and the summary.
    earlier: Counts,
    done_before: u64,
}

impl SegmentPlan {
    /// A resumed backfill keeps the interrupted run's segment count whatever is asked now: the
    /// checkpoints' positions belong to that division of the table.
    fn new(existing: Vec<Checkpoint>, requested: Option<u32>, table_size_bytes: u64) -> Self {
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

    fn log_resume(&self, name: &str) {
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
    fn pending(self) -> VecDeque<Checkpoint> {
        self.checkpoints.into_iter().filter(|c| !c.done).collect()
    }
}

/// Runs the pending segments on at most `concurrency` workers; the first error stops them all.
async fn run_workers(
    engine: &Arc<Engine>,
    store: Option<&CheckpointStore>,
    pending: VecDeque<Checkpoint>,
    concurrency: usize,
    delay: Duration,
) -> Option<Error> {
    let workers = pending.len().min(concurrency);
    let queue = Arc::new(Mutex::new(pending));
    let mut tasks = JoinSet::new();
    for _ in 0..workers {
        let (engine, queue, store) = (engine.clone(), queue.clone(), store.cloned());
        tasks.spawn(async move {
            loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(checkpoint) = next else { return Ok(()) };
                if let Err(error) = run_segment(&engine, store.as_ref(), checkpoint, delay).await {
                    engine.stop.cancel();
                    return Err(error);
                }
            }
        });
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(|e| Error::Config(format!("a backfill worker panicked: {e}"))).and_then(|r| r);
        if let Err(error) = result {
            first_error.get_or_insert(error);
        }
    }
    first_error
}

/// Scans one segment page by page from its checkpoint; saves the checkpoint after each page's writes.
async fn run_segment(
    engine: &Arc<Engine>,
    store: Option<&CheckpointStore>,
    mut checkpoint: Checkpoint,
    delay: Duration,
) -> Result<(), Error> {
    let mut next = Some(fetch(engine.clone(), checkpoint.clone()));
    while let Some(fetching) = next.take() {
        if engine.stop.is_cancelled() {
            fetching.abort();
            return Ok(());
        }
        let page = fetching.await.map_err(|e| Error::Config(format!("a scan task failed: {e}")))??;
        // Read the following page while this one is written: the scan's latency hides behind the
        // writes. (With a delay between pages the pause comes first, as asked.)
        if let (Some(key), true) = (&page.last_key, delay.is_zero()) {
            next = Some(fetch(engine.clone(), Checkpoint { last_key: Some(key.clone()), ..checkpoint.clone() }));
        }
        engine.meter.scanned.fetch_add(page.scanned, Relaxed);
        engine.meter.filtered_out.fetch_add(page.scanned.saturating_sub(page.items.len() as u64), Relaxed);
        let mut counts = write::process_page(engine, page.items).await;
        counts.scanned = page.scanned;
        checkpoint.counts.add(&counts);
        checkpoint.last_key = page.last_key;
        checkpoint.done = checkpoint.last_key.is_none();
        if let Some(store) = store {
            store.save(&checkpoint).await?;
        }
        if checkpoint.done {
            engine.meter.segments_done.fetch_add(1, Relaxed);
            return Ok(());
        }
        if next.is_none() {
            tokio::select! {
                () = engine.stop.cancelled() => return Ok(()),
                () = tokio::time::sleep(delay) => {}
            }
            next = Some(fetch(engine.clone(), checkpoint.clone()));
        }
    }
    Ok(())
}

/// Reads one page of a segment in its own task, paced by the read-capacity limiter.
fn fetch(engine: Arc<Engine>, at: Checkpoint) -> tokio::task::JoinHandle<Result<Page, Error>> {
    tokio::spawn(async move {
        let reserved = engine.rate.read().await;
        let page = engine.scan.page(&engine.client, &at).await?;
        engine.rate.was_read(reserved, page.read_units);
        Ok(page)
    })
}

/// How a backfill run went, beyond the counters.
struct RunFacts {
    segments: u32,
    resumed: bool,
    completed: bool,
    interrupted: bool,
    started: Instant,
    retry_reasons: crate::aws::RetryCounts,
}

fn summarize(spec: &Backfill<'_>, engine: &Engine, run: &RunFacts) -> BackfillSummary {
    let counts = engine.meter.counts();
    let stopped = if run.completed {
        None
    } else if run.interrupted {
        Some("interrupted (Ctrl-C, SIGTERM or a lost lease)".to_string())
    } else if counts.failed > engine.max_failures {
        Some(format!("more than {} items failed (--max-failures)", engine.max_failures))
    } else {
        Some("stopped before every segment finished".to_string())
    };
    let elapsed = run.started.elapsed();
    let wrote_failures = counts.failed > 0 && !engine.dry_run;
    BackfillSummary {
        name: spec.name.clone(),
        table: spec.table.clone(),
        dry_run: engine.dry_run,
        write_mode: engine.mode,
        segments: run.segments,
        counts,
        conflicts: engine.meter.conflicts.load(Relaxed),
        retries: engine.meter.retries.load(Relaxed) + run.retry_reasons.total(),
        retry_reasons: run.retry_reasons,
        write_units: engine.rate.write_milliunits.load(Relaxed) as f64 / 1000.0,
        read_units: engine.rate.read_milliunits.load(Relaxed) as f64 / 1000.0,
        resumed: run.resumed,
        completed: run.completed,
        stopped,
        duration_ms: elapsed.as_millis() as u64,
        items_per_second: counts.scanned as f64 / elapsed.as_secs_f64().max(1e-3),
        failures_file: wrote_failures.then(|| engine.failures.path().display().to_string()),
        sample_diffs: engine.diffs.lock().map(|d| d.clone()).unwrap_or_default(),
    }
}

fn log_summary(s: &BackfillSummary) {
    let c = &s.counts;
    let verb = if s.dry_run { "would modify" } else { "modified" };
    tracing::info!(
        "backfill {} on {}: scanned {}, processed {}, {verb} {}, skipped {}, failed {}, conflicts {}, retries {} \
         in {:.1}s ({:.0} items/s, {} segments, {:?} mode{})",
        s.name,
        s.table,
        c.scanned,
        c.processed,
        c.modified,
        c.skipped,
        c.failed,
        s.conflicts,
        s.retries,
        s.duration_ms as f64 / 1000.0,
        s.items_per_second,
        s.segments,
        s.write_mode,
        if s.resumed { ", resumed from checkpoints" } else { "" }
    );
    if s.retry_reasons.total() > 0 {
        tracing::info!("backfill {}: requests retried by the SDK: {:?}", s.name, s.retry_reasons.by_reason());
    }
    if let Some(reason) = &s.stopped {
        tracing::warn!("backfill {} stopped: {reason}; checkpoints are kept: `run` again to resume", s.name);
    }
    if let Some(file) = &s.failures_file {
        tracing::warn!(
            "{} items failed; they are listed in {file}. Fix the transform or the items, then `run` again: \
             a finished backfill rescans from the start and skips what is already migrated",
            c.failed
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(scanned: u64) -> Counts {
        Counts { scanned, processed: scanned, modified: scanned, ..Counts::default() }
    }

    #[test]
    fn a_fresh_run_takes_the_requested_or_chosen_segments() {
        let plan = SegmentPlan::new(Vec::new(), Some(7), 0);
        assert_eq!((plan.total, plan.resumed, plan.done_before), (7, false, 0));
        assert_eq!(plan.pending().iter().map(|c| c.segment).collect::<Vec<_>>(), (0..7).collect::<Vec<_>>());
        assert_eq!(SegmentPlan::new(Vec::new(), None, 0).total, 4, "at least 4 segments");
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
