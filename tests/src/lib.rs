//! Test support for dowguard's integration tests: a local AWS server.
//!
//! [`LocalAws::start`] runs `tests/harness/local_aws.py` (moto, with a few small
//! patches listed in `docs/testing.md`) on a free loopback port and hands out an
//! [`aws_config::SdkConfig`] that points every SDK client at it. Each test starts
//! its own server: state is never shared between tests. The server stops when the
//! [`LocalAws`] is dropped, and also by itself when the test process dies, because
//! it exits as soon as its standard input closes.
//!
//! [`proxy::Proxy`] sits between the SDK clients and that server on loopback when a
//! test needs to see or shape the wire: it records every request with its AWS
//! service and operation, breaks chosen requests, and in quota mode answers 429
//! to requests over AWS's account-wide control-plane quotas.

pub mod account;
pub mod emulator;
pub mod fixtures;
pub mod iam;
pub mod proxy;
pub mod runtime_api;
pub mod synthetic_metrics;
pub mod template;

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpStream;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Environment variable naming the Python interpreter that runs the server.
pub const PYTHON_ENV: &str = "DOWGUARD_PYTHON";

/// How long the server may take to print its `READY` line.
pub const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The region every test client uses.
pub const REGION: &str = "us-east-1";

/// The account moto reports for every call.
pub const ACCOUNT_ID: &str = "123456789012";

/// Attempts per SDK call (the first try plus one retry), so failures are quick.
const MAX_ATTEMPTS: u32 = 2;

/// Upper bound on one SDK operation against the local server, retries included.
const OPERATION_TIMEOUT: Duration = Duration::from_secs(30);

/// Upper bound on the reset call.
const RESET_TIMEOUT: Duration = Duration::from_secs(10);

/// What can go wrong while starting, resetting or talking to the local server.
///
/// `Debug` prints the same message as `Display`: a test that returns
/// `Result` shows its error with `Debug`, and the message says what to do.
#[derive(thiserror::Error)]
pub enum HarnessError {
    /// The Python interpreter with moto installed is not there.
    #[error(
        "no Python interpreter at {}: run `make setup` to create .venv with the test \
         server's packages, or set {PYTHON_ENV} to a Python that has them",
        path.display()
    )]
    PythonMissing {
        /// Where the interpreter was looked for.
        path: PathBuf,
    },
    /// The launcher process could not be spawned.
    #[error("could not start {} {}: {source}", python.display(), script.display())]
    Spawn {
        /// The interpreter.
        python: PathBuf,
        /// The launcher script.
        script: PathBuf,
        /// The operating-system error.
        source: std::io::Error,
    },
    /// The launcher exited, or closed its output, before it was ready.
    #[error("the local AWS server exited before it was ready (see its stderr above)")]
    ExitedEarly,
    /// The launcher printed something other than the `READY` line.
    #[error("the local AWS server printed {line:?} instead of `READY http://127.0.0.1:PORT`")]
    UnexpectedOutput {
        /// The line it printed.
        line: String,
    },
    /// The launcher did not become ready in time.
    #[error("the local AWS server was not ready within {0:?}")]
    StartTimeout(Duration),
    /// Reading the launcher's output failed.
    #[error("could not read the local AWS server's output: {0}")]
    Output(#[source] std::io::Error),
    /// `POST /moto-api/reset` could not be sent or did not answer 200.
    #[error("resetting the local AWS server at {endpoint} failed: {reason}")]
    Reset {
        /// The server's endpoint.
        endpoint: String,
        /// What went wrong.
        reason: String,
    },
}

impl fmt::Debug for HarnessError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A moto server on loopback, owned by one test.
///
/// Dropping it kills the server.
#[derive(Debug)]
pub struct LocalAws {
    endpoint: String,
    /// Held, never written: the server exits when this pipe closes.
    _stdin: ChildStdin,
    /// Held so the server never writes into a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
    /// Killed on drop.
    _child: Child,
}

