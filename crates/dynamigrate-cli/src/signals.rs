//! Ctrl-C and SIGTERM (as Kubernetes and ECS send it): ask the run to stop cleanly. Waits for the
//! lock end at once with nothing taken; a backfill finishes its in-flight writes, saves what it may
//! and releases the lock; the message says which command resumes the work.

use tokio_util::sync::CancellationToken;

use crate::output;

/// Cancels `token` on the first signal. Dropping the guard stops listening.
pub fn stop_on_signal(token: CancellationToken, command: &'static str) -> tokio_util::task::AbortOnDropHandle<()> {
    tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
        if shutdown_signal().await {
            output::error_line(&format!(
                "interrupted: stopping cleanly and saving checkpoints; `{command}` again to resume where it stopped"
            ));
            token.cancel();
        }
    }))
}

#[cfg(unix)]
async fn shutdown_signal() -> bool {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => tokio::select! {
            result = tokio::signal::ctrl_c() => result.is_ok(),
            received = terminate.recv() => received.is_some(),
        },
        Err(_) => tokio::signal::ctrl_c().await.is_ok(),
    }
}

#[cfg(not(unix))]
async fn shutdown_signal() -> bool {
    tokio::signal::ctrl_c().await.is_ok()
}
