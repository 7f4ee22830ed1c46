//! The one patient wait of the safety rails: poll until something is ready, with a timeout, stopping
//! at once on cancellation (Ctrl-C), saying in the log every 15 s how long it has waited. (A backup or
//! restore reports no fraction done, so there is no bar to draw, only the time against the timeout.)

use std::future::Future;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::Error;

/// How long to wait for a backup, restore or export, and what stops the wait.
#[derive(Clone)]
pub struct Patience {
    pub timeout: Duration,
    pub cancel: CancellationToken,
}

const SAY_EVERY: Duration = Duration::from_secs(15);

/// Polls `check` (which answers `Some(done)` once finished) until it is, backing off from 1 s to
/// 5 s between polls; `what` names the wait in progress lines and errors.
pub(crate) async fn until<T, F, Fut>(patience: &Patience, what: &str, mut check: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>, Error>>,
{
    let started = Instant::now();
    let mut said = started;
    let mut pause = Duration::from_secs(1);
    loop {
        if let Some(done) = check().await? {
            tracing::info!("{what}: ready after {:.0}s", started.elapsed().as_secs_f64());
            return Ok(done);
        }
        if said.elapsed() >= SAY_EVERY {
            said = Instant::now();
            let (waited, limit) = (started.elapsed().as_secs(), patience.timeout.as_secs());
            tracing::info!("still waiting for {what}: {waited}s so far, at most {limit}s");
        }
        if started.elapsed() >= patience.timeout {
            return Err(Error::Timeout { what: what.to_string(), after: patience.timeout });
        }
        let left = patience.timeout.saturating_sub(started.elapsed());
        tokio::select! {
            () = patience.cancel.cancelled() => return Err(Error::Interrupted { while_: format!("waiting for {what}") }),
            () = tokio::time::sleep(pause.min(left)) => {}
        }
        pause = (pause + Duration::from_secs(1)).min(Duration::from_secs(5));
    }
}
