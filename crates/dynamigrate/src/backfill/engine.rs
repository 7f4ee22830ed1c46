//! A pass over a table, wired together: describe the table, plan the segments from the
//! checkpoints, set up the meter, the rate limits and the progress reporter, run the page
//! pipeline into a sink, and sum up. [`run`] is a backfill (the sink is a writer); [`pass`] runs
//! any sink, such as a read-only count.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Instant;

use super::failures::FailureLog;
use super::meter::Meter;
use super::pipeline::{page_room, Pipeline};
use super::progress::{ReportScope, Reporter, Writes};
use super::rate::{self, Controller, RateControl, RateMode};
use super::scan::ScanRequest;
use super::segments::SegmentPlan;
use super::settings::{
    WriteMode, DEFAULT_MAX_CONFLICT_RETRIES, DEFAULT_MAX_FAILURES, DEFAULT_PAGE_SIZE, DEFAULT_SAMPLE_DIFFS,
    SEGMENTS_AT_ONCE,
};
use super::sink::PageSink;
use super::spec::BackfillSpec;
use super::summary::BackfillSummary;
use super::table::{describe, TableShape};
use super::transform::Transform;
use super::window::{memory_bound, Steering, Window, START_WINDOW};
use super::writer::{BatchWriter, DiffSample, GuardedWriter, Writer, BATCH_LIMIT};
use super::{ScanReport, Scope};
use crate::events::{millis, Event};
use crate::ledger::CheckpointStore;
use crate::Error;

/// Runs a backfill: every selected item through `transform`, changes written as the spec says.
/// A backfill that stops on an error returns [`Error::Backfill`] with what it did until then.
pub async fn run(
    spec: &BackfillSpec,
    transform: Arc<dyn Transform>,
    scope: &Scope,
    checkpoints: Option<CheckpointStore>,
) -> Result<BackfillSummary, Error> {
    let retries_before = scope.retry_stats.snapshot();
    let prepared = Prepared::new(spec, scope, checkpoints, true, None).await?;
    let mode = spec.settings.write_mode.unwrap_or_default();
    if mode == WriteMode::Batch && prepared.pipeline.scan.is_projected() {
        return Err(Error::Invalid(
            "batch mode writes whole items, so it cannot work on a projection; drop the projection or use update mode"
                .into(),
        ));
    }
    let (window, steering) = window(spec, mode, scope, &prepared);
    let writer = Arc::new(writer(spec, transform, scope, &prepared, window.clone()));
    let sink: Arc<dyn PageSink> = match mode {
        WriteMode::Update => Arc::new(GuardedWriter(writer.clone())),
        WriteMode::Batch => Arc::new(BatchWriter(writer.clone())),
    };
    let writes = Writes { dry_run: scope.dry_run, rate: prepared.pipeline.rate.clone(), window: window.clone() };
    let ran = prepared.execute(sink, Some(writes), scope).await;
    if let Some(steering) = steering {
        steering.finish().await;
    }
    let summary = BackfillSummary {
        name: spec.name.clone(),
        table: spec.table.clone(),
        dry_run: scope.dry_run,
        write_mode: mode,
        segments: ran.report.segments,
        counts: ran.report.counts,
        conflicts: ran.meter.conflicts.load(Relaxed),
        retries: ran.meter.retries.load(Relaxed) + scope.retry_stats.snapshot().since(&retries_before).total(),
        retry_reasons: scope.retry_stats.snapshot().since(&retries_before),
        write_units: ran.rate.write_milliunits.load(Relaxed) as f64 / 1000.0,
        read_units: ran.report.read_units,
        resumed: ran.report.resumed,
        completed: ran.report.completed,
        stopped: stopped(&ran.report, scope, writer.max_failures),
        duration_ms: ran.report.duration_ms,
        items_per_second: ran.report.items_per_second(),
        round_trip_ms: window.round_trip().map(|rtt| rtt.as_secs_f64() * 1000.0),
        window: window.size(),
        largest_window: window.largest(),
        window_pinned: window.is_pinned(),
        failures_file: writer.failures.filed_in().map(|path| path.display().to_string()),
        sample_diffs: writer.diffs.taken(),
    };
    finish(summary, ran.error, ran.checkpoints.as_ref().filter(|_| ran.report.completed), scope).await
}

