//! One lease on one ledger item: taken with a conditional write (the item is free, expired, or
//! already ours), renewed by a heartbeat, released at the end, and proven by a fencing token that
//! every write made under it checks. The runner lock is such a lease today; scan-segment leases
//! for many workers will be leases on checkpoint items.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, ReturnValue, TransactWriteItem};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::keys::{Entity, ItemKey};
use super::Ledger;
use crate::clock::{now_ms, rfc3339};
use crate::Error;

/// A lease item as stored: who holds it (`run_id`, the fencing token), until when, and the
/// holder's details `P`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leased<P> {
    pub run_id: String,
    /// RFC 3339, for humans.
    pub acquired_at: String,
    pub expires_at: String,
    /// Epoch milliseconds, for the conditions.
    pub expires_at_ms: u64,
    #[serde(flatten)]
    pub holder: P,
}

impl<P> Leased<P> {
    pub fn is_expired(&self) -> bool {
        self.expires_at_ms < now_ms()
    }
}

/// Who takes a lease and for how long.
#[derive(Debug, Clone)]
pub struct LeaseTerms {
    /// Unique per holder: the fencing token.
    pub token: String,
    pub length: Duration,
}

/// Proof of holding a lease: a write made under it checks the lease item still carries the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    key: ItemKey,
    token: String,
}

impl Fence {
    pub fn new(key: ItemKey, token: impl Into<String>) -> Self {
        Self { key, token: token.into() }
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The condition a fenced transaction carries first.
    pub(crate) fn check(&self, table: &str) -> Result<TransactWriteItem, Error> {
        let check = ConditionCheck::builder()
            .table_name(table)
            .set_key(Some(self.key.to_item()))
            .condition_expression("run_id = :me")
            .expression_attribute_values(":me", AttributeValue::S(self.token.clone()))
            .build()
            .map_err(Error::request)?;
        Ok(TransactWriteItem::builder().condition_check(check).build())
    }
}

/// What taking a lease found.
pub(crate) enum Taken<P> {
    /// Ours now; `previous` is the expired lease of someone else we took over, if any.
    Ours { previous: Option<Leased<P>> },
    /// Someone else holds it.
    Held(Leased<P>),
}

impl Ledger {
    /// The lease on `key`, expired or not (strongly consistent); None if free or there is no table.
    pub(crate) async fn read_lease<P: DeserializeOwned>(&self, key: &ItemKey) -> Result<Option<Leased<P>>, Error> {
        let read = self.client().get_item().table_name(self.table()).set_key(Some(key.to_item())).consistent_read(true);
        match read.send().await {
            Ok(output) => output.item.map(|item| self.decode(Entity::Lock, item)).transpose(),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(None),
            Err(e) => Err(Error::aws(format!("reading {key} in {}", self.table()), e)),
        }
    }

    /// Takes the lease on `key` if it is free, expired or already ours. The write is an update, so
    /// the item's other attributes (a checkpoint's position, say) stay as they are.
    pub(crate) async fn take_lease<P>(
        &self,
        key: &ItemKey,
        entity: Entity,
        terms: &LeaseTerms,
        holder: &P,
    ) -> Result<Taken<P>, Error>
    where
        P: Serialize + DeserializeOwned + Clone,
    {
        // Released between a refused write and the read that follows: try again, a few times.
        for _ in 0..5 {
            if let Some(taken) = self.try_take_lease(key, entity, terms, holder).await? {
                return Ok(taken);
            }
        }
        Err(Error::Aws {
            context: format!("taking {key} in {}", self.table()),
            message: "the lease kept changing hands; try again".into(),
        })
    }

    async fn try_take_lease<P>(
        &self,
        key: &ItemKey,
        entity: Entity,
        terms: &LeaseTerms,
        holder: &P,
    ) -> Result<Option<Taken<P>>, Error>
    where
        P: Serialize + DeserializeOwned + Clone,
    {
        let now = now_ms();
        let expires = now.saturating_add(terms.length.as_millis() as u64);
        let lease = Leased {
            run_id: terms.token.clone(),
            acquired_at: rfc3339(now),
            expires_at: rfc3339(expires),
            expires_at_ms: expires,
            holder: holder.clone(),
        };
        let item: crate::aws::Item = serde_dynamo::aws_sdk_dynamodb_1::to_item(lease).map_err(Error::request)?;
        // Sorted, so the expression is the same for the same item.
        let mut attributes: BTreeMap<String, AttributeValue> = item.into_iter().collect();
        attributes.insert("entity".into(), AttributeValue::S(entity.as_str().into()));
        let (update, names, mut values) = set_expression(attributes);
        values.insert(":now".into(), AttributeValue::N(now.to_string()));
        values.insert(":me".into(), AttributeValue::S(terms.token.clone()));
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key.to_item()))
            .update_expression(update)
            .condition_expression("attribute_not_exists(pk) OR expires_at_ms < :now OR run_id = :me")
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let old = output.attributes.filter(|item| item.contains_key("run_id"));
                let previous = old.and_then(|item| match self.decode::<Leased<P>>(entity, item) {
                    Ok(previous) => Some(previous),
                    Err(error) => {
                        // It is ours now, whatever it held before; say so and go on.
                        tracing::warn!("took over a lease whose item was unreadable: {error}");
                        None
                    }
                });
                let previous = previous.filter(|p| p.run_id != terms.token);
                Ok(Some(Taken::Ours { previous }))
            }
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Ok(self.read_lease(key).await?.map(Taken::Held))
            }
            Err(e) => Err(Error::aws(format!("taking {key} in {}", self.table()), e)),
        }
    }

    /// Extends a lease we hold. `Error::LeaseLost` if someone else holds it now.
    pub(crate) async fn renew_lease(&self, fence: &Fence, length: Duration) -> Result<(), Error> {
        let expires = now_ms().saturating_add(length.as_millis() as u64);
        let result = self
            .client()
            .update_item()
            .table_name(self.table())
            .set_key(Some(fence.key.to_item()))
            .update_expression("SET expires_at_ms = :expires, expires_at = :expires_text")
            .condition_expression("run_id = :me")
            .expression_attribute_values(":expires", AttributeValue::N(expires.to_string()))
            .expression_attribute_values(":expires_text", AttributeValue::S(rfc3339(expires)))
            .expression_attribute_values(":me", AttributeValue::S(fence.token.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => {
                Err(Error::LeaseLost)
            }
            Err(e) => Err(Error::aws(format!("renewing the lease on {}", fence.key), e)),
        }
    }

    /// Deletes an item whatever it holds (`unlock --force` on a lock no one can read).
    pub(crate) async fn remove(&self, key: &ItemKey) -> Result<(), Error> {
        let delete = self.client().delete_item().table_name(self.table()).set_key(Some(key.to_item()));
        delete.send().await.map(drop).map_err(|e| Error::aws(format!("deleting {key} in {}", self.table()), e))
    }

    /// Deletes the lease item if `fence` still holds it. False if someone else holds it now.
    pub(crate) async fn release_lease(&self, fence: &Fence) -> Result<bool, Error> {
        let result = self
            .client()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(fence.key.to_item()))
            .condition_expression("run_id = :holder")
            .expression_attribute_values(":holder", AttributeValue::S(fence.token.clone()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
            Err(e) => Err(Error::aws(format!("releasing {} in {}", fence.key, self.table()), e)),
        }
    }
}

