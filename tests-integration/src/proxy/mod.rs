//! A fault and capacity proxy between dynamigrate and DynamoDB Local.
//!
//! DynamoDB Local never throttles, never answers 5xx, never drops a connection and never hands back
//! unprocessed items; real DynamoDB does all of these. This proxy makes them happen, by
//! configuration, on a free loopback port:
//!
//! - a fraction of requests answered with `ProvisionedThroughputExceededException` or
//!   `ThrottlingException` (HTTP 400, DynamoDB's JSON error shape), `InternalServerError` (500) or
//!   `ServiceUnavailable` (503), `ValidationException` (400, never worth retrying), or by closing
//!   the connection, before forwarding or after (when the request may have landed);
//! - added latency: a pure delay of the round trip, half each way, with no cap on throughput;
//! - a fraction of `BatchWriteItem` calls forwarded in part, the rest returned as `UnprocessedItems`;
//! - capacity mode: per-table provisioned write and read units per second (token buckets, with
//!   DynamoDB's burst of up to 300 s of unused capacity), charged with the `ConsumedCapacity` the real
//!   server reports, and throttling beyond it.
//!
//! It is honest: every success it returns is the real server's answer to a real request.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

mod capacity;
mod faults;

pub use capacity::Capacity;
use capacity::{admit, charge, TableBuckets};
pub use faults::Faults;
use faults::{merge_unprocessed, roll, throughput_exceeded, withhold_part, Injected};

/// What the proxy did.
#[derive(Debug, Default)]
pub struct ProxyStats {
    pub requests: AtomicU64,
    pub forwarded: AtomicU64,
    pub throttled: AtomicU64,
    pub server_errors: AtomicU64,
    pub resets: AtomicU64,
    pub partial_batches: AtomicU64,
    /// Capacity units consumed, in thousandths.
    pub write_milliunits: AtomicU64,
    pub read_milliunits: AtomicU64,
}

impl ProxyStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub fn write_units(&self) -> f64 {
        self.write_milliunits.load(Relaxed) as f64 / 1000.0
    }
}

struct State {
    upstream: String,
    faults: RwLock<Faults>,
    stats: ProxyStats,
    buckets: Mutex<HashMap<String, TableBuckets>>,
    /// When each backup was first described (for `Faults::backup_creating_for`).
    backups_seen: Mutex<HashMap<String, std::time::Instant>>,
    client: HttpClient<HttpConnector, Full<Bytes>>,
}

/// A running proxy. Dropping it stops it.
pub struct FaultProxy {
    pub endpoint: String,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Why the proxy closed a connection instead of answering.
#[derive(Debug)]
struct Reset;

impl std::fmt::Display for Reset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("fault proxy: connection reset on purpose")
    }
}

impl std::error::Error for Reset {}

impl FaultProxy {
    /// Starts a proxy to `upstream` (e.g. `http://127.0.0.1:8000`) on a free loopback port.
    pub async fn start(upstream: &str, faults: Faults) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_string(),
            faults: RwLock::new(faults),
            stats: ProxyStats::default(),
            buckets: Mutex::new(HashMap::new()),
            backups_seen: Mutex::new(HashMap::new()),
            client: HttpClient::builder(TokioExecutor::new()).build_http(),
        });
        let serving = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let state = serving.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| handle(state.clone(), request));
                    // An Err from the service makes hyper close the connection unanswered: a reset.
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self { endpoint, state, task })
    }

    pub fn set_faults(&self, faults: Faults) {
        if let Ok(mut current) = self.state.faults.write() {
            *current = faults;
        }
        if let Ok(mut buckets) = self.state.buckets.lock() {
            buckets.clear();
        }
    }

    pub fn stats(&self) -> &ProxyStats {
        &self.state.stats
    }
}

fn operation_of(request: &Request<Incoming>) -> String {
    request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .and_then(|t| t.rsplit('.').next())
        .unwrap_or_default()
        .to_string()
}

enum Kind {
    Write,
    Read,
    Control,
}

fn kind_of(operation: &str) -> Kind {
    match operation {
        "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem" | "TransactWriteItems" => Kind::Write,
        "GetItem" | "Query" | "Scan" | "BatchGetItem" | "TransactGetItems" => Kind::Read,
        _ => Kind::Control,
    }
}

