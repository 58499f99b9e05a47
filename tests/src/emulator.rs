//! The Lambda runtime emulator (`cargo lambda watch`, from `.venv-sam`) running the
//! real function binaries, and invocations of them with the event fixtures. Used by
//! the binaries test and by `make demo`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::process::{Child, Command};

use crate::fixtures::FixtureResult;

/// One invocation, the first one's build of the functions included.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// The workspace root.
pub fn root() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest)
}

/// `cargo-lambda`: `$DOWGUARD_CARGO_LAMBDA`, else the one `make setup` installs.
///
/// # Errors
///
/// When it is missing, saying to run `make setup`.
pub fn cargo_lambda() -> FixtureResult<PathBuf> {
    let path = std::env::var_os("DOWGUARD_CARGO_LAMBDA")
        .map_or_else(|| root().join(".venv-sam/bin/cargo-lambda"), PathBuf::from);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} is missing: run `make setup`", path.display()).into())
    }
}

/// The event fixture `name` (under `tests/fixtures/events`) with its time set to `at`.
///
/// # Errors
///
/// When the fixture cannot be read or is not JSON.
pub fn fixture_at(name: &str, at: DateTime<Utc>) -> FixtureResult<Value> {
    let source = root().join("tests/fixtures/events").join(name);
    let mut event: Value = serde_json::from_slice(&std::fs::read(source)?)?;
    event["time"] = Value::from(at.to_rfc3339());
    Ok(event)
}

/// `cargo lambda watch` in its own process group, stopped (group and all) on drop.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    port: u16,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id() {
            let _stopped = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .status();
        }
        let _killed = self.child.start_kill();
    }
}

impl Emulator {
    /// Starts the emulator on a free loopback port with the functions' environment
    /// `env`, writing its output to `log` (or only its errors to this process's
    /// standard error), and waits up to 60 s for it to listen.
    ///
    /// # Errors
    ///
    /// When it cannot be started or does not listen in time.
    pub async fn start(env: &[(&str, &str)], log: Option<&Path>) -> FixtureResult<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let mut command = Command::new(cargo_lambda()?);
        command
            .args([
                "lambda",
                "watch",
                "--ignore-changes",
                "--locked",
                "--timeout",
                "900",
            ])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &port.to_string(),
            ])
            .current_dir(root())
            .stdin(Stdio::null())
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in env {
            command.arg("--env-var").arg(format!("{k}={v}"));
        }
        match log {
            Some(path) => {
                let file = std::fs::File::create(path)?;
                command.stdout(file.try_clone()?).stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::inherit());
            }
        }
        let emulator = Emulator {
            child: command.spawn()?,
            port,
        };
        for _ in 0..120 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(emulator);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Err("the Lambda emulator did not listen within 60 s".into())
    }

    /// Invokes `function` with `event` and returns its answer.
    ///
    /// # Errors
    ///
    /// When the invocation fails or does not answer within [`INVOKE_TIMEOUT`].
    pub async fn invoke(&self, function: &str, event: &Value) -> FixtureResult<Value> {
        let out = Command::new(cargo_lambda()?)
            .args(["lambda", "invoke", function, "--output-format", "json"])
            .args([
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
                &self.port.to_string(),
            ])
            .arg("--data-ascii")
            .arg(event.to_string())
            .current_dir(root())
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(INVOKE_TIMEOUT, out)
            .await
            .map_err(|_| format!("{function} did not answer within {INVOKE_TIMEOUT:?}"))??;
        if !out.status.success() {
            return Err(format!(
                "{function} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
            .into());
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}
