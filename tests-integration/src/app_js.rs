//! A JavaScript application's side of the upgrade chain, for the tests: Node.js runs the shipped
//! `normalize-item.js` with the AWS SDK's marshalling (pinned in tools/app-js, installed by
//! scripts/test.sh) on items the test hands it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use aws_sdk_dynamodb::types::AttributeValue;
use tokio::io::AsyncWriteExt;

use crate::Item;

fn tools() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tools/app-js")
}

/// Each item brought to the latest version by `helper` with `steps` in Node.js, as the application
/// would read it. Panics with what to install when Node.js or the SDK package is missing.
pub async fn normalize(items: &[Item], helper: &Path, keys: &[&str], steps: &[PathBuf]) -> Vec<Item> {
    let sdk = tools().join("node_modules/@aws-sdk/util-dynamodb");
    assert!(sdk.exists(), "{} is missing: run scripts/test.sh (it runs `npm ci` in tools/app-js)", sdk.display());
    let mut child = tokio::process::Command::new("node")
        .arg(tools().join("normalize.mjs"))
        .arg(helper)
        .arg(keys.join(","))
        .args(steps)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start node (Node.js 18+ is needed, as for DynamoDB Local): {e}"));
    let input: String = items.iter().map(|item| format!("{}\n", dynamigrate::backfill::key_json(item))).collect();
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(input.as_bytes()).await.expect("write items to node");
    drop(stdin);
    let output = child.wait_with_output().await.expect("node");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "node normalize.mjs failed: {stderr}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let typed: HashMap<String, serde_dynamo::AttributeValue> =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            typed.into_iter().map(|(k, v)| (k, AttributeValue::from(v))).collect()
        })
        .collect()
}
