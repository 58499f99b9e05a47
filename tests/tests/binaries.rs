//! The real Lambda binaries, once each, under the Lambda runtime emulator
//! (`cargo lambda watch`, from `.venv-sam`), invoked with the event fixtures
//! (`cargo lambda invoke --data-file`) against a flooded example account in the
//! local AWS server: the binaries read their configuration from the environment,
//! act, and answer; a foreign event is rejected. `make demo` tells the whole story
//! on the same path.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, DurationRound, Utc};
use dowguard_domain::{Limits, TargetId};
use dowguard_guard::ports::Discovery;
use dowguard_tests::account::{ExampleAccount, LocalGuard, TABLE};
use dowguard_tests::{ACCOUNT_ID, LocalAws, REGION};
use serde_json::Value;
use tokio::process::{Child, Command};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// One invocation, the binaries' build on first use included.
const INVOKE_TIMEOUT: StdDuration = StdDuration::from_secs(15 * 60);

fn root() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest)
}

fn cargo_lambda() -> Result<PathBuf, Error> {
    let path = std::env::var_os("DOWGUARD_CARGO_LAMBDA")
        .map_or_else(|| root().join(".venv-sam/bin/cargo-lambda"), PathBuf::from);
    if path.exists() {
        Ok(path)
    } else {
        Err(format!("{} is missing: run `make setup`", path.display()).into())
    }
}

/// `cargo lambda watch` in its own process group, stopped with it on drop.
struct Emulator {
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
    async fn start(env: &[(&str, &str)]) -> Result<Self, Error> {
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
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        for (k, v) in env {
            command.arg("--env-var").arg(format!("{k}={v}"));
        }
        let emulator = Emulator {
            child: command.spawn()?,
            port,
        };
        for _ in 0..120 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Ok(emulator);
            }
            tokio::time::sleep(StdDuration::from_millis(500)).await;
        }
        Err("the Lambda emulator did not listen within 60 s".into())
    }

    async fn invoke(&self, function: &str, fixture: &str, at: DateTime<Utc>) -> Result<Value, Error> {
        let source = root().join("tests/fixtures/events").join(fixture);
        let mut event: Value = serde_json::from_slice(&std::fs::read(source)?)?;
        event["time"] = Value::from(at.to_rfc3339());
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
            return Err(format!("{function} failed: {}", String::from_utf8_lossy(&out.stderr)).into());
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }
}

#[tokio::test]
async fn the_binaries_throttle_a_flood_and_reject_a_foreign_event() -> Result<(), Error> {
    let aws = LocalAws::start().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let example = ExampleAccount::seed(&aws, now).await?;
    let local = LocalGuard::new(&aws).await?;
    let attack_end = now - Duration::hours(4);
    example.flood(&aws, attack_end, 10).await?;
    let emulator = Emulator::start(&[
        ("DOWGUARD_TABLE", TABLE),
        ("DOWGUARD_ACCOUNT_ID", ACCOUNT_ID),
        ("DOWGUARD_MODE", "enforce"),
        ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "1440"),
        ("DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS", "0"),
        ("AWS_REGION", REGION),
        ("AWS_ENDPOINT_URL", aws.endpoint()),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST"),
        ("AWS_SECRET_ACCESS_KEY", "local-test-secret"),
        ("AWS_LAMBDA_LOG_LEVEL", "warn"),
    ])
    .await?;

    let foreign = emulator
        .invoke("dowguard-alarm-responder", "alarm-other-account.json", attack_end)
        .await?;
    assert_eq!(
        foreign["rejected"], "event from account \"999999999999\", not this deployment's",
        "{foreign}"
    );

    let answer = emulator
        .invoke(
            "dowguard-evaluator",
            "scheduled-event.json",
            attack_end + Duration::minutes(1),
        )
        .await?;
    let tightened: Vec<&str> = answer["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["intent"] == "tighten" && a["outcome"]["outcome"] == "applied")
        .filter_map(|a| a["target"].as_str())
        .collect();
    assert!(tightened.contains(&"function:checkout"), "{answer}");

    let checkout = TargetId::parse("function:checkout")?;
    let limits = local
        .stack
        .account
        .discover()
        .await?
        .into_iter()
        .find(|t| t.id == checkout)
        .map(|t| t.limits);
    assert!(
        matches!(limits, Some(Limits::Function { reserved_concurrency: Some(n), .. }) if n < 50),
        "{limits:?}"
    );
    drop(emulator);
    Ok(())
}
