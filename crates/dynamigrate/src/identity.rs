//! Who is running: recorded with every attempt and on the lock, so a human can find the runner.

use crate::attempt::RunIdentity;

impl RunIdentity {
    /// This process. The owner is `user@host`, or `DYNAMIGRATE_OWNER` when set (a Kubernetes pod name,
    /// a CI job id), so that the same owner may release its own stale lock without `--force`.
    pub fn current() -> Self {
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|h| h.trim().to_string()))
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "unknown-host".to_string());
        let user =
            std::env::var("USER").or_else(|_| std::env::var("USERNAME")).unwrap_or_else(|_| "unknown-user".to_string());
        let owner = std::env::var("DYNAMIGRATE_OWNER").ok().filter(|o| !o.is_empty());
        Self {
            run_id: uuid::Uuid::new_v4().to_string(),
            owner: owner.unwrap_or_else(|| format!("{user}@{host}")),
            host,
            pid: std::process::id(),
            user,
            tool_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

/// Whether a process with this pid exists on this machine; `None` where we cannot tell.
pub fn process_alive(pid: u32) -> Option<bool> {
    let proc = std::path::Path::new("/proc");
    proc.is_dir().then(|| proc.join(pid.to_string()).exists())
}
