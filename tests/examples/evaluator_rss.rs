//! The evaluator's peak memory with 10,000 targets, measured on the binary that
//! ships: `target/release/dowguard-evaluator`, run as Lambda runs it (a loopback
//! stand-in for the runtime API hands it scheduled events,
//! `dowguard_tests::runtime_api`), its AWS calls going through the proxy to the
//! local AWS server. The table holds an inventory of 10,000 guarded functions (as
//! the inventory function keeps it) and a budget over the whole account. The local
//! server cannot hold their metrics, so the proxy answers `GetMetricData` itself
//! (`dowguard_tests::synthetic_metrics`): every function busy, every point present,
//! and the account-wide aggregate incomplete, which makes the evaluator measure all
//! 10,000 functions in full, one-minute points and the month's hourly sums: its
//! dearest pass. Two passes run, a cold one and a warm one (the process keeps its
//! metrics cache between invocations, as a warm Lambda does). The figure is the
//! process's peak resident set (`VmHWM` in `/proc/PID/status`), printed as
//!
//! ```text
//! evaluator peak RSS, 10,000 targets: N MB (target: <= 64 MB)
//! ```
//!
//! Run: `cargo build --release --locked -p dowguard-evaluator` first, then
//! `cargo run --release --locked -p dowguard-tests --example evaluator_rss`
//! (`make bench` does both).

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Datelike, Duration, DurationRound, Utc};
use dowguard_adapters::dynamodb::{DynamoStore, create_table};
use dowguard_domain::{
    Arch, Budget, BudgetSpec, GUARD_TAG, GUARD_TAG_VALUE, Limits, Target, TargetId, TargetSpec,
};
use dowguard_guard::inventory::{Confirmation, Entry, Meta, SLICES, Source};
use dowguard_guard::ports::{BudgetStore, InventoryStore};
use dowguard_tests::LocalAws;
use dowguard_tests::account::TABLE;
use dowguard_tests::proxy::Proxy;
use dowguard_tests::runtime_api::RuntimeApi;
use dowguard_tests::synthetic_metrics::{responder, steady};
use serde_json::Value;
use tokio::task::JoinSet;

type BenchResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

const TARGETS: usize = 10_000;
const TARGET_MB: u64 = 64;
/// The longest one pass may take here before the benchmark gives up.
const PASS_TIMEOUT: StdDuration = StdDuration::from_secs(600);

/// The shipped binary, beside this example's own directory (`target/release`), or
/// the one `DOWGUARD_EVALUATOR_BINARY` names.
fn evaluator_binary() -> BenchResult<PathBuf> {
    if let Some(path) = std::env::var_os("DOWGUARD_EVALUATOR_BINARY") {
        return Ok(PathBuf::from(path));
    }
    let exe = std::env::current_exe()?;
    let release = exe
        .parent()
        .and_then(|examples| examples.parent())
        .ok_or("no target directory above this example")?;
    let binary = release.join("dowguard-evaluator");
    if !binary.is_file() {
        return Err(format!(
            "{} is not built: run `cargo build --release --locked -p dowguard-evaluator` (make bench does)",
            binary.display()
        )
        .into());
    }
    Ok(binary)
}

fn function(i: usize) -> BenchResult<Target> {
    let id = TargetId::parse(&format!("function:fn-{i:05}"))?;
    let tags = BTreeMap::from([(GUARD_TAG.to_string(), GUARD_TAG_VALUE.to_string())]);
    Ok(Target::new(
        id,
        TargetSpec::Function {
            memory_mb: 512,
            arch: Arch::Arm64,
            async_invoked: false,
        },
        tags,
        Limits::Function {
            reserved_concurrency: None,
            async_config: None,
        },
    ))
}

fn scheduled(at: chrono::DateTime<Utc>) -> BenchResult<Value> {
    let path = dowguard_tests::emulator::root().join("tests/fixtures/events/scheduled-event.json");
    let mut payload: Value = serde_json::from_slice(&std::fs::read(path)?)?;
    payload["time"] = Value::from(at.to_rfc3339());
    Ok(payload)
}