/// `SET #a0 = :v0, ...` for every attribute, with its placeholders.
type Placeholders<T> = std::collections::HashMap<String, T>;
fn set_expression(
    attributes: BTreeMap<String, AttributeValue>,
) -> (String, Placeholders<String>, Placeholders<AttributeValue>) {
    let (mut names, mut values, mut clauses) = (Placeholders::new(), Placeholders::new(), Vec::new());
    for (i, (name, value)) in attributes.into_iter().filter(|(name, _)| name != "pk" && name != "sk").enumerate() {
        clauses.push(format!("#a{i} = :v{i}"));
        names.insert(format!("#a{i}"), name);
        values.insert(format!(":v{i}"), value);
    }
    (format!("SET {}", clauses.join(", ")), names, values)
}

/// A lease we hold, kept alive by a heartbeat every third of its length. Release it with
/// [`HeldLease::release`]; if the process dies instead, the lease simply expires.
pub struct HeldLease {
    ledger: Ledger,
    fence: Fence,
    stop: CancellationToken,
    heartbeat: JoinHandle<()>,
}

impl HeldLease {
    /// Starts the heartbeat. When the lease is lost (someone else holds it, or it ran out before a
    /// renewal got through), `on_loss` is cancelled: whoever works under the lease must stop.
    pub(crate) fn start(ledger: Ledger, fence: Fence, length: Duration, on_loss: CancellationToken) -> Self {
        let stop = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat(ledger.clone(), fence.clone(), length, stop.clone(), on_loss));
        Self { ledger, fence, stop, heartbeat }
    }

    pub fn fence(&self) -> &Fence {
        &self.fence
    }

    /// Stops the heartbeat and deletes the lease item if it is still ours.
    pub async fn release(self) -> Result<(), Error> {
        self.stop.cancel();
        let _ = self.heartbeat.await;
        if !self.ledger.release_lease(&self.fence).await? {
            tracing::warn!(
                "the lease on {} was no longer ours at release (it expired and was taken over)",
                self.fence.key
            );
        }
        Ok(())
    }
}

async fn heartbeat(
    ledger: Ledger,
    fence: Fence,
    length: Duration,
    stop: CancellationToken,
    on_loss: CancellationToken,
) {
    let mut valid_until = tokio::time::Instant::now() + length;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(length / 3) => {}
        }
        match ledger.renew_lease(&fence, length).await {
            Ok(()) => valid_until = tokio::time::Instant::now() + length,
            Err(Error::LeaseLost) => {
                tracing::error!("lost the lease on {}: another runner took it over; stopping", fence.key);
                on_loss.cancel();
                return;
            }
            // A throttled or failed renewal is retried at the next beat; only when the lease runs
            // out without one do we stop, since another runner may then take over.
            Err(error) if tokio::time::Instant::now() >= valid_until => {
                tracing::error!("could not renew the lease before it expired ({error}); stopping");
                on_loss.cancel();
                return;
            }
            Err(error) => tracing::warn!("lease renewal failed, will retry: {error}"),
        }
    }
}

/// Whether a fenced transaction failed because of the fence (its first item) rather than a write.
pub(crate) fn is_fence_failure(error: &SdkError<TransactWriteItemsError>) -> bool {
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
pub(crate) fn is_throttled_transaction(error: &SdkError<TransactWriteItemsError>) -> bool {
    let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() else {
        return false;
    };
    let codes: Vec<&str> =
        cancelled.cancellation_reasons().iter().filter_map(|r| r.code()).filter(|c| *c != "None").collect();
    !codes.is_empty() && codes.iter().all(|c| matches!(*c, "ThrottlingError" | "TransactionConflict"))
}
