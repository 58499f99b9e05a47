//! `make demo`: the real inventory, evaluator and alarm-responder binaries, run by
//! the Lambda runtime emulator (`cargo lambda watch`) and invoked with AWS event JSON
//! (`cargo lambda invoke`), against a small example account in the local
//! AWS server. It tells the story step by step — the account and its budgets, the
//! inventory the guard's passes read, the alarms the evaluator derives, a flood, the alarm responder's immediate throttle,
//! the evaluator's pass, calm, recovery and the exact restore — and stops the
//! emulator and the server it started, also on failure, within a bounded time.

use std::collections::BTreeMap;
use std::error::Error;
use std::time::Duration as StdDuration;

use chrono::{Duration, DurationRound, Utc};
use dowguard_domain::{Limits, TargetId};
use dowguard_tests::account::{ExampleAccount, LocalGuard, TABLE};
use dowguard_tests::emulator::{Emulator, fixture_at, root};
use dowguard_tests::{ACCOUNT_ID, LocalAws, REGION};
use serde_json::Value;

type DemoResult<T> = Result<T, Box<dyn Error + Send + Sync>>;

/// The whole demo, builds included, must finish within this.
const DEMO_TIMEOUT: StdDuration = StdDuration::from_secs(20 * 60);

fn describe(l: &Limits) -> String {
    match l {
        Limits::Function {
            reserved_concurrency, ..
        } => format!(
            "reserved concurrency {}",
            reserved_concurrency.map_or("none".into(), |n| n.to_string())
        ),
        Limits::Stage { throttle, .. } => match throttle {
            Some(t) => format!("stage throttle {} rps / burst {}", t.rate_limit, t.burst_limit),
            None => "no stage throttle".into(),
        },
        Limits::UsagePlan { throttle, quota } => format!(
            "plan throttle {}, quota {}",
            throttle.map_or("none".into(), |t| format!(
                "{} rps / burst {}",
                t.rate_limit, t.burst_limit
            )),
            quota.map_or("none".into(), |q| format!("{} a {:?}", q.limit, q.period)
                .to_lowercase())
        ),
    }
}

/// What the function answered, as a few lines.
fn tell(answer: &Value) {
    if let Some(why) = answer["rejected"].as_str() {
        println!("  rejected: {why}");
        return;
    }
    for b in answer["budgets"].as_array().into_iter().flatten() {
        println!(
            "  budget {:<15} spent {:>9} of {:>8}  burn {:>8} (short)  -> {} ({})",
            b["budget"].as_str().unwrap_or("?"),
            b["spent"].as_str().unwrap_or("?"),
            b["amount"].as_str().unwrap_or("?"),
            b["burn_short"].as_str().unwrap_or("?"),
            b["level"].as_str().unwrap_or("?"),
            b["rule"].as_str().unwrap_or("?"),
        );
    }
    for a in answer["actions"].as_array().into_iter().flatten() {
        if a["intent"] == "notify" {
            continue;
        }
        let change = &a["change"];
        let detail = if change["change"] == "reserved-concurrency" {
            format!(" {} -> {}", change["from"], change["to"])
        } else {
            String::new()
        };
        println!(
            "  {} {} {}{detail}  [{}: {}]",
            a["intent"].as_str().unwrap_or("?"),
            a["target"].as_str().unwrap_or("?"),
            change["change"].as_str().unwrap_or("?"),
            a["permission"].as_str().unwrap_or("?"),
            a["outcome"]["outcome"].as_str().unwrap_or("?"),
        );
    }
    let alarms = &answer["alarms"];
    if let Some(put) = alarms["put"].as_array().filter(|p| !p.is_empty()) {
        let names: Vec<&str> = put.iter().filter_map(Value::as_str).collect();
        println!("  alarms created or updated: {}", names.join(", "));
    }
}

async fn show_changes(local: &LocalGuard, before: &BTreeMap<TargetId, Limits>) -> DemoResult<()> {
    println!("  in the local AWS server now:");
    for (id, now) in local.limits().await? {
        let was = before.get(&id).map(describe).unwrap_or_default();
        let is = describe(&now);
        let mark = if was == is { "" } else { "   <- changed" };
        println!("    {:<36} {is}{mark}", id.to_string());
    }
    Ok(())
}

