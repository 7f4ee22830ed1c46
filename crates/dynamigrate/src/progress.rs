//! Progress for long work: an `indicatif` bar on a terminal, a log line every few seconds otherwise
//! (CI logs, Kubernetes), nothing when hidden. Counting is lock-free; only the periodic log takes a lock.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How a run shows progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    Bar,
    Log,
    Hidden,
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

/// A progress handle for one piece of work, e.g. scanning a table.
pub struct Progress {
    label: String,
    total: Option<u64>,
    done: AtomicU64,
    started: Instant,
    mode: ProgressMode,
    bar: Option<ProgressBar>,
    last_log: Mutex<Instant>,
}

impl Progress {
    pub fn new(label: impl Into<String>, total: Option<u64>, mode: ProgressMode) -> Self {
        let label = label.into();
        let bar = (mode == ProgressMode::Bar).then(|| new_bar(&label, total));
        let now = Instant::now();
        Self { label, total, done: AtomicU64::new(0), started: now, mode, bar, last_log: Mutex::new(now) }
    }

    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.set_position(done);
        } else if self.mode == ProgressMode::Log {
            self.maybe_log(done);
        }
    }

    pub fn position(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// Ends the bar (or logs a last line) with the final count and rate.
    pub fn finish(&self) {
        let done = self.position();
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if self.mode != ProgressMode::Hidden {
            tracing::info!("{}: {done} items in {:.1?} ({:.0}/s)", self.label, self.started.elapsed(), self.rate(done));
        }
    }

    fn maybe_log(&self, done: u64) {
        let Ok(mut last) = self.last_log.try_lock() else {
            return;
        };
        if last.elapsed() < LOG_EVERY {
            return;
        }
        *last = Instant::now();
        let rate = self.rate(done);
        match self.total {
            Some(total) if total > 0 => {
                let percent = done as f64 * 100.0 / total as f64;
                let eta = (rate > 0.0).then(|| total.saturating_sub(done) as f64 / rate);
                let eta = eta.map_or("unknown".to_string(), |s| format!("{s:.0}s"));
                tracing::info!("{}: {done}/~{total} ({percent:.1}%), {rate:.0}/s, ETA {eta}", self.label);
            }
            _ => tracing::info!("{}: {done}, {rate:.0}/s", self.label),
        }
    }

    fn rate(&self, done: u64) -> f64 {
        done as f64 / self.started.elapsed().as_secs_f64().max(1e-3)
    }
}

fn new_bar(label: &str, total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/~{len} ({percent}%) {per_sec} ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{prefix} {spinner} {pos} {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.set_prefix(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}
