//! The runner lock: one runner at a time per history table, as a [lease](super::lease) on the
//! `LOCK` item. A killed runner's lease simply expires and the next runner takes it over: no human
//! is needed. `unlock` releases it by hand, with rules that keep one from releasing a live runner's.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::keys::{Entity, ItemKey};
use super::lease::{Fence, HeldLease, LeaseTerms, Leased, Taken};
use super::Ledger;
use crate::attempt::RunIdentity;
use crate::identity::process_alive;
use crate::Error;

pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// Who holds the runner lock, beyond the lease itself: enough to find the machine and process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub user: String,
    pub stage: String,
    pub command: String,
}

/// The lock item: who holds the lease and until when.
pub type LockHolder = Leased<Holder>;

impl fmt::Display for LockHolder {
    /// `alice@build-7 on build-7 (pid 4242) since <time>, expires <time>`: the sentence every
    /// message about a held lock uses.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.holder;
        write!(f, "{} on {} (pid {}) since {}, expires {}", h.owner, h.host, h.pid, self.acquired_at, self.expires_at)
    }
}

/// What `unlock` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "holder", rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnlockOutcome {
    NotLocked,
    Released(Box<LockHolder>),
    /// `--force` removed a lock item no runner could read.
    ReleasedUnreadable,
}

/// Why `unlock` left the lock alone (releasing it anyway is the caller's `force`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnlockRefusal {
    #[error("locked by {holder}: another owner's lease{}", if *.expired { "; it has expired, so the next run takes it over anyway" } else { "" })]
    OtherOwner { holder: Box<LockHolder>, expired: bool },
    #[error("locked by {holder}: process {} on this host may still be running; stop it first", .holder.holder.pid)]
    MaybeRunning { holder: Box<LockHolder> },
    #[error("locked by {holder}: your lease from another host has not expired")]
    NotExpired { holder: Box<LockHolder> },
    #[error("the lock changed hands while unlocking; look at the status and try again")]
    ChangedHands,
}

/// The lock of one history table, seen from one runner.
#[derive(Clone)]
pub struct LeaseLock {
    ledger: Ledger,
    identity: RunIdentity,
    stage: String,
    lease: Duration,
}

impl LeaseLock {
    pub fn new(ledger: Ledger, identity: RunIdentity, stage: impl Into<String>, lease: Duration) -> Self {
        Self { ledger, identity, stage: stage.into(), lease }
    }

    /// What this runner's fenced writes check: the lock still names its run id.
    pub fn fence(&self) -> Fence {
        Fence::new(ItemKey::lock(), self.identity.run_id.clone())
    }

    /// The current holder, expired or not (strongly consistent read). None if unlocked or no table.
    pub async fn holder(&self) -> Result<Option<LockHolder>, Error> {
        self.ledger.read_lease(&ItemKey::lock()).await
    }

    /// Takes the lease if it is free, expired or ours; otherwise `Error::LockHeld`.
    pub async fn try_acquire(&self, command: &str) -> Result<(), Error> {
        let holder = Holder {
            owner: self.identity.owner.clone(),
            host: self.identity.host.clone(),
            pid: self.identity.pid,
            user: self.identity.user.clone(),
            stage: self.stage.clone(),
            command: command.to_string(),
        };
        let terms = LeaseTerms { token: self.identity.run_id.clone(), length: self.lease };
        match self.ledger.take_lease(&ItemKey::lock(), Entity::Lock, &terms, &holder).await? {
            Taken::Ours { previous: Some(previous) } => {
                tracing::warn!(
                    "took over the expired lease of {} on {} (pid {}), which expired {}",
                    previous.holder.owner,
                    previous.holder.host,
                    previous.holder.pid,
                    previous.expires_at
                );
                Ok(())
            }
            Taken::Ours { previous: None } => Ok(()),
            Taken::Held(holder) => Err(Error::LockHeld(Box::new(holder))),
        }
    }

    /// Takes the lease, polling for up to `wait` while someone else holds it, and starts the
    /// heartbeat; losing the lease later cancels `cancel`.
    /// Waiting stops at once when `cancel` is cancelled (Ctrl-C), with nothing taken.
    pub async fn acquire(&self, command: &str, wait: Duration, cancel: CancellationToken) -> Result<HeldLease, Error> {
        let now = tokio::time::Instant::now();
        // A wait too long to add is as good as forever.
        let deadline = now.checked_add(wait).unwrap_or(now + Duration::from_secs(100 * 365 * 86_400));
        let mut announced = false;
        loop {
            match self.try_acquire(command).await {
                Ok(()) => return Ok(HeldLease::start(self.ledger.clone(), self.fence(), self.lease, cancel)),
                Err(Error::LockHeld(holder)) if tokio::time::Instant::now() < deadline => {
                    if !announced {
                        tracing::info!("locked by {holder}; waiting up to {wait:?}");
                        announced = true;
                    }
                    let pause = Duration::from_secs(2).min(deadline - tokio::time::Instant::now());
                    tokio::select! {
                        () = tokio::time::sleep(pause) => {}
                        () = cancel.cancelled() => {
                            return Err(Error::Interrupted { while_: format!("waiting for the lock held by {holder}") });
                        }
                    }
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// `dynamigrate unlock`: releases the lock. Without `force`, only a lease of the same owner
    /// whose process is no longer running (a stale lock left by our own crash).
    /// With `force`, a lock item no runner can read is removed too: a malformed lock must never block
    /// every command for good.
    pub async fn unlock(&self, force: bool) -> Result<UnlockOutcome, Error> {
        let holder = match self.holder().await {
            Ok(Some(holder)) => holder,
            Ok(None) => return Ok(UnlockOutcome::NotLocked),
            Err(Error::CorruptLedger { .. }) if force => {
                self.ledger.remove(&ItemKey::lock()).await?;
                return Ok(UnlockOutcome::ReleasedUnreadable);
            }
            Err(error) => return Err(error),
        };
        if !force {
            self.check_may_release(&holder).map_err(Error::UnlockRefused)?;
        }
        if self.ledger.release_lease(&Fence::new(ItemKey::lock(), holder.run_id.clone())).await? {
            Ok(UnlockOutcome::Released(Box::new(holder)))
        } else {
            Err(Error::UnlockRefused(UnlockRefusal::ChangedHands))
        }
    }

    fn check_may_release(&self, holder: &LockHolder) -> Result<(), UnlockRefusal> {
        let boxed = || Box::new(holder.clone());
        if holder.holder.owner != self.identity.owner {
            return Err(UnlockRefusal::OtherOwner { holder: boxed(), expired: holder.is_expired() });
        }
        let same_host = holder.holder.host == self.identity.host;
        if same_host && process_alive(holder.holder.pid) != Some(false) {
            return Err(UnlockRefusal::MaybeRunning { holder: boxed() });
        }
        if !same_host && !holder.is_expired() {
            return Err(UnlockRefusal::NotExpired { holder: boxed() });
        }
        Ok(())
    }
}