/// The peak resident set of process `pid`, in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> BenchResult<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| "no VmHWM in /proc/PID/status".into())
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let binary = evaluator_binary()?;
    let aws = LocalAws::start().await.map_err(|e| e.to_string())?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let config = aws.sdk_config();
    let dynamo = aws_sdk_dynamodb::Client::new(&config);
    create_table(&dynamo, TABLE).await?;
    let store = DynamoStore::new(dynamo, TABLE, Duration::days(90));
    let budget = Budget::parse(BudgetSpec {
        id: "account".into(),
        scope: "account".into(),
        period: "month".into(),
        amount: "1000000".into(),
        thresholds: vec![],
        mode: "enforce".into(),
        owner: "finance@example.com".into(),
        topic: None,
        floors: Default::default(),
        protected: false,
    })?;
    store.put_budget(&budget, None, "finance", now).await?;

    // The inventory, as the inventory function keeps it: every slice just reconciled.
    let filled = Instant::now();
    let mut set = JoinSet::new();
    for i in 0..TARGETS {
        let (store, target) = (store.clone(), function(i)?);
        set.spawn(async move {
            let entry = Entry {
                target,
                api_name: None,
                confirmed: Confirmation {
                    at: now,
                    source: Source::Reconciled,
                },
            };
            store.put_entry(&entry, 0).await.map(|_| ())
        });
        if set.len() >= 32
            && let Some(done) = set.join_next().await
        {
            done??;
        }
    }
    while let Some(done) = set.join_next().await {
        done??;
    }
    let meta = Meta {
        slices: (0..SLICES).map(|s| (s, now)).collect(),
        apis: Some(now),
        ..Meta::default()
    };
    store.put_meta(&meta, 0).await?;
    println!(
        "bench: inventory of {TARGETS} functions written in {:.0} s",
        filled.elapsed().as_secs_f64()
    );

    let proxy = Proxy::start_answering(aws.endpoint(), responder(steady)).await?;
    let passes = [now - Duration::minutes(1), now];
    let runtime =
        RuntimeApi::start(passes.iter().map(|at| scheduled(*at)).collect::<Result<_, _>>()?).await?;
    let log = std::env::temp_dir().join("dowguard-evaluator-rss.log");
    let mut child = tokio::process::Command::new(&binary)
        .env_clear()
        .envs([
            ("AWS_LAMBDA_RUNTIME_API", runtime.address()),
            ("AWS_LAMBDA_FUNCTION_NAME", "dowguard-evaluator"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/dowguard-evaluator"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "bench"),
            ("AWS_REGION", dowguard_tests::REGION),
            ("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST"),
            ("AWS_SECRET_ACCESS_KEY", "local-test-secret"),
            ("AWS_ENDPOINT_URL", proxy.endpoint()),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("DOWGUARD_TABLE", TABLE),
            ("DOWGUARD_ACCOUNT_ID", dowguard_tests::ACCOUNT_ID),
            ("DOWGUARD_MODE", "enforce"),
            ("RUST_LOG", "warn"),
        ])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log)?)
        .stderr(std::fs::File::create(&log)?)
        .kill_on_drop(true)
        .spawn()?;
    let pid = child.id().ok_or("the evaluator exited at once")?;
    let started = Instant::now();
    let answers = runtime.answers(passes.len(), PASS_TIMEOUT).await;
    let elapsed = started.elapsed();
    let peak = peak_rss_kib(pid);
    child.kill().await?;
    let answers = answers.ok_or_else(|| {
        format!(
            "the evaluator did not answer {} events within {PASS_TIMEOUT:?}; its log: {}",
            passes.len(),
            log.display()
        )
    })?;
    for (i, answer) in answers.iter().enumerate() {
        let body = &answer.body;
        if !answer.ok || body.get("pass_at").is_none() {
            return Err(format!("pass {i} did not run: {body}").into());
        }
        println!(
            "bench: pass {i}: {} targets, {} metrics requested, gaps {}",
            body["targets"], body["metrics_requested"], body["gaps"]
        );
        if body["targets"].as_u64() != Some(TARGETS as u64) {
            return Err(format!("pass {i} saw {} targets, not {TARGETS}", body["targets"]).into());
        }
    }
    let calls = proxy.calls();
    for (op, n) in &calls {
        println!("bench: calls {op} {n}");
    }
    println!(
        "bench: {} passes in {:.1} s, {} GetMetricData calls answered with hourly points since day 1 of the month ({} days)",
        passes.len(),
        elapsed.as_secs_f64(),
        calls.get("cloudwatch:GetMetricData").copied().unwrap_or(0),
        now.day()
    );
    let mb = peak?.div_ceil(1024);
    println!("evaluator peak RSS, 10,000 targets: {mb} MB (target: <= {TARGET_MB} MB)");
    drop(aws);
    Ok(())
}