/// Runs `sink` over the spec's selection through the same pipeline a backfill uses (segments,
/// read-ahead, read-rate limit, progress, checkpoints if given). The sink keeps its own result.
pub async fn pass(
    spec: &BackfillSpec,
    sink: Arc<dyn PageSink>,
    scope: &Scope,
    checkpoints: Option<CheckpointStore>,
) -> Result<ScanReport, Error> {
    let ran = Prepared::new(spec, scope, checkpoints, false, None).await?.execute(sink, None, scope).await;
    match ran.error {
        Some(error) => Err(error),
        None => Ok(ran.report),
    }
}

/// Runs `sink` over a random `percent` of the table's scan segments (at least one): an estimate
/// in a fraction of a full pass's time. Returns the report and how many segments were scanned of
/// `report.segments`.
pub async fn sample(
    spec: &BackfillSpec,
    sink: Arc<dyn PageSink>,
    scope: &Scope,
    percent: f64,
) -> Result<(ScanReport, u32), Error> {
    let prepared = Prepared::new(spec, scope, None, false, Some(percent)).await?;
    let scanned = prepared.plan.len() as u32;
    let ran = prepared.execute(sink, None, scope).await;
    match ran.error {
        Some(error) => Err(error),
        None => Ok((ran.report, scanned)),
    }
}

/// Tells the observer, clears the checkpoints of a finished backfill, and turns an error into one
/// that carries the summary.
async fn finish(
    summary: BackfillSummary,
    error: Option<Error>,
    finished: Option<&CheckpointStore>,
    scope: &Scope,
) -> Result<BackfillSummary, Error> {
    let cleared = match (&error, finished) {
        (None, Some(store)) => store.clear(0..summary.segments).await.err(),
        _ => None,
    };
    scope.observer.on_event(&Event::BackfillFinished(&summary));
    match error.or(cleared) {
        Some(source) => {
            tracing::error!("backfill {} stopped: {source}; its checkpoints are kept", summary.name);
            Err(Error::Backfill { summary: Box::new(summary), source: Box::new(source) })
        }
        None => Ok(summary),
    }
}

fn stopped(report: &ScanReport, scope: &Scope, max_failures: u64) -> Option<String> {
    if report.completed {
        None
    } else if scope.cancel.is_cancelled() {
        Some("interrupted (Ctrl-C, SIGTERM or a lost lease)".to_string())
    } else if report.counts.failed > max_failures {
        Some(format!("more than {max_failures} items failed (max_failures)"))
    } else {
        Some("stopped before every segment finished".to_string())
    }
}

/// The run's in-flight window: pinned by `concurrency`, else adaptive from [`START_WINDOW`] and
/// steered (a dry run sends nothing to measure), no wider than memory allows for the table's items.
fn window(spec: &BackfillSpec, mode: WriteMode, scope: &Scope, prepared: &Prepared) -> (Arc<Window>, Option<Steering>) {
    let pinned = spec.settings.concurrency.map(|n| n as usize);
    let window = Window::new(pinned.unwrap_or(START_WINDOW), pinned.is_some());
    let items_per_request = if mode == WriteMode::Batch { BATCH_LIMIT } else { 1 };
    let steering = (!scope.dry_run && pinned.is_none()).then(|| {
        let max = memory_bound(prepared.shape.mean_item_bytes(), items_per_request as u64);
        let (rate, retries) = (prepared.pipeline.rate.clone(), scope.retry_stats.clone());
        Steering::spawn(window.clone(), max, rate, retries, items_per_request as f64)
    });
    (window, steering)
}

fn writer(
    spec: &BackfillSpec,
    transform: Arc<dyn Transform>,
    scope: &Scope,
    prepared: &Prepared,
    window: Arc<Window>,
) -> Writer {
    let settings = &spec.settings;
    let owner = scope.migration.as_ref().map_or(spec.name.as_str(), |id| id.as_str());
    let path = settings.failures_file.clone().unwrap_or_else(|| FailureLog::default_path(owner));
    let pipeline = &prepared.pipeline;
    Writer {
        client: scope.client.clone(),
        table: spec.table.clone(),
        key_names: prepared.shape.key_names.clone(),
        guard: spec.guard.clone(),
        transform,
        dry_run: scope.dry_run,
        reads: pipeline.scan.clone(),
        rate: pipeline.rate.clone(),
        window,
        meter: pipeline.meter.clone(),
        failures: FailureLog::new(path, scope.migration.clone(), !scope.dry_run),
        max_failures: settings.max_failures.unwrap_or(DEFAULT_MAX_FAILURES),
        max_conflict_retries: settings.max_conflict_retries.unwrap_or(DEFAULT_MAX_CONFLICT_RETRIES),
        stop: pipeline.stop.clone(),
        interrupt: scope.cancel.clone(),
        diffs: DiffSample::new(settings.sample_diffs.unwrap_or(DEFAULT_SAMPLE_DIFFS) as usize),
    }
}

