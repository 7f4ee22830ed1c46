//! The faults the proxy injects: which, how often, and the answers DynamoDB would give.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Response, StatusCode};
use serde_json::{json, Value};

use super::capacity::Capacity;

/// What the proxy does to requests. Fractions are probabilities per request, drawn independently.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Answer `ProvisionedThroughputExceededException` (400).
    pub throughput_exceeded: f64,
    /// Answer `ThrottlingException` (400).
    pub throttling: f64,
    /// Answer `InternalServerError` (500).
    pub server_error: f64,
    /// Answer `ServiceUnavailable` (503).
    pub unavailable: f64,
    /// Answer `ValidationException` (400): a request DynamoDB refuses outright and no retry fixes
    /// (as when a scan's start key no longer fits the table).
    pub rejected: f64,
    /// Close the connection without forwarding.
    pub reset_before: f64,
    /// Forward, then close the connection without answering: the request may have landed.
    pub reset_after: f64,
    /// Add this much to every round trip (half before forwarding, half before answering).
    pub latency: Duration,
    /// Forward only part of a `BatchWriteItem`, return the rest as `UnprocessedItems`.
    pub partial_batch: f64,
    /// Only these operations are faulted (e.g. `["UpdateItem"]`); None: every operation.
    pub operations: Option<Vec<String>>,
    /// Provisioned capacity per table; None: unlimited.
    pub capacity: Option<Capacity>,
    /// DescribeBackup says CREATING for this long after the backup's first sight (`Duration::MAX`:
    /// it never finishes), whatever the server says: a backup of a large table, or a stuck one.
    pub backup_creating_for: Option<Duration>,
}

pub(super) fn error_response(status: StatusCode, kind: &str, message: &str) -> Response<Full<Bytes>> {
    let body = json!({ "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": message });
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amzn-requestid", uuid::Uuid::new_v4().to_string())
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

pub(super) fn throughput_exceeded() -> Response<Full<Bytes>> {
    error_response(
        StatusCode::BAD_REQUEST,
        "ProvisionedThroughputExceededException",
        "The level of configured provisioned throughput for the table was exceeded. \
         Consider increasing your provisioning level with the UpdateTable API.",
    )
}

/// The injected fault, if the dice say so.
pub(super) enum Injected {
    Answer(Response<Full<Bytes>>),
    ResetBefore,
    ResetAfter,
}

pub(super) fn roll(faults: &Faults) -> Option<Injected> {
    let mut dice = fastrand::f64();
    let mut hit = |p: f64| {
        dice -= p;
        dice < 0.0
    };
    if hit(faults.throughput_exceeded) {
        return Some(Injected::Answer(throughput_exceeded()));
    }
    if hit(faults.throttling) {
        let r = error_response(
            StatusCode::BAD_REQUEST,
            "ThrottlingException",
            "Rate of requests exceeds the allowed throughput.",
        );
        return Some(Injected::Answer(r));
    }
    if hit(faults.server_error) {
        let r = error_response(StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError", "Internal server error");
        return Some(Injected::Answer(r));
    }
    if hit(faults.unavailable) {
        let r = error_response(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "Service unavailable");
        return Some(Injected::Answer(r));
    }
    if hit(faults.rejected) {
        let r = error_response(StatusCode::BAD_REQUEST, "ValidationException", "fault proxy: request rejected");
        return Some(Injected::Answer(r));
    }
    if hit(faults.reset_before) {
        return Some(Injected::ResetBefore);
    }
    if hit(faults.reset_after) {
        return Some(Injected::ResetAfter);
    }
    None
}

/// Keeps a random leading part of each table's requests in the body; returns the rest.
pub(super) fn withhold_part(body: &mut Value) -> Value {
    let mut withheld = serde_json::Map::new();
    if let Some(Value::Object(items)) = body.get_mut("RequestItems") {
        for (table, requests) in items.iter_mut() {
            let Some(list) = requests.as_array_mut() else { continue };
            if list.is_empty() {
                continue;
            }
            let keep = fastrand::usize(0..list.len());
            withheld.insert(table.clone(), Value::Array(list.split_off(keep)));
        }
        items.retain(|_, requests| requests.as_array().is_some_and(|l| !l.is_empty()));
    }
    Value::Object(withheld)
}

pub(super) fn merge_unprocessed(answer: &mut Value, withheld: Value) {
    let Value::Object(withheld) = withheld else { return };
    if !answer.get("UnprocessedItems").is_some_and(Value::is_object) {
        answer["UnprocessedItems"] = json!({});
    }
    let Some(unprocessed) = answer["UnprocessedItems"].as_object_mut() else { return };
    for (table, requests) in withheld {
        let entry = unprocessed.entry(table).or_insert_with(|| json!([]));
        if let (Some(list), Value::Array(more)) = (entry.as_array_mut(), requests) {
            list.extend(more);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_batch_keeps_a_part_and_returns_the_rest() {
        let mut body = json!({ "RequestItems": { "t": [1, 2, 3, 4, 5] } });
        let withheld = withhold_part(&mut body);
        let kept = body["RequestItems"]["t"].as_array().map_or(0, Vec::len);
        let rest = withheld["t"].as_array().map_or(0, Vec::len);
        assert_eq!(kept + rest, 5);
        assert!(rest >= 1, "at least one item is withheld");
        let mut answer = json!({ "UnprocessedItems": {} });
        merge_unprocessed(&mut answer, withheld);
        assert_eq!(answer["UnprocessedItems"]["t"].as_array().map_or(0, Vec::len), rest);
    }
}
