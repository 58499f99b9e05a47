//! `make demo`: the guard against a small example account in the local AWS server,
//! step by step — the account, the budgets, a flood, what the guard saw, decided and
//! changed, then calm, recovery and the exact restore. Stops everything it started.

use std::error::Error;

use chrono::{DateTime, DurationRound, Utc};
use dowguard_domain::{Change, Intent, Limits, TargetId};
use dowguard_guard::ports::{Discovery, StateStore};
use dowguard_guard::{Outcome, PassReport};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, LocalGuard};

fn limits(l: &Limits) -> String {
    match l {
        Limits::Function {
            reserved_concurrency, ..
        } => format!(
            "reserved concurrency {}",
            reserved_concurrency.map_or("none".into(), |n| n.to_string())
        ),
        Limits::Stage { throttle } => match throttle {
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

fn print_pass(title: &str, at: DateTime<Utc>, report: &PassReport) {
    println!("\n== {title} (pass at {}) ==", at.format("%H:%M UTC"));
    for r in report.reports() {
        println!(
            "  budget {:<15} spent {:>10} of {:>8}  demand {:>8} short / {:>7} long  -> {:?} ({:?})",
            r.budget.to_string(),
            r.spent.display_dp(2),
            r.amount.display_dp(2),
            r.demand_short.to_string(),
            r.demand_long.to_string(),
            r.level,
            r.rule
        );
    }
    for (action, outcome) in report.results() {
        if action.intent == Intent::Notify {
            continue;
        }
        let what = match &action.change {
            Change::ReservedConcurrency { from, to, .. } => {
                format!("reserved concurrency {from:?} -> {to:?}")
            }
            Change::AsyncInvokeConfig { from, to, .. } => format!("async config {from:?} -> {to:?}"),
            Change::StageThrottle { from, to, .. } => format!(
                "stage throttle {} -> {}",
                from.map_or("none".into(), |t| format!("{} rps", t.rate_limit)),
                to.map_or("none".into(), |t| format!("{} rps", t.rate_limit))
            ),
            Change::UsagePlanLimits {
                from_throttle,
                to_throttle,
                ..
            } => format!(
                "plan throttle {} -> {}",
                from_throttle.map_or("none".into(), |t| format!("{} rps", t.rate_limit)),
                to_throttle.map_or("none".into(), |t| format!("{} rps", t.rate_limit))
            ),
            Change::Notify { .. } => continue,
        };
        println!(
            "  {:?} {} {what}  [{}: {}]",
            action.intent,
            action.target,
            action.permission(),
            outcome.word()
        );
        if let Outcome::Failed { error, .. } = outcome {
            println!("    {error}");
        }
    }
    let notices = report
        .results()
        .filter(|(a, _)| a.intent == Intent::Notify)
        .count();
    println!(
        "  {notices} notice(s) published; {} metrics requested",
        report.metrics_requested
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error + Send + Sync>> {
    println!("Starting the local AWS server (moto, from .venv)...");
    let aws = LocalAws::start().await.map_err(|e| format!("{e}"))?;
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1))?;
    let example = ExampleAccount::seed(&aws, now).await?;
    let local = LocalGuard::new(&aws).await?;
    println!("Example account at {}:", aws.endpoint());
    for t in local.stack.account.discover().await? {
        println!("  {:<38} {}", t.id.to_string(), limits(&t.limits));
    }
    println!("Budgets: checkout-daily $240/day, shop-daily $50/day, partners-daily $50/day (enforce).");

    let attack_end = now - chrono::Duration::hours(4);
    println!(
        "\nA flood from {} to {} UTC: 16M invocations a minute on checkout, 1M requests a minute on shop/prod.",
        (attack_end - chrono::Duration::minutes(10)).format("%H:%M"),
        attack_end.format("%H:%M")
    );
    example.flood(&aws, attack_end, 10).await?;
    let guard = local.guard("evaluator");
    let at = attack_end + chrono::Duration::minutes(1);
    let report = guard.evaluate(at).await?;
    print_pass("The evaluator sees the flood", at, &report);

    println!("\nThe flood stops. The evaluator keeps running every 5 minutes:");
    let mut at = at;
    for _ in 0..24 {
        at += chrono::Duration::minutes(5);
        let report = guard.evaluate(at).await?;
        if report.results().any(|(a, _)| a.intent != Intent::Notify) {
            print_pass("Calm for the cool-down", at, &report);
        }
    }
    println!("\nAfter recovery:");
    let states = local.stack.store.load_states().await?;
    for t in local.stack.account.discover().await? {
        let phase = states.get(&t.id).map_or("normal".into(), |s| s.phase.name());
        println!(
            "  {:<38} {:<44} state {phase}",
            t.id.to_string(),
            limits(&t.limits)
        );
    }
    let checkout = TargetId::parse("function:checkout")?;
    let restored = local
        .stack
        .account
        .discover()
        .await?
        .into_iter()
        .find(|t| t.id == checkout);
    let exact = restored.is_some_and(|t| {
        t.limits
            == Limits::Function {
                reserved_concurrency: Some(50),
                async_config: None,
            }
    });
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
