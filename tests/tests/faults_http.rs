//! Fault injection at the wire, for every AWS call an acting pass makes.
//!
//! The guard's SDK clients talk to the local AWS server through a small proxy on
//! loopback. A clean pass over a flooded example account is recorded first: every
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use chrono::{DateTime, DurationRound, Utc};
use dowguard_domain::{Limits, TargetId};
use dowguard_guard::ports::{Discovery, StateStore};
use dowguard_tests::LocalAws;
use dowguard_tests::account::{ExampleAccount, LocalGuard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    ServerError,
    NoAnswer,
    AppliedThenLost,
}

const FAULTS: [Fault; 3] = [Fault::ServerError, Fault::NoAnswer, Fault::AppliedThenLost];

/// What the proxy does and saw.
#[derive(Debug, Default)]
struct Wire {
    /// Requests seen since the last reset.
    count: AtomicUsize,
    /// The request index to break, and how.
    fault: Mutex<Option<(usize, Fault)>>,
    /// Every request forwarded to the server: `METHOD path`.
    forwarded: Mutex<Vec<String>>,
    /// Every request received since the last reset: `METHOD path`.
    seen: Mutex<Vec<String>>,
}

impl Wire {
    /// Counts requests from 0 again, breaks the given one, forgets what was forwarded.
    fn arm(&self, fault: Option<(usize, Fault)>) {
        self.count.store(0, Ordering::SeqCst);
        *self.fault.lock().unwrap() = fault;
        self.forwarded.lock().unwrap().clear();
        self.seen.lock().unwrap().clear();
    }

    /// Stops breaking requests, keeping the record of what was forwarded.
    fn disarm(&self) {
        *self.fault.lock().unwrap() = None;
    }

    /// Writes that changed a limit, per kind of limit.
    fn writes(&self) -> BTreeMap<&'static str, usize> {
        let mut out = BTreeMap::new();
        for line in self.forwarded.lock().unwrap().iter() {
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
}

/// Reads one HTTP/1.1 message (head and `Content-Length` body) from `stream`.
async fn read_message(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut chunk = [0_u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((head, buf[head_end..head_end + length].to_vec()))
}

/// The head with `Connection: close` in place of any connection header.
fn closing(head: &str) -> String {
    let mut lines: Vec<&str> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    lines.push("Connection: close");
    format!("{}\r\n\r\n", lines.join("\r\n"))
}

async fn forward(upstream: &str, head: &str, body: &[u8]) -> Vec<u8> {
    let mut server = TcpStream::connect(upstream).await.unwrap();
    server.write_all(closing(head).as_bytes()).await.unwrap();
    server.write_all(body).await.unwrap();
    let (reply_head, reply_body) = read_message(&mut server).await.expect("the server answers");
    let mut out = closing(&reply_head).into_bytes();
    out.extend_from_slice(&reply_body);
    out
}

async fn serve(listener: TcpListener, upstream: String, wire: Arc<Wire>) {
    loop {
        let Ok((mut client, _)) = listener.accept().await else {
            return;
        };
        let (upstream, wire) = (upstream.clone(), wire.clone());
        tokio::spawn(async move {
            let Some((head, body)) = read_message(&mut client).await else {
                return;
            };
            let request_line = head.lines().next().unwrap_or_default().to_string();
            let mut parts = request_line.split_whitespace();
            let line = format!("{} {}", parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            let index = {
                let mut seen = wire.seen.lock().unwrap();
                seen.push(line.clone());
                wire.count.fetch_add(1, Ordering::SeqCst)
            };
            let fault = wire
                .fault
                .lock()
                .unwrap()
                .filter(|(i, _)| *i == index)
                .map(|(_, f)| f);
            let record = |wire: &Wire| wire.forwarded.lock().unwrap().push(line.clone());
            let reply = match fault {
                Some(Fault::NoAnswer) => {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    return;
                }
                Some(Fault::ServerError) => {
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec()
                }
                Some(Fault::AppliedThenLost) => {
                    forward(&upstream, &head, &body).await;
                    record(&wire);
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_vec()
                }
                None => {
                    let reply = forward(&upstream, &head, &body).await;
                    record(&wire);
                    reply
                }
            };
            let _ = client.write_all(&reply).await;
            let _ = client.shutdown().await;
        });
    }
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
    wire: Arc<Wire>,
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
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = format!("http://{}", listener.local_addr().unwrap());
        let upstream = aws.endpoint().trim_start_matches("http://").to_string();
        let wire = Arc::new(Wire::default());
        tokio::spawn(serve(listener, upstream, wire.clone()));
        // No retries, so one broken request fails its call; a short timeout for
        // the request that is never answered.
        let config = dowguard_tests::sdk_config_for(&proxy)
            .into_builder()
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .operation_timeout(Duration::from_secs(2))
                    .build(),
            )
            .build();
        Rig { aws, wire, config }
    }

    /// Seeds the account afresh; returns the guard and the original limits.
    async fn seed(&self, times: Times) -> (LocalGuard, BTreeMap<TargetId, Limits>) {
        self.aws.reset().await.unwrap();
        let example = ExampleAccount::seed(&self.aws, times.now).await.unwrap();
        example.flood(&self.aws, times.attack_end, 10).await.unwrap();
        let guard = LocalGuard::with_config(&self.config).await.unwrap();
        let originals = guard.limits().await.unwrap();
        (guard, originals)
    }

    /// One case: the first pass with `fault` at request `index`, then a clean pass.
    async fn case(&self, times: Times, index: usize, fault: Fault, clean: &Clean) {
        let (guard, originals) = self.seed(times).await;
        self.wire.arm(Some((index, fault)));
        let case = format!("{fault:?} at request {index} ({})", clean.requests[index]);
        // The faulted pass may fail as a whole (discovery, the table): that is fine.
        let _ = guard.guard("evaluator").evaluate(times.first).await;
        check(&guard, &originals, &case, false).await;
        self.wire.disarm();
        guard.guard("evaluator").evaluate(times.second).await.unwrap();
        let held = check(&guard, &originals, &case, true).await;
        assert_eq!(
            held, clean.held,
            "{case}: every target is throttled after the next pass"
        );
        for (write, n) in self.wire.writes() {
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
    rig.wire.arm(None);
    guard.guard("evaluator").evaluate(times.first).await.unwrap();
    let requests = rig.wire.seen.lock().unwrap().clone();
    guard.guard("evaluator").evaluate(times.second).await.unwrap();
    let clean = Clean {
        requests,
        writes: rig.wire.writes(),
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