impl LocalAws {
    /// Starts a fresh server and waits until it answers.
    ///
    /// The interpreter is `$DOWGUARD_PYTHON` if set, else `.venv/bin/python` at the
    /// workspace root (created by `make setup`).
    ///
    /// # Errors
    ///
    /// [`HarnessError`] when the interpreter is missing, the launcher cannot be
    /// spawned, or the server is not ready within [`START_TIMEOUT`].
    pub async fn start() -> Result<Self, HarnessError> {
        let python = python_path();
        if !python.exists() {
            return Err(HarnessError::PythonMissing { path: python });
        }
        let script = workspace_root().join("tests/harness/local_aws.py");
        let mut child = Command::new(&python)
            .arg(&script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| HarnessError::Spawn {
                python: python.clone(),
                script: script.clone(),
                source,
            })?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(HarnessError::ExitedEarly);
        };
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(START_TIMEOUT, lines.next_line())
            .await
            .map_err(|_elapsed| HarnessError::StartTimeout(START_TIMEOUT))?
            .map_err(HarnessError::Output)?
            .ok_or(HarnessError::ExitedEarly)?;
        let endpoint = parse_ready_line(&line)
            .ok_or_else(|| HarnessError::UnexpectedOutput { line: line.clone() })?
            .to_owned();
        Ok(Self {
            endpoint,
            _stdin: stdin,
            _stdout: lines,
            _child: child,
        })
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// SDK configuration for this server: see [`sdk_config_for`].
    #[must_use]
    pub fn sdk_config(&self) -> SdkConfig {
        sdk_config_for(&self.endpoint)
    }

    /// Clears every resource on the server (`POST /moto-api/reset`).
    ///
    /// # Errors
    ///
    /// [`HarnessError::Reset`] when the call fails or does not answer 200.
    pub async fn reset(&self) -> Result<(), HarnessError> {
        let fail = |reason: String| HarnessError::Reset {
            endpoint: self.endpoint.clone(),
            reason,
        };
        let authority = self
            .endpoint
            .strip_prefix("http://")
            .ok_or_else(|| fail("endpoint is not plain http".to_owned()))?;
        let status = tokio::time::timeout(RESET_TIMEOUT, post_empty(authority, "/moto-api/reset"))
            .await
            .map_err(|_elapsed| fail(format!("no answer within {RESET_TIMEOUT:?}")))?
            .map_err(|error| fail(error.to_string()))?;
        if status == "200" {
            Ok(())
        } else {
            Err(fail(format!("HTTP status {status}")))
        }
    }
}

/// The workspace root: this crate lives at `<root>/tests`.
fn workspace_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// `$DOWGUARD_PYTHON`, else the workspace's `.venv/bin/python`.
fn python_path() -> PathBuf {
    std::env::var_os(PYTHON_ENV)
        .filter(|value| !value.is_empty())
        .map_or_else(|| workspace_root().join(".venv/bin/python"), PathBuf::from)
}

/// The endpoint in a `READY http://127.0.0.1:PORT` line.
fn parse_ready_line(line: &str) -> Option<&str> {
    let endpoint = line.trim_end().strip_prefix("READY ")?;
    let port = endpoint.strip_prefix("http://127.0.0.1:")?;
    port.parse::<u16>().ok().map(|_port| endpoint)
}

/// Sends `POST path` with an empty body over plain HTTP/1.1 and returns the
/// status code of the answer. Enough for moto's control API; SDK calls use the
/// SDK's own client.
async fn post_empty(authority: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(authority).await?;
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    let answer = String::from_utf8_lossy(&answer);
    let status = answer
        .lines()
        .next()
        .and_then(|status_line| status_line.split_whitespace().nth(1))
        .unwrap_or("no status line");
    Ok(status.to_owned())
}

/// SDK configuration for a server at `endpoint`: region `us-east-1`, static test
/// credentials, that endpoint for every service, and a small retry budget so that a
/// failing call fails fast. Built without reading the environment or `~/.aws`.
#[must_use]
pub fn sdk_config_for(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new("AKIDLOCALTEST", "local-test-secret", None, None, "dowguard-tests");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .operation_timeout(OPERATION_TIMEOUT)
                .build(),
        )
        .build()
}

#[cfg(test)]
mod tests {
    use super::parse_ready_line;

    #[test]
    fn ready_line_yields_the_loopback_endpoint() {
        assert_eq!(
            parse_ready_line("READY http://127.0.0.1:40123\n"),
            Some("http://127.0.0.1:40123")
        );
    }

    #[test]
    fn other_lines_are_not_ready_lines() {
        assert_eq!(parse_ready_line("Running on http://127.0.0.1:5000"), None);
        assert_eq!(parse_ready_line("READY http://0.0.0.0:5000"), None);
        assert_eq!(parse_ready_line("READY http://127.0.0.1:port"), None);
    }
}
