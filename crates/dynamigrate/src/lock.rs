//! The lease lock: one runner at a time per history table.
//!
//! A runner takes the lock item with a conditional write (absent, expired, or already ours), renews
//! it with a heartbeat while it runs, and releases it at the end. If the runner is killed the lease
//! simply expires and the next runner takes it over: no human is needed. Every history write checks
//! that the lock still carries the writer's `run_id` (fencing), so a runner that stalled past its
//! lease and was taken over cannot write.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, ReturnValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::attempt::RunIdentity;
use crate::clock::{now_ms, rfc3339};
use crate::history::build_error;
use crate::identity::process_alive;
use crate::Error;

const LOCK_KEY: &str = "LOCK";
pub const DEFAULT_LEASE: Duration = Duration::from_secs(60);

/// The lock item: who holds the lease and until when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockHolder {
    pub run_id: String,
    pub owner: String,
    pub host: String,
    pub pid: u32,
    pub user: String,
    pub stage: String,
    pub command: String,
    /// RFC 3339, for humans.
    pub acquired_at: String,
    pub expires_at: String,
    /// Epoch milliseconds, for the conditions.
    pub expires_at_ms: u64,
}

impl LockHolder {
    pub fn is_expired(&self) -> bool {
        self.expires_at_ms < now_ms()
    }
}

#[derive(Serialize, Deserialize)]
struct LockItem {
    pk: String,
    sk: String,
    entity: String,
    #[serde(flatten)]
    holder: LockHolder,
}

fn lock_key() -> HashMap<String, AttributeValue> {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(LOCK_KEY.into())),
        ("sk".to_string(), AttributeValue::S(LOCK_KEY.into())),
    ])
}

/// The condition every fenced write carries: the lock item still names `run_id`.
pub fn fence(table: &str, run_id: &str) -> Result<TransactWriteItem, Error> {
    let check = ConditionCheck::builder()
        .table_name(table)
        .set_key(Some(lock_key()))
        .condition_expression("run_id = :me")
        .expression_attribute_values(":me", AttributeValue::S(run_id.into()))
        .build()
        .map_err(|e| build_error(&e))?;
    Ok(TransactWriteItem::builder().condition_check(check).build())
}

/// Whether a fenced transaction failed because of the fence (index 0) rather than the write.
pub fn is_fence_failure(error: &SdkError<TransactWriteItemsError>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() else {
        return false;
    };
    cancelled
        .cancellation_reasons()
        .first()
        .and_then(|reason| reason.code())
        .is_some_and(|code| code == "ConditionalCheckFailed")
}

/// Whether a transaction was cancelled only for throttling or a transient conflict (worth retrying),
/// as DynamoDB reports them inside TransactionCanceledException.
pub fn is_throttled_transaction(error: &SdkError<TransactWriteItemsError>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() else {
        return false;
    };
    let codes: Vec<&str> =
        cancelled.cancellation_reasons().iter().filter_map(|r| r.code()).filter(|c| *c != "None").collect();
    !codes.is_empty() && codes.iter().all(|c| matches!(*c, "ThrottlingError" | "TransactionConflict"))
}

/// What `unlock` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "holder", rename_all = "snake_case")]
pub enum UnlockOutcome {
    NotLocked,
    Released(Box<LockHolder>),
}

/// The lock of one history table, seen from one runner.
#[derive(Clone)]
pub struct LeaseLock {
    client: Client,
    table: String,
    identity: RunIdentity,
    stage: String,
    lease: Duration,
}

impl LeaseLock {
    pub fn new(
        client: Client,
        table: impl Into<String>,
        identity: RunIdentity,
        stage: impl Into<String>,
        lease: Duration,
    ) -> Self {
        Self { client, table: table.into(), identity, stage: stage.into(), lease }
    }

    /// The current holder, expired or not (strongly consistent read). None if unlocked or no table.
    pub async fn holder(&self) -> Result<Option<LockHolder>, Error> {
        let result =
            self.client.get_item().table_name(&self.table).set_key(Some(lock_key())).consistent_read(true).send().await;
        let output = match result {
            Ok(output) => output,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => return Ok(None),
            Err(e) => return Err(Error::aws(format!("reading the lock in {}", self.table), e)),
        };
        output.item.map(decode_holder).transpose()
    }

