//! The one patient wait of the safety rails: poll until something is ready, with a timeout, stopping
//! at once on cancellation (Ctrl-C), telling the observer how long it has waited.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::events::{Observer, Progress};
use crate::Error;

/// How long to wait for a backup, restore or export, and who hears about it.
#[derive(Clone)]
pub struct Patience {
    pub timeout: Duration,
    pub cancel: CancellationToken,
    pub observer: Arc<dyn Observer>,
}

/// Polls `check` (which answers `Some(done)` once finished) until it is, backing off from 1 s to
/// 5 s between polls; `what` names the wait in progress lines and errors.
pub(crate) async fn until<T, F, Fut>(patience: &Patience, what: &str, mut check: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let started = Instant::now();
    // Counts the seconds waited: the progress line shows them, and the time so far.
    let progress = Progress::new(format!("waiting for {what}"), None, patience.observer.clone());
    let mut pause = Duration::from_secs(1);
    loop {
        if let Some(done) = check().await? {
            progress.finish();
            return Ok(done);
        }
        if started.elapsed() >= patience.timeout {
            return Err(Error::Timeout { what: what.to_string(), after: patience.timeout });
        }
        let left = patience.timeout.saturating_sub(started.elapsed());
        tokio::select! {
            () = patience.cancel.cancelled() => return Err(Error::Interrupted { while_: format!("waiting for {what}") }),
            () = tokio::time::sleep(pause.min(left)) => {}
        }
        progress.inc(pause.as_secs());
        pause = (pause + Duration::from_secs(1)).min(Duration::from_secs(5));
    }
}
