//! One full decision pass for 10,000 targets, each with an hour of one-minute
//! windows, a budget of its own, a team tag budget and the account budget; and, in
//! the same run, a bare walk over exactly the inputs that pass reads (each target's
//! datapoints found and summed, nothing else), so that `make bench` can print the
//! pass's time as a multiple of the walk's: a ratio that holds across machines where
//! absolute times do not.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests and benchmarks fail loudly on bad fixtures"
)]
#![allow(missing_docs)]

use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;

use chrono::{TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use dowguard_domain::window::bare_walk;
use dowguard_domain::{
    AccountConcurrency, AccountUsage, Arch, Budget, BudgetSpec, Floors, GuardSettings, Inputs, Limits,
    MinuteUsage, PriceBook, Target, TargetId, TargetMetrics, TargetSpec, Throttle, Usage, decide,
    epoch_minute,
};

const TARGETS: usize = 10_000;

fn budget(id: String, scope: String, amount: &str, mode: &str) -> Budget {
    Budget::parse(BudgetSpec {
        id,
        scope,
        period: "day".into(),
        amount: amount.into(),
        thresholds: vec![],
        mode: mode.into(),
        owner: "finance@example.com".into(),
        topic: None,
        floors: Floors::default(),
        protected: false,
    })
    .expect("valid budget")
}

fn bench_decide(c: &mut Criterion) {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 22, 14, 30, 0)
        .single()
        .expect("time");
    let prices = PriceBook::bundled()
        .and_then(|b| b.prices("us-east-1", false))
        .expect("prices");
    let settings = GuardSettings::default();
    let mut targets = Vec::with_capacity(TARGETS);
    let mut budgets = Vec::with_capacity(TARGETS + 2);
    let mut metrics = HashMap::with_capacity(TARGETS);
    let last = epoch_minute(now) - 1;
    for i in 0..TARGETS {
        let (id, spec, limits) = if i % 10 == 0 {
            (
                TargetId::parse(&format!("rest-stage:api{i:07}/prod")).expect("id"),
                TargetSpec::RestStage,
                Limits::stage(Some(Throttle {
                    rate_limit: 1_000.into(),
                    burst_limit: 2_000,
                })),
            )
        } else {
            (
                TargetId::parse(&format!("function:fn-{i:05}")).expect("id"),
                TargetSpec::Function {
                    memory_mb: 512,
                    arch: if i % 2 == 0 { Arch::Arm64 } else { Arch::X86_64 },
                    async_invoked: i % 7 == 0,
                },
                Limits::Function {
                    reserved_concurrency: None,
                    async_config: None,
                },
            )
        };
        let mut tags = BTreeMap::new();
        tags.insert("team".to_string(), format!("team-{}", i % 20));
        // Every 50th target is under attack; the rest run near their pace.
        let attacked = i % 50 == 0;
        let minutes = (0..60)
            .map(|k| {
                let requests = if attacked && k > 50 {
                    2_000_000
                } else {
                    2_000 + (k as u64 * 37 + i as u64) % 500
                };
                MinuteUsage {
                    minute: last - 59 + k,
                    usage: Usage {
                        requests,
                        throttled: 0,
                        duration_ms: requests * 120,
                    },
                }
            })
            .collect();
        metrics.insert(
            id.clone(),
            TargetMetrics {
                minutes,
                to_date: vec![],
            },
        );
        budgets.push(budget(format!("b-{i:05}"), id.to_string(), "400", "enforce"));
        targets.push(Target {
            id,
            spec,
            tags,
            limits,
            guarded: true,
            usage_plans: Default::default(),
        });
    }
    budgets.push(budget(
        "team-3".into(),
        "tag:team=team-3".into(),
        "5000",
        "dry-run",
    ));
    budgets.push(budget("account".into(), "account".into(), "500000", "enforce"));
    let states = HashMap::new();
    let inputs = Inputs {
        now,
        budgets: &budgets,
        targets: &targets,
        states: &states,
        metrics: &metrics,
        prices: &prices,
        account_usage: AccountUsage::default(),
        gaps: &dowguard_domain::Gaps::NONE,
        attribution: &dowguard_domain::source::Attribution::NONE,
        concurrency: AccountConcurrency {
            limit: 100_000,
            unreserved_minimum: 100,
            unreserved_now: 100_000,
        },
        settings: &settings,
    };
    let decision = decide(&inputs);
    println!(
        "decide: {TARGETS} targets, {} budgets, 60 one-minute windows each -> {} actions, {} state changes",
        budgets.len(),
        decision.actions.len(),
        decision.states.len()
    );
    let mut group = c.benchmark_group("decide");
    group
        .sample_size(30)
        .measurement_time(std::time::Duration::from_secs(8));
    group.bench_function("10k_targets_1h_windows", |b| {
        b.iter(|| black_box(decide(black_box(&inputs))))
    });
    group.bench_function("bare_walk", |b| {
        b.iter(|| black_box(bare_walk(black_box(&targets), black_box(&metrics))))
    });
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);