    /// Takes the lease if it is free, expired or ours; otherwise `Error::LockHeld`.
    pub async fn try_acquire(&self, command: &str) -> Result<(), Error> {
        let now = now_ms();
        let expires = now + self.lease.as_millis() as u64;
        let holder = LockHolder {
            run_id: self.identity.run_id.clone(),
            owner: self.identity.owner.clone(),
            host: self.identity.host.clone(),
            pid: self.identity.pid,
            user: self.identity.user.clone(),
            stage: self.stage.clone(),
            command: command.to_string(),
            acquired_at: rfc3339(now),
            expires_at: rfc3339(expires),
            expires_at_ms: expires,
        };
        let item = LockItem { pk: LOCK_KEY.into(), sk: LOCK_KEY.into(), entity: "lock".into(), holder };
        let item: HashMap<String, AttributeValue> = serde_dynamo::aws_sdk_dynamodb_1::to_item(item)
            .map_err(|e| Error::Config(format!("cannot encode lock item: {e}")))?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR expires_at_ms < :now OR run_id = :me")
            .expression_attribute_values(":now", AttributeValue::N(now.to_string()))
            .expression_attribute_values(":me", AttributeValue::S(self.identity.run_id.clone()))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                if let Some(previous) = output.attributes.map(decode_holder).transpose()? {
                    if previous.run_id != self.identity.run_id {
                        tracing::warn!(
                            "took over the expired lease of {} on {} (pid {}), which expired {}",
                            previous.owner,
                            previous.host,
                            previous.pid,
                            previous.expires_at
                        );
                    }
                }
                Ok(())
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                match self.holder().await? {
                    Some(holder) => Err(Error::LockHeld(Box::new(holder))),
                    // Released between our write and our read: let the caller try again.
                    None => Box::pin(self.try_acquire(command)).await,
                }
            }
            Err(e) => Err(Error::aws(format!("taking the lock in {}", self.table), e)),
        }
    }

    /// Takes the lease, polling for up to `wait` while someone else holds it, and starts the heartbeat.
    pub async fn acquire(&self, command: &str, wait: Duration, cancel: CancellationToken) -> Result<Lease, Error> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut announced = false;
        loop {
            match self.try_acquire(command).await {
                Ok(()) => return Ok(self.start_heartbeat(cancel)),
                Err(Error::LockHeld(holder)) if tokio::time::Instant::now() < deadline => {
                    if !announced {
                        tracing::info!("locked by {} on {}; waiting up to {wait:?}", holder.owner, holder.host);
                        announced = true;
                    }
                    let pause = Duration::from_secs(2).min(deadline - tokio::time::Instant::now());
                    tokio::time::sleep(pause).await;
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// Extends our lease. `Error::LeaseLost` if someone else holds it now.
    async fn renew(&self) -> Result<(), Error> {
        let expires = now_ms() + self.lease.as_millis() as u64;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(lock_key()))
            .update_expression("SET expires_at_ms = :expires, expires_at = :expires_text")
            .condition_expression("run_id = :me")
            .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
            .expression_attribute_values(":expires_text", AttributeValue::S(rfc3339(expires)))
            .expression_attribute_values(":me", AttributeValue::S(self.identity.run_id.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(Error::LeaseLost)
            }
            Err(e) => Err(Error::aws("renewing the lease", e)),
        }
    }

    fn start_heartbeat(&self, cancel: CancellationToken) -> Lease {
        let lock = self.clone();
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let every = self.lease / 3;
        let heartbeat = tokio::spawn(async move {
            let mut lease_valid_until = tokio::time::Instant::now() + lock.lease;
            loop {
                tokio::select! {
                    () = stopped.cancelled() => return,
                    () = tokio::time::sleep(every) => {}
                }
                match lock.renew().await {
                    Ok(()) => lease_valid_until = tokio::time::Instant::now() + lock.lease,
                    Err(Error::LeaseLost) => {
                        tracing::error!("lost the lease: another runner took over the lock; stopping");
                        cancel.cancel();
                        return;
                    }
                    // A throttled or failed renewal is retried at the next beat; only when the lease
                    // runs out without one do we stop, since another runner may then take over.
                    Err(error) if tokio::time::Instant::now() >= lease_valid_until => {
                        tracing::error!("could not renew the lease before it expired ({error}); stopping");
                        cancel.cancel();
                        return;
                    }
                    Err(error) => tracing::warn!("lease renewal failed, will retry: {error}"),
                }
            }
        });
        Lease { lock: Arc::new(self.clone()), stop, heartbeat }
    }

    /// Deletes the lock item if `run_id` still holds it. Returns false if someone else holds it now.
    async fn delete_if_held_by(&self, run_id: &str) -> Result<bool, Error> {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(lock_key()))
            .condition_expression("run_id = :holder")
            .expression_attribute_values(":holder", AttributeValue::S(run_id.into()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
            Err(e) => Err(Error::aws(format!("releasing the lock in {}", self.table), e)),
        }
    }

    /// `dynamigrate unlock`: releases the lock. Without `force`, only a lease of the same owner
    /// whose process is no longer running on this host (a stale lock left by our own crash).
    pub async fn unlock(&self, force: bool) -> Result<UnlockOutcome, Error> {
        let Some(holder) = self.holder().await? else {
            return Ok(UnlockOutcome::NotLocked);
        };
        if !force {
            self.check_may_release(&holder)?;
        }
        if self.delete_if_held_by(&holder.run_id).await? {
            Ok(UnlockOutcome::Released(Box::new(holder)))
        } else {
            Err(Error::UnlockRefused(
                "the lock changed hands while unlocking; run `dynamigrate status` and try again".into(),
            ))
        }
    }

    fn check_may_release(&self, holder: &LockHolder) -> Result<(), Error> {
        let held = format!(
            "locked by {} on {} (pid {}) since {}, expires {}",
            holder.owner, holder.host, holder.pid, holder.acquired_at, holder.expires_at
        );
        if holder.owner != self.identity.owner {
            let hint = if holder.is_expired() { "; it has expired, so the next run takes it over anyway" } else { "" };
            return Err(Error::UnlockRefused(format!(
                "{held}: another owner's lease{hint}. Releasing it needs --force; make sure that runner is gone first"
            )));
        }
        let same_host = holder.host == self.identity.host;
        if same_host && process_alive(holder.pid) != Some(false) {
            return Err(Error::UnlockRefused(format!(
                "{held}: process {} on this host may still be running; stop it, or pass --force",
                holder.pid
            )));
        }
        if !same_host && !holder.is_expired() {
            return Err(Error::UnlockRefused(format!(
                "{held}: your lease from another host has not expired; pass --force if that runner is gone"
            )));
        }
        Ok(())
    }
}

fn decode_holder(item: HashMap<String, AttributeValue>) -> Result<LockHolder, Error> {
    serde_dynamo::aws_sdk_dynamodb_1::from_item::<LockItem>(item)
        .map(|i| i.holder)
        .map_err(|e| Error::Config(format!("the lock item is not readable by this version: {e}")))
}

/// A held lease. Stop it with [`Lease::release`]; if the process dies instead, the lease expires.
pub struct Lease {
    lock: Arc<LeaseLock>,
    stop: CancellationToken,
    heartbeat: JoinHandle<()>,
}

impl Lease {
    pub fn run_id(&self) -> &str {
        &self.lock.identity.run_id
    }

    /// Stops the heartbeat and deletes the lock item if it is still ours.
    pub async fn release(self) -> Result<(), Error> {
        self.stop.cancel();
        let _ = self.heartbeat.await;
        if !self.lock.delete_if_held_by(&self.lock.identity.run_id).await? {
            tracing::warn!("the lock was no longer ours at release (it expired and was taken over)");
        }
        Ok(())
    }
}