async fn run() -> DemoResult<()> {
    let dir = root().join("target/demo");
    std::fs::create_dir_all(&dir)?;
    println!("Starting the local AWS server (moto, from .venv)...");
    let aws = LocalAws::start().await.map_err(|e| e.to_string())?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let example = ExampleAccount::seed(&aws, now).await?;
    let local = LocalGuard::new(&aws).await?;
    let originals = local.limits().await?;
    println!("Example account at {}:", aws.endpoint());
    for (id, l) in &originals {
        println!("  {:<38} {}", id.to_string(), describe(l));
    }
    println!("Budgets: checkout-daily $240/day, shop-daily $50/day, partners-daily $50/day (enforce).");

    // The topic LocalGuard created (CreateTopic of an existing name returns it).
    let topic = aws_sdk_sns::Client::new(&aws.sdk_config())
        .create_topic()
        .name("dowguard")
        .send()
        .await?
        .topic_arn()
        .unwrap_or_default()
        .to_string();
    let env = [
        ("DOWGUARD_TABLE", TABLE),
        ("DOWGUARD_ACCOUNT_ID", ACCOUNT_ID),
        ("DOWGUARD_TOPIC_ARN", topic.as_str()),
        ("DOWGUARD_MODE", "enforce"),
        ("DOWGUARD_MAX_EVENT_AGE_MINUTES", "2880"),
        ("DOWGUARD_USAGE_PLAN_INTERVAL_SECONDS", "0"),
        // A five-minute schedule: the targets need alarms, and the alarm path runs.
        ("DOWGUARD_SCHEDULE_MINUTES", "5"),
        // The story's calm half hour is replayed in seconds: more passes a minute
        // than a deployment's cap of 6 allows.
        ("DOWGUARD_MAX_PASSES_PER_MINUTE", "100"),
        // The rule the scheduled fixture comes from, pinned as the template pins it.
        (
            "DOWGUARD_SCHEDULE_RULE_ARN",
            "arn:aws:events:us-east-1:123456789012:rule/dowguard-evaluator-schedule",
        ),
        ("AWS_REGION", REGION),
        ("AWS_DEFAULT_REGION", REGION),
        ("AWS_ENDPOINT_URL", aws.endpoint()),
        ("AWS_ACCESS_KEY_ID", "AKIDLOCALDEMO"),
        ("AWS_SECRET_ACCESS_KEY", "local-demo-secret"),
        ("AWS_LAMBDA_LOG_LEVEL", "warn"),
    ];

    println!(
        "\nStarting the Lambda runtime emulator (cargo lambda watch); the first invocation builds the functions..."
    );
    let emulator = Emulator::start(&env, Some(&dir.join("watch.log")))
        .await
        .map_err(|e| format!("{e} (see target/demo/watch.log)"))?;

    println!(
        "\n== The inventory function reads the guarded targets into the guard's table (CloudTrail's change events keep it current; here, its schedule) =="
    );
    let answer = emulator
        .invoke("dowguard-inventory", &fixture_at("scheduled-event.json", now)?)
        .await?;
    println!(
        "  read {} targets, {} kept in the inventory; {}",
        answer["read"],
        answer["written"].as_array().map_or(0, Vec::len),
        answer["trail"]["note"].as_str().unwrap_or("no trail check")
    );

    let attack_end = dowguard_tests::account::attack_end_before(now);
    let attack_start = attack_end - Duration::minutes(10);
    let calm = attack_start - Duration::minutes(15);
    println!(
        "\n== {} UTC: the scheduled evaluator (every 5 minutes) runs on a calm account and derives an alarm on each guarded target ==",
        calm.format("%H:%M")
    );
    let answer = emulator
        .invoke("dowguard-evaluator", &fixture_at("scheduled-event.json", calm)?)
        .await?;
    tell(&answer);

    println!(
        "\n== {} to {} UTC: a flood — 16M invocations a minute on checkout, 1M requests a minute on shop/prod ==",
        attack_start.format("%H:%M"),
        attack_end.format("%H:%M")
    );
    example.flood(&aws, attack_end, 10).await?;

    let alarm_at = attack_end + Duration::minutes(1);
    println!(
        "\n== {} UTC: alarm dowguard-function:checkout goes to ALARM; EventBridge invokes the alarm responder ==",
        alarm_at.format("%H:%M")
    );
    let answer = emulator
        .invoke(
            "dowguard-alarm-responder",
            &fixture_at("alarm-state-change.json", alarm_at)?,
        )
        .await?;
    tell(&answer);
    show_changes(&local, &originals).await?;

    println!("\n== A forged alarm event from another account reaches the responder ==");
    let answer = emulator
        .invoke(
            "dowguard-alarm-responder",
            &fixture_at("alarm-other-account.json", alarm_at)?,
        )
        .await?;
    tell(&answer);

    let at = alarm_at + Duration::minutes(1);
    println!(
        "\n== {} UTC: the next scheduled evaluation sees the flood on the API too ==",
        at.format("%H:%M")
    );
    let answer = emulator
        .invoke("dowguard-evaluator", &fixture_at("scheduled-event.json", at)?)
        .await?;
    tell(&answer);
    show_changes(&local, &originals).await?;

    println!(
        "\n== The flood has stopped. The evaluator runs every 5 minutes (passes that change something are shown) =="
    );
    let mut at = at;
    for _ in 0..24 {
        at += Duration::minutes(5);
        let answer = emulator
            .invoke("dowguard-evaluator", &fixture_at("scheduled-event.json", at)?)
            .await?;
        let changed = answer["actions"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["intent"] != "notify"));
        if changed {
            println!("-- {} UTC --", at.format("%H:%M"));
            tell(&answer);
        }
    }
    drop(emulator);
    println!("\nLambda emulator stopped.");

    let after = local.limits().await?;
    println!("\nAfter recovery, in the local AWS server:");
    for (id, l) in &after {
        println!("  {:<38} {}", id.to_string(), describe(l));
    }
    let exact = after == originals;
    println!(
        "\nOriginal limits restored exactly: {}",
        if exact { "yes" } else { "NO" }
    );
    drop(aws);
    println!("Local AWS server stopped.");
    if exact {
        Ok(())
    } else {
        Err("the originals were not restored".into())
    }
}

#[tokio::main]
async fn main() -> DemoResult<()> {
    // Leaving `run` early (timeout, Ctrl-C, error) drops the emulator and the
    // server, which stops them.
    tokio::select! {
        outcome = tokio::time::timeout(DEMO_TIMEOUT, run()) => match outcome {
            Ok(result) => result,
            Err(_) => Err(format!("the demo did not finish within {DEMO_TIMEOUT:?}; everything it started is stopped").into()),
        },
        _ = tokio::signal::ctrl_c() => Err("interrupted; everything the demo started is stopped".into()),
    }
}
