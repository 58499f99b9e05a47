//! Fault injection at the wire, for every AWS call an acting pass makes.
//!
//! The guard's SDK clients talk to the local AWS server through the loopback proxy
//! (`dowguard_tests::proxy`). A clean pass over a flooded example account is recorded first: every
//! HTTP request it sends. Then, for every request of that pass and for each fault,
//! the account is seeded again and the pass runs with that one request
//!
//! - answered **503** (a server error; the SDK's retries are off, so the call fails),
//! - **never answered** (the SDK's operation timeout fires; writes only, since for a
//!   read it is the same failure as a 503),
//! - **forwarded, then answered 500** (AWS acted, the guard does not know),
//!
//! followed by one clean pass. After both passes: no target is changed without a
//! stored restore point, every restore point is the original, every throttled target
//! is at exactly the limits its stored state says were applied, all three targets
//! are throttled as in the clean run, and no kind of limit was written more often
//! than in the clean run (no action applied twice). The cases run on two servers side
//! by side.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::BTreeMap;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use chrono::{DateTime, DurationRound, Utc};
use dowguard_domain::{Limits, TargetId};
use dowguard_guard::ports::{Discovery, StateStore};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, LocalGuard};
use dowguard_tests::proxy::{Fault, Proxy};

const FAULTS: [Fault; 3] = [Fault::ServerError, Fault::NoAnswer, Fault::AppliedThenLost];

/// Writes that changed a limit and reached the server, per kind of limit.
fn writes(proxy: &Proxy) -> BTreeMap<&'static str, usize> {
    let mut out = BTreeMap::new();
    for request in proxy.requests().iter().filter(|r| r.reached_server()) {
        let line = request.line();
        let kind = if line.starts_with("GET") {
            continue;
        } else if line.contains("/concurrency") {
            "reserved concurrency"
        } else if line.contains("/event-invoke-config") {
            "async invoke config"
        } else if line.starts_with("PATCH") && line.contains("/stages/") {
            "stage throttle"
        } else if line.starts_with("PATCH") && line.contains("/usageplans/") {
            "usage plan"
        } else {
            continue;
        };
        *out.entry(kind).or_default() += 1;
    }
    out
}

/// Checks the account against the stored states: no target changed without a
/// restore point, every restore point the original, and every held target at the
/// limits its state says were applied. Returns how many targets are held.
async fn check(
    guard: &LocalGuard,
    originals: &BTreeMap<TargetId, Limits>,
    case: &str,
    settled: bool,
) -> usize {
    let states = guard.stack.store.load_states().await.unwrap();
    let mut held = 0;
    for t in guard.stack.account.discover().await.unwrap() {
        let Some(original) = originals.get(&t.id) else {
            continue;
        };
        let state = states.get(&t.id);
        let stored = state.and_then(|s| s.restore_point.as_ref());
        if let Some(rp) = stored {
            assert_eq!(
                &rp.limits, original,
                "{case}: {}'s restore point is not the original",
                t.id
            );
        }
        if &t.limits != original {
            assert!(
                stored.is_some(),
                "{case}: {} changed without a restore point",
                t.id
            );
        }
        if settled && let Some(s) = state.filter(|s| s.phase.is_tightened()) {
            held += 1;
            assert_eq!(
                s.applied.as_ref(),
                Some(&t.limits),
                "{case}: {} is not at the limits its state says",
                t.id
            );
            assert_ne!(&t.limits, original, "{case}: {} is held but not tightened", t.id);
        }
    }
    held
}

/// One local AWS server behind one fault-injecting proxy.
struct Rig {
    aws: LocalAws,
    proxy: Proxy,
    config: aws_config::SdkConfig,
}

/// The timeline every case shares: a flood ending early in the day, two passes.
#[derive(Debug, Clone, Copy)]
struct Times {
    now: DateTime<Utc>,
    attack_end: DateTime<Utc>,
    first: DateTime<Utc>,
    second: DateTime<Utc>,
}

impl Rig {
    async fn start() -> Rig {
        let aws = LocalAws::start().await.unwrap();
        let proxy = Proxy::start(aws.endpoint()).await.unwrap();
        // No retries, so one broken request fails its call; a short timeout for
        // the request that is never answered.
        let config = dowguard_tests::sdk_config_for(proxy.endpoint())
            .into_builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        Rig { aws, proxy, config }
    }

