//! Logs on stderr: text, coloured only for a person at a terminal who has not set `NO_COLOR`, or
//! one JSON object per line. Never a credential, at any verbosity or filter: every line passes a
//! redactor that knows the credentials in use, and the SDK's request signing, which logs what it
//! signs, is held to `info`. Writing never fails the process: a closed stderr loses the line only.

use std::io::{IsTerminal, Write};
use std::sync::{Mutex, OnceLock};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::args::LogFormat;

/// Secrets held to `info` whatever the filter says: request signing logs the canonical request and
/// the signing key's scope (with the access key id) at debug and trace.
const ALWAYS: [&str; 2] = ["aws_sigv4=info", "aws_smithy_runtime::client::http=info"];

pub fn init(verbose: u8, format: LogFormat) {
    let default = match verbose {
        0 => "info,aws_config=warn,aws_smithy_runtime=warn,aws_sdk_dynamodb=warn,hyper=warn",
        1 => "debug,aws_config=info,aws_smithy_runtime=info,aws_sdk_dynamodb=info,hyper=info,rustls=info",
        2 => "debug,hyper=info,rustls=info",
        _ => "trace",
    };
    // DYNAMIGRATE_LOG was checked by the contract before we got here.
    let mut filter = EnvFilter::try_from_env("DYNAMIGRATE_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    for directive in ALWAYS {
        if let Ok(directive) = directive.parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(Redacted).with_target(verbose > 0);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).try_init(),
        LogFormat::Text => builder.with_ansi(colour()).try_init(),
    };
}

/// Colour only for a person at a terminal who has not asked for none (<https://no-color.org>).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

fn secrets() -> &'static Mutex<Vec<String>> {
    static SECRETS: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    SECRETS.get_or_init(Mutex::default)
}

/// Never show this value in a log line again (a credential).
pub fn redact(secret: &str) {
    // Too short to be a credential, and replacing it would garble ordinary text.
    if secret.len() < 8 {
        return;
    }
    if let Ok(mut secrets) = secrets().lock() {
        if !secrets.iter().any(|s| s == secret) {
            secrets.push(secret.to_string());
        }
    }
}

/// The credentials the environment gives, redacted from the first log line on.
pub fn redact_environment() {
    for name in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"] {
        if let Some(value) = std::env::var_os(name) {
            redact(&value.to_string_lossy());
        }
    }
}

fn scrub(line: &str) -> String {
    let mut line = line.to_string();
    if let Ok(secrets) = secrets().lock() {
        for secret in secrets.iter() {
            line = line.replace(secret.as_str(), "[redacted]");
        }
    }
    line
}

/// Writes log lines to stderr with every known secret replaced. `tracing-subscriber` formats a
/// whole event and writes it at once, so a secret never straddles two writes.
struct Redacted;

struct RedactedStderr;

impl<'a> MakeWriter<'a> for Redacted {
    type Writer = RedactedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        RedactedStderr
    }
}

impl Write for RedactedStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = scrub(&String::from_utf8_lossy(buf));
        // A closed stderr (`2>&-`, a dead pipe) loses the log, never the run.
        let _ = std::io::stderr().write_all(line.as_bytes());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_secrets_are_scrubbed_and_short_strings_left_alone() {
        redact("AKIDPLANTEDSECRET1");
        redact("abc");
        let line = scrub("Credential=AKIDPLANTEDSECRET1/20261121/us-east-1 abc");
        assert_eq!(line, "Credential=[redacted]/20261121/us-east-1 abc");
    }
}