/// The table a request works on (the first one, for batches and transactions).
fn table_of(body: &Value) -> Option<String> {
    if let Some(table) = body.get("TableName").and_then(Value::as_str) {
        return Some(table.to_string());
    }
    if let Some(Value::Object(items)) = body.get("RequestItems") {
        return items.keys().next().cloned();
    }
    body.get("TransactItems")?
        .as_array()?
        .first()?
        .as_object()?
        .values()
        .next()?
        .get("TableName")?
        .as_str()
        .map(String::from)
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Reset> {
    let stats = &state.stats;
    stats.requests.fetch_add(1, Relaxed);
    let operation = operation_of(&request);
    let faults = state.faults.read().map(|f| f.clone()).unwrap_or_default();
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Reset)?.to_bytes();
    // Half the added round trip on the way there, half on the way back: a pure delay, as a
    // region away adds, with no cap on throughput.
    let half_way = faults.latency / 2;
    if !half_way.is_zero() {
        tokio::time::sleep(half_way).await;
    }

    let faulted = faults.operations.as_ref().is_none_or(|ops| ops.iter().any(|o| o == &operation));
    let injected = if faulted { roll(&faults) } else { None };
    match injected {
        Some(Injected::Answer(response)) => {
            let counter = if response.status().is_server_error() { &stats.server_errors } else { &stats.throttled };
            counter.fetch_add(1, Relaxed);
            return Ok(response);
        }
        Some(Injected::ResetBefore) => {
            stats.resets.fetch_add(1, Relaxed);
            return Err(Reset);
        }
        _ => {}
    }

    let mut json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let table = table_of(&json);
    let kind = kind_of(&operation);
    if let (Some(capacity), Some(table)) = (faults.capacity, &table) {
        if !admit(&state, capacity, table, &kind) {
            stats.throttled.fetch_add(1, Relaxed);
            return Ok(throughput_exceeded());
        }
    }

    let withheld = if faulted && operation == "BatchWriteItem" && fastrand::f64() < faults.partial_batch {
        stats.partial_batches.fetch_add(1, Relaxed);
        Some(withhold_part(&mut json))
    } else {
        None
    };
    if let Some(withheld) = &withheld {
        if json["RequestItems"].as_object().is_none_or(|items| items.is_empty()) {
            // Nothing left to forward: everything comes back unprocessed, nothing was written.
            return Ok(json_response(StatusCode::OK, &json!({ "UnprocessedItems": withheld })));
        }
    }
    // Capacity is charged with what the real server says it consumed, so ask for it.
    let client_asked = json.get("ReturnConsumedCapacity").and_then(Value::as_str).is_some_and(|v| v != "NONE");
    if faults.capacity.is_some() && !client_asked && !matches!(kind, Kind::Control) {
        json["ReturnConsumedCapacity"] = json!("TOTAL");
    }
    let forward_body = if withheld.is_some() || (faults.capacity.is_some() && !client_asked) {
        Bytes::from(json.to_string())
    } else {
        body
    };

    let (status, mut answer) = forward(&state, &parts, forward_body).await?;
    stats.forwarded.fetch_add(1, Relaxed);
    if let (Some(_), Some(table)) = (faults.capacity, &table) {
        charge(&state, table, &kind, &answer);
        if !client_asked {
            if let Some(object) = answer.as_object_mut() {
                object.remove("ConsumedCapacity");
            }
        }
    }
    if let (Some(withheld), true) = (withheld, status.is_success()) {
        merge_unprocessed(&mut answer, withheld);
    }
    if let (Some(creating), "DescribeBackup") = (faults.backup_creating_for, operation.as_str()) {
        still_creating(&state, &mut answer, creating);
    }
    if matches!(injected, Some(Injected::ResetAfter)) {
        stats.resets.fetch_add(1, Relaxed);
        return Err(Reset);
    }
    if !half_way.is_zero() {
        tokio::time::sleep(half_way).await;
    }
    Ok(json_response(status, &answer))
}

/// Rewrites a DescribeBackup answer to CREATING while the backup is younger than `creating`.
fn still_creating(state: &State, answer: &mut Value, creating: std::time::Duration) {
    let details = &mut answer["BackupDescription"]["BackupDetails"];
    let Some(arn) = details["BackupArn"].as_str().map(str::to_string) else { return };
    let first_seen = *state
        .backups_seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(arn)
        .or_insert_with(std::time::Instant::now);
    if first_seen.elapsed() < creating {
        details["BackupStatus"] = json!("CREATING");
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.0")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap_or_default()
}

async fn forward(
    state: &State,
    parts: &hyper::http::request::Parts,
    body: Bytes,
) -> Result<(StatusCode, Value), Reset> {
    let uri = format!("{}{}", state.upstream, parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    let mut builder = Request::builder().method(parts.method.clone()).uri(uri);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            builder = builder.header(name, value);
        }
    }
    let request = builder.body(Full::new(body)).map_err(|_| Reset)?;
    let response = state.client.request(request).await.map_err(|_| Reset)?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map_err(|_| Reset)?.to_bytes();
    Ok((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
}