    /// Seeds the account afresh; returns the guard and the original limits.
    async fn seed(&self, times: Times) -> (LocalGuard, BTreeMap<TargetId, Limits>) {
        self.aws.reset().await.unwrap();
        let example = ExampleAccount::seed(&self.aws, times.now).await.unwrap();
        example.flood(&self.aws, times.attack_end, 10).await.unwrap();
        let guard = LocalGuard::with_config(&self.config).await.unwrap();
        let originals = guard.limits().await.unwrap();
        guard.reconcile(Utc::now()).await.unwrap();
        (guard, originals)
    }

    /// One case: the first pass with `fault` at request `index`, then a clean pass.
    async fn case(&self, times: Times, index: usize, fault: Fault, clean: &Clean) {
        let (guard, originals) = self.seed(times).await;
        self.proxy.arm(Some((index, fault)));
        let case = format!("{fault:?} at request {index} ({})", clean.requests[index]);
        // The faulted pass may fail as a whole (discovery, the table): that is fine.
        let _ = guard.guard("evaluator").evaluate(times.first).await;
        check(&guard, &originals, &case, false).await;
        self.proxy.disarm();
        guard.guard("evaluator").evaluate(times.second).await.unwrap();
        let held = check(&guard, &originals, &case, true).await;
        assert_eq!(
            held, clean.held,
            "{case}: every target is throttled after the next pass"
        );
        for (write, n) in writes(&self.proxy) {
            let allowed = clean.writes.get(write).copied().unwrap_or(0);
            assert!(
                n <= allowed,
                "{case}: {write} sent {n} times, {allowed} in the clean run"
            );
        }
    }
}

impl Rig {
    /// Runs `cases` one after the other on this rig.
    async fn cases(&self, times: Times, cases: &[(usize, Fault)], clean: &Clean) {
        for &(index, fault) in cases {
            self.case(times, index, fault, clean).await;
        }
    }
}

/// What the clean run did.
#[derive(Debug)]
struct Clean {
    /// The acting pass's requests, `METHOD path`.
    requests: Vec<String>,
    writes: BTreeMap<&'static str, usize>,
    held: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_of_an_acting_pass_can_fail_at_the_wire_without_harm() {
    let now = Utc::now().duration_trunc(chrono::Duration::minutes(1)).unwrap();
    let attack_end = dowguard_tests::account::attack_end_before(now);
    let first = attack_end + chrono::Duration::minutes(1);
    let times = Times {
        now,
        attack_end,
        first,
        second: first + chrono::Duration::minutes(1),
    };
    let rigs = [Rig::start().await, Rig::start().await];

    // The clean run, recording every request of the acting pass.
    let rig = &rigs[0];
    let (guard, originals) = rig.seed(times).await;
    rig.proxy.arm(None);
    guard.guard("evaluator").evaluate(times.first).await.unwrap();
    let requests: Vec<String> = rig.proxy.requests().iter().map(|r| r.line()).collect();
    guard.guard("evaluator").evaluate(times.second).await.unwrap();
    let clean = Clean {
        requests,
        writes: writes(&rig.proxy),
        held: check(&guard, &originals, "clean", true).await,
    };
    assert_eq!(clean.held, 3, "the clean run throttles all three targets");
    assert_eq!(
        clean.writes.keys().copied().collect::<Vec<_>>(),
        ["reserved concurrency", "stage throttle", "usage plan"],
        "the proxy sees the clean run's writes"
    );

    // Every request of the acting pass, with every fault; a read that is never
    // answered fails as a 5xx does, so only writes also get the no-answer fault.
    let mut cases = Vec::new();
    for (index, request) in clean.requests.iter().enumerate() {
        for fault in FAULTS {
            if fault != Fault::NoAnswer || !request.starts_with("GET") {
                cases.push((index, fault));
            }
        }
    }
    let halves: Vec<Vec<(usize, Fault)>> = vec![
        cases.iter().copied().step_by(2).collect(),
        cases.iter().copied().skip(1).step_by(2).collect(),
    ];
    tokio::join!(
        rigs[0].cases(times, &halves[0], &clean),
        rigs[1].cases(times, &halves[1], &clean),
    );
    println!(
        "wire faults: {} cases over the {} requests of an acting pass (503, no answer, \
         applied then lost); 0 lost restore points, 0 targets off their stated limits after \
         the next pass, 0 limits written twice",
        cases.len(),
        clean.requests.len()
    );
}
