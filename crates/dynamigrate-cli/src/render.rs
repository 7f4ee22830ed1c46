//! How the CLI shows what the core reports: progress as an `indicatif` bar on a terminal or a log
//! line every 5 s elsewhere (CI, Kubernetes), and each finished backfill as a log line. Log lines
//! go through `tracing`, so `--log-format json` turns them into JSON objects like any other log.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dynamigrate::backfill::BackfillSummary;
use dynamigrate::{Event, Observer, ProgressSnapshot};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a run shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Log,
}

impl ProgressMode {
    /// A bar when stderr is a terminal, log lines otherwise.
    pub fn detect() -> Self {
        if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Log
        }
    }
}

const LOG_EVERY: Duration = Duration::from_secs(5);

/// The CLI's [`Observer`].
pub struct Renderer {
    mode: ProgressMode,
    /// The command that resumes a stopped backfill: `run`, or `down`.
    resume: &'static str,
    /// Per label: its bar, or when its last log line went out.
    bars: Mutex<HashMap<String, ProgressBar>>,
    logged: Mutex<HashMap<String, Instant>>,
}

impl Renderer {
    pub fn new(mode: ProgressMode, resume: &'static str) -> Self {
        Self { mode, resume, bars: Mutex::default(), logged: Mutex::default() }
    }

    fn progress(&self, snapshot: &ProgressSnapshot) {
        match self.mode {
            ProgressMode::Bar => {
                let Ok(mut bars) = self.bars.lock() else { return };
                let bar = bars.entry(snapshot.label.clone()).or_insert_with(|| new_bar(&snapshot.label));
                bar.set_position(snapshot.permille());
                bar.set_message(snapshot.to_string());
            }
            ProgressMode::Log => {
                let Ok(mut logged) = self.logged.lock() else { return };
                let last = logged.entry(snapshot.label.clone()).or_insert_with(Instant::now);
                if last.elapsed() >= LOG_EVERY {
                    *last = Instant::now();
                    tracing::info!("{}: {snapshot}", snapshot.label);
                }
            }
        }
    }

    fn ended(&self, snapshot: &ProgressSnapshot) {
        if let Some(bar) = self.bars.lock().ok().and_then(|mut bars| bars.remove(&snapshot.label)) {
            bar.finish_and_clear();
        }
        if let Ok(mut logged) = self.logged.lock() {
            logged.remove(&snapshot.label);
        }
        // A backfill sums itself up when it finishes; a migration's own loop gets a last line.
        if snapshot.backfill.is_none() && snapshot.segments.is_none() {
            let seconds = snapshot.elapsed_ms as f64 / 1000.0;
            tracing::info!(
                "{}: {} items in {seconds:.1}s ({:.0}/s)",
                snapshot.label,
                snapshot.done,
                snapshot.per_second
            );
        }
    }
}

impl Observer for Renderer {
    fn on_event(&self, event: &Event<'_>) {
        match event {
            Event::Progress(snapshot) => self.progress(snapshot),
            Event::ProgressEnded(snapshot) => self.ended(snapshot),
            Event::BackfillFinished(summary) => log_summary(summary, self.resume),
            _ => {}
        }
    }
}

fn log_summary(summary: &BackfillSummary, resume: &str) {
    tracing::info!("{summary} on {} in {:.1}s", summary.table, summary.duration_ms as f64 / 1000.0);
    if let Some(reason) = &summary.stopped {
        tracing::warn!("backfill {} stopped: {reason}; checkpoints are kept: `{resume}` again to resume", summary.name);
    }
    if let Some(file) = &summary.failures_file {
        tracing::warn!(
            "{} items failed; they are listed in {file}. Fix the transform or the items, then `{resume}` again: \
             a finished backfill rescans from the start and skips what is already migrated",
            summary.counts.failed
        );
    }
}

fn new_bar(label: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(1000), ProgressDrawTarget::stderr());
    let style = ProgressStyle::with_template("{prefix} [{bar:25}] {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
    bar.set_style(style);
    bar.set_prefix(label.to_string());
    bar
}