/// A pass ready to run: the table described, the segments planned, the pipeline built.
struct Prepared {
    label: String,
    shape: TableShape,
    plan: SegmentPlan,
    pipeline: Arc<Pipeline>,
    workers: usize,
    adaptive: bool,
    started: Instant,
}

/// What running a pass left.
struct Ran {
    report: ScanReport,
    error: Option<Error>,
    meter: Arc<Meter>,
    rate: Arc<RateControl>,
    checkpoints: Option<CheckpointStore>,
}

impl Prepared {
    async fn new(
        spec: &BackfillSpec,
        scope: &Scope,
        checkpoints: Option<CheckpointStore>,
        writes: bool,
        sample: Option<f64>,
    ) -> Result<Self, Error> {
        let started = Instant::now();
        let settings = &spec.settings;
        settings.validate()?;
        // The table and the checkpoints are read together: two round trips in line before the
        // first scan would be 200 ms at a 100 ms round trip.
        let load = async {
            match &checkpoints {
                Some(store) => store.load().await,
                None => Ok(Vec::new()),
            }
        };
        let (shape, existing) = tokio::join!(describe(&scope.client, &spec.table), load);
        let (shape, existing) = (shape?, existing?);
        if let Some(store) = &checkpoints {
            store.check_positions(&existing, &shape.key_names)?;
        }
        let page_size = settings.page_size.unwrap_or(DEFAULT_PAGE_SIZE);
        let scan = ScanRequest::build(&spec.table, &spec.selection, &shape.key_names, page_size)?;
        let plan = match sample {
            Some(percent) => SegmentPlan::sample(shape.item_count, percent),
            None => SegmentPlan::new(existing, settings.segments, shape.size_bytes),
        };
        plan.log_resume(&spec.name);
        let limits = settings.rate_limits();
        let adaptive = writes && limits.mode == RateMode::Adaptive && !scope.dry_run;
        if adaptive {
            tracing::info!("backfill {}: {}", spec.name, rate::describe_start(&limits, &shape.capacity));
        }
        let stop = scope.cancel.child_token();
        let pipeline = Arc::new(Pipeline {
            client: scope.client.clone(),
            scan: Arc::new(scan),
            // Pacing waits end on an interrupt, not on the failure limit: that one finishes its pages.
            rate: Arc::new(RateControl::new(&limits, adaptive, &shape.capacity, scope.cancel.clone())),
            meter: Arc::new(Meter::resuming(&plan.earlier, plan.done_before)),
            stop,
            checkpoints,
            page_delay: settings.page_delay(),
            room: page_room(),
        });
        let kind = if writes { "backfill" } else { "scan" };
        let workers = SEGMENTS_AT_ONCE;
        Ok(Self { label: format!("{kind} {}", spec.name), shape, plan, pipeline, workers, adaptive, started })
    }

    /// Runs the pipeline into `sink` with the progress reporter (and the adaptive controller)
    /// alongside, and says how it went.
    async fn execute(self, sink: Arc<dyn PageSink>, writes: Option<Writes>, scope: &Scope) -> Ran {
        let Self { label, shape, plan, pipeline, workers, adaptive, started } = self;
        let controller = adaptive.then(|| Controller::spawn(pipeline.rate.clone(), scope.retry_stats.clone()));
        let report_scope = ReportScope {
            label,
            estimated_items: Some(plan.share_of(shape.item_count)),
            total_segments: plan.len() as u32,
            writes,
            observer: scope.observer.clone(),
            completion: scope.completion.clone(),
        };
        let reporter = Reporter::spawn(pipeline.meter.clone(), report_scope);
        let (segments, resumed, expected) = (plan.total, plan.resumed, plan.len() as u64);
        let error = pipeline.clone().run(plan.pending(), workers, sink).await;
        reporter.finish().await;
        if let Some(controller) = controller {
            controller.finish().await;
        }
        let meter = pipeline.meter.clone();
        let report = ScanReport {
            segments,
            counts: meter.counts(),
            resumed,
            completed: meter.segments_done.load(Relaxed) == expected,
            duration_ms: millis(started.elapsed()),
            read_units: pipeline.rate.read_milliunits.load(Relaxed) as f64 / 1000.0,
        };
        Ran { report, error, meter, rate: pipeline.rate.clone(), checkpoints: pipeline.checkpoints.clone() }
    }
}
