//! The DynamoDB client dynamigrate works with: the SDK's own retries, tuned for long migrations,
//! and counted.
//!
//! A backfill sends millions of requests and must outlast throttling, 5xx answers and dropped
//! connections. The SDK's standard retry strategy does the retrying (exponential backoff with
//! full jitter, throttling and transient errors classified by the SDK); we give it more attempts,
//! a per-attempt timeout, and an unlimited retry quota of its own: the quota exists to stop retry
//! storms in multi-tenant services, while a backfill's load is governed by its own rate limiter,
//! and giving up on a throttled write would only turn it into a failed item. An interceptor counts
//! every retry by the reason of the failed attempt before it, for `-v` logs and run summaries.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::interceptors::{BeforeTransmitInterceptorContextRef, FinalizerInterceptorContextRef};
use aws_sdk_dynamodb::config::retry::{RetryConfig, RetryPartition, TokenBucket};
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::{BoxError, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

/// How the client retries.
#[derive(Debug, Clone)]
pub struct RetryOptions {
    /// Attempts per request, the first included.
    pub max_attempts: u32,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// One attempt may take this long before it is abandoned and retried.
    pub attempt_timeout: Duration,
}

impl Default for RetryOptions {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(20),
            attempt_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a request was retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RetryReason {
    Throttled,
    ServerError,
    Timeout,
    Connection,
    Other,
}

impl RetryReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::Throttled => "throttled",
            Self::ServerError => "server error (5xx)",
            Self::Timeout => "timeout",
            Self::Connection => "connection error",
            Self::Other => "other",
        }
    }

    const ALL: [Self; 5] = [Self::Throttled, Self::ServerError, Self::Timeout, Self::Connection, Self::Other];
}

/// Retries made by one client, by reason.
#[derive(Debug, Default)]
pub struct RetryStats {
    counts: [AtomicU64; 5],
}

/// A point-in-time copy of [`RetryStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryCounts([u64; 5]);

impl RetryStats {
    pub fn record(&self, reason: RetryReason) {
        self.counts[reason as usize].fetch_add(1, Relaxed);
    }

    pub fn snapshot(&self) -> RetryCounts {
        RetryCounts(std::array::from_fn(|i| self.counts[i].load(Relaxed)))
    }

    /// Throttling retries so far: what the adaptive rate limiter watches.
    pub fn throttled(&self) -> u64 {
        self.counts[RetryReason::Throttled as usize].load(Relaxed)
    }
}

impl RetryCounts {
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// What happened between `earlier` and `self`.
    pub fn since(&self, earlier: &Self) -> Self {
        Self(std::array::from_fn(|i| self.0[i].saturating_sub(earlier.0[i])))
    }

    /// Non-zero counts by reason label, for summaries.
    pub fn by_reason(&self) -> BTreeMap<&'static str, u64> {
        RetryReason::ALL.iter().filter(|r| self.0[**r as usize] > 0).map(|r| (r.label(), self.0[*r as usize])).collect()
    }
}

impl Serialize for RetryCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.by_reason().serialize(serializer)
    }
}

/// Builds the client dynamigrate uses, from the loaded AWS configuration.
pub fn migration_client(sdk: &SdkConfig, options: &RetryOptions) -> (Client, Arc<RetryStats>) {
    let stats = Arc::new(RetryStats::default());
    let config = aws_sdk_dynamodb::config::Builder::from(sdk)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(options.max_attempts)
                .with_initial_backoff(options.initial_backoff)
                .with_max_backoff(options.max_backoff),
        )
        .retry_partition(RetryPartition::custom("dynamigrate").token_bucket(TokenBucket::unlimited()).build())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(options.attempt_timeout)
                .build(),
        )
        .interceptor(RetryCounter { stats: stats.clone() })
        .build();
    (Client::from_conf(config), stats)
}

/// An S3 client from the same configuration, for reading what an export wrote. With a custom
/// endpoint (a local S3 such as moto's) it addresses buckets by path: `bucket.127.0.0.1` resolves nowhere.
pub fn s3_client(sdk: &SdkConfig) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(sdk).force_path_style(sdk.endpoint_url().is_some()).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Remembers why an attempt failed, so the next attempt of the same request knows it is a retry.
#[derive(Debug, Clone, Copy)]
struct FailedAttempt(RetryReason);

impl Storable for FailedAttempt {
    type Storer = StoreReplace<Self>;
}

#[derive(Debug)]
struct RetryCounter {
    stats: Arc<RetryStats>,
}

impl Intercept for RetryCounter {
    fn name(&self) -> &'static str {
        "dynamigrate::RetryCounter"
    }

    fn read_before_attempt(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(FailedAttempt(reason)) = cfg.load::<FailedAttempt>().copied() {
            self.stats.record(reason);
            let operation = context
                .request()
                .headers()
                .get("x-amz-target")
                .and_then(|target| target.rsplit('.').next())
                .unwrap_or("request");
            tracing::debug!("retrying {operation} after {}", reason.label());
        }
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(Err(error)) = context.output_or_error() else { return Ok(()) };
        // Only retryable failures are followed by another attempt; a 4xx the SDK retries is throttling.
        let reason = if error.is_timeout_error() {
            RetryReason::Timeout
        } else if error.is_connector_error() {
            RetryReason::Connection
        } else {
            match context.response().map(|r| r.status().as_u16()) {
                Some(500..=599) => RetryReason::ServerError,
                Some(400..=499) => RetryReason::Throttled,
                _ => RetryReason::Other,
            }
        };
        cfg.interceptor_state().store_put(FailedAttempt(reason));
        Ok(())
    }
}

/// An item as DynamoDB returns it.
pub type Item = HashMap<String, AttributeValue>;

/// Rounds of waiting and trying again that dynamigrate adds once the SDK's own attempts are used up
/// on a transient error. Under sustained throttling a write must wait, not turn into a failed item.
pub const PATIENCE_ROUNDS: u32 = 8;

/// Error codes that say "not now" rather than "never".
const TRANSIENT_CODES: [&str; 7] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionInProgressException",
    "TransactionConflictException",
];

/// Whether an error (after the SDK's retries) is worth waiting out: throttling, 5xx, timeouts,
/// dropped connections, unreadable answers.
pub fn is_transient<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
        SdkError::ServiceError(service) => {
            service.raw().status().is_server_error() || error.code().is_some_and(|code| TRANSIENT_CODES.contains(&code))
        }
        _ => false,
    }
}

/// Whether an error is DynamoDB saying "too fast" (rather than 5xx or a network failure).
pub fn is_throttling<E: ProvideErrorMetadata>(error: &SdkError<E, HttpResponse>) -> bool {
    matches!(
        error.code(),
        Some("ProvisionedThroughputExceededException" | "ThrottlingException" | "RequestLimitExceeded")
    )
}

/// Exponential backoff with full jitter: a random wait up to `base` × 2^round, at most `cap`.
pub fn jittered_backoff(base: Duration, round: u32, cap: Duration) -> Duration {
    base.saturating_mul(1 << round.min(10)).min(cap).mul_f64(fastrand::f64())
}

/// Waits before patience round `round` (1-based): up to 200 ms × 2^round, at most 10 s.
async fn pause(round: u32) {
    tokio::time::sleep(jittered_backoff(Duration::from_millis(200), round, Duration::from_secs(10))).await;
}

/// Runs `attempt` and, while it fails with an error `transient` accepts, waits and runs it again,
/// up to [`PATIENCE_ROUNDS`] more times; `on_wait` hears of each round (to count or log it).
/// Every request that must outlast throttling beyond the SDK's own retries goes through here.
/// When `until` is cancelled (Ctrl-C) the wait ends at once and the last error is returned: the
/// caller, seeing the run stop, leaves the work for the next run.
pub async fn patiently<T, E, Fut>(
    mut attempt: impl FnMut() -> Fut,
    transient: impl Fn(&E) -> bool,
    mut on_wait: impl FnMut(u32, &E),
    until: Option<&CancellationToken>,
) -> Result<T, E>
where
    Fut: Future<Output = Result<T, E>>,
{
    let never = CancellationToken::new();
    let until = until.unwrap_or(&never);
    let mut round = 0;
    loop {
        match attempt().await {
            Err(error) if round < PATIENCE_ROUNDS && transient(&error) && !until.is_cancelled() => {
                round += 1;
                on_wait(round, &error);
                tokio::select! {
                    () = pause(round) => {}
                    () = until.cancelled() => return Err(error),
                }
            }
            result => return result,
        }
    }
}

/// DynamoDB's rule for table names: 3 to 255 of `a-z A-Z 0-9 _ - .`. Checked before any request,
/// so a typo is a clear error rather than a ValidationException.
pub fn check_table_name(name: &str) -> Result<(), String> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
    if (3..=255).contains(&name.len()) && name.chars().all(allowed) {
        Ok(())
    } else {
        Err(format!("{name:?} is not a DynamoDB table name: use 3 to 255 letters, digits, '_', '-' or '.'"))
    }
}

/// Whether a table exists (any status).
pub async fn table_exists(client: &Client, table: &str) -> Result<bool, crate::Error> {
    match client.describe_table().table_name(table).send().await {
        Ok(_) => Ok(true),
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => Ok(false),
        Err(error) => Err(crate::Error::aws(format!("describing table {table}"), error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_kept_by_reason_and_diffed() {
        let stats = RetryStats::default();
        stats.record(RetryReason::Throttled);
        let before = stats.snapshot();
        stats.record(RetryReason::Throttled);
        stats.record(RetryReason::Connection);
        let delta = stats.snapshot().since(&before);
        assert_eq!(delta.total(), 2);
        assert_eq!(delta.by_reason(), BTreeMap::from([("connection error", 1), ("throttled", 1)]));
        assert_eq!(stats.throttled(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn patience_retries_transient_failures_a_bounded_number_of_times() {
        let mut calls = 0;
        let mut waits = Vec::new();
        let result: Result<(), &str> = patiently(
            || {
                calls += 1;
                async { Err("busy") }
            },
            |e| *e == "busy",
            |round, _| waits.push(round),
            None,
        )
        .await;
        assert_eq!(result, Err("busy"));
        assert_eq!(calls, 1 + PATIENCE_ROUNDS);
        assert_eq!(waits, (1..=PATIENCE_ROUNDS).collect::<Vec<_>>());

        let mut calls = 0;
        let result: Result<u32, &str> = patiently(
            || {
                calls += 1;
                let n = calls;
                async move {
                    if n < 3 {
                        Err("busy")
                    } else {
                        Ok(n)
                    }
                }
            },
            |e| *e == "busy",
            |_, _| {},
            None,
        )
        .await;
        assert_eq!(result, Ok(3), "succeeds once the failure passes");
        let fatal: Result<(), &str> =
            patiently(|| async { Err("never") }, |e| *e == "busy", |_, _| panic!(), None).await;
        assert_eq!(fatal, Err("never"), "other errors are returned at once");
        let stopped = CancellationToken::new();
        stopped.cancel();
        let mut calls = 0;
        let cut: Result<(), &str> = patiently(
            || {
                calls += 1;
                async { Err("busy") }
            },
            |e| *e == "busy",
            |_, _| {},
            Some(&stopped),
        )
        .await;
        assert_eq!((cut, calls), (Err("busy"), 1), "a stopped run does not wait");
    }
}
