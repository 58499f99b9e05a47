//! A loopback HTTP proxy between the guard's SDK clients and the local AWS server,
//! for tests that need to see or shape the wire.
//!
//! [`Proxy::start`] listens on `127.0.0.1` on a port the OS picks and forwards each
//! HTTP/1.1 request to the upstream server (the [`crate::LocalAws`] endpoint), one
//! request per connection. Point clients at it with
//! `crate::sdk_config_for(proxy.endpoint())`. It records every request it receives
//! ([`Request`]: when, method, target, the AWS service and operation it is, and
//! what the proxy did with it), and can
//!
//! - break one request on purpose ([`Proxy::arm`] with a [`Fault`]): answer it
//!   503, never answer it, or forward it and then answer 500;
//! - enforce AWS's account-wide control-plane quotas ([`Proxy::start_with_quotas`]
//!   with [`AWS_QUOTAS`]): a request over a quota is not forwarded but answered
//!   429 in the service's own error shape, as AWS would, and counted
//!   ([`Proxy::throttled`]);
//! - answer some requests itself ([`Proxy::start_answering`] with a [`Responder`]),
//!   for what the local server cannot hold at scale (a month of one-minute metrics
//!   for thousands of functions).
//!
//! It only listens on loopback and only connects to the upstream it was given. It
//! stops when dropped: the listener and every connection still open (a request
//! held by [`Fault::NoAnswer`] included) are closed.

mod operation;
mod quota;
pub(crate) mod wire;

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

pub use operation::{Operation, ROUTES, signing_service};
pub use quota::{AWS_QUOTAS, Applies, Bucket, Buckets, Quota, Refusal, throttled_answer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How long a request broken with [`Fault::NoAnswer`] is held before its
/// connection is dropped: far longer than any test's operation timeout.
pub const NO_ANSWER_HOLD: Duration = Duration::from_secs(60);

/// A way to break one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answered `503 Service Unavailable` without forwarding it.
    ServerError,
    /// Never answered: the connection is held open, then dropped.
    NoAnswer,
    /// Forwarded (the server acts on it), then answered `500`: AWS acted and the
    /// caller does not know.
    AppliedThenLost,
}

/// What the proxy did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Forwarded to the server, which answered.
    Forwarded,
    /// Answered 429 by the proxy, not forwarded: over the named quota.
    Throttled(&'static str),
    /// Broken on purpose.
    Fault(Fault),
    /// Forwarding failed (the server did not answer whole): answered 502.
    Unforwarded,
    /// Answered by the proxy's [`Responder`], not forwarded.
    Synthetic,
}

/// An answer the proxy gives itself: status line (`200 OK`), headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Synthetic {
    /// The status, e.g. `200 OK`.
    pub status: &'static str,
    /// Headers besides `Content-Length` and `Connection`.
    pub headers: Vec<(&'static str, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// Decides, from a request's operation and body, whether the proxy answers it
/// itself (`Some`) or forwards it (`None`).
pub type Responder = Arc<dyn Fn(&Operation, &[u8]) -> Option<Synthetic> + Send + Sync>;

/// One request the proxy received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// A number no other request of this proxy has.
    pub id: u64,
    /// Its position among the requests since the last [`Proxy::clear`] or
    /// [`Proxy::arm`], from 0.
    pub index: usize,
    /// When the proxy had read it whole (and decided what to do with it).
    pub at: Instant,
    /// `GET`, `PUT`, `PATCH`...
    pub method: String,
    /// The request target as sent: the path and any query.
    pub target: String,
    /// The AWS service and operation.
    pub operation: Operation,
    /// What the proxy did with it.
    pub answer: Answer,
}

impl Request {
    /// `METHOD target`.
    #[must_use]
    pub fn line(&self) -> String {
        format!("{} {}", self.method, self.target)
    }

    /// The path, without the query.
    #[must_use]
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or_default()
    }

    /// Whether it reached the server: forwarded, or applied and then lost.
    #[must_use]
    pub fn reached_server(&self) -> bool {
        matches!(
            self.answer,
            Answer::Forwarded | Answer::Fault(Fault::AppliedThenLost)
        )
    }
}

/// What the proxy knows and does, shared with its connections.
#[derive(Debug)]
struct State {
    upstream: String,
    started: Instant,
    /// The next request's [`Request::id`].
    next_id: u64,
    /// Every request since the last clear.
    requests: Vec<Request>,
    /// The request index to break, and how.
    fault: Option<(usize, Fault)>,
    /// The quotas' buckets, in quota mode.
    buckets: Option<Buckets>,
    /// Answers some requests instead of the server.
    responder: Option<Respond>,
}

/// A [`Responder`] the state can show.
struct Respond(Responder);

impl std::fmt::Debug for Respond {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

/// A running proxy. Dropping it stops it.
#[derive(Debug)]
pub struct Proxy {
    endpoint: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Proxy {
    /// A proxy forwarding to `upstream` (`http://127.0.0.1:PORT`, e.g.
    /// [`crate::LocalAws::endpoint`]), recording every request.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound, or `upstream` is not plain `http://`.
    pub async fn start(upstream: &str) -> io::Result<Proxy> {
        Self::launch(upstream, None, None).await
    }

    /// The same, enforcing `quotas` (normally [`AWS_QUOTAS`]) from now on: a
    /// request over one is answered 429 by the proxy.
    ///
    /// # Errors
    ///
    /// As [`Proxy::start`].
    pub async fn start_with_quotas(upstream: &str, quotas: &[Quota]) -> io::Result<Proxy> {
        Self::launch(upstream, Some(Buckets::new(quotas)), None).await
    }

    /// A proxy that answers the requests `responder` takes and forwards the rest
    /// to `upstream`.
    ///
    /// # Errors
    ///
    /// As [`Proxy::start`].
    pub async fn start_answering(upstream: &str, responder: Responder) -> io::Result<Proxy> {
        Self::launch(upstream, None, Some(responder)).await
    }

    async fn launch(
        upstream: &str,
        buckets: Option<Buckets>,
        responder: Option<Responder>,
    ) -> io::Result<Proxy> {
        let upstream = upstream
            .strip_prefix("http://")
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the upstream must be http://HOST:PORT",
                )
            })?
            .trim_end_matches('/')
            .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State {
            upstream,
            started: Instant::now(),
            next_id: 0,
            requests: Vec::new(),
            fault: None,
            buckets,
            responder: responder.map(Respond),
        }));
        let server = tokio::spawn(wire::serve_each(listener, state.clone(), handle));
        Ok(Proxy {
            endpoint,
            state,
            server,
        })
    }

    /// The proxy's base URL, `http://127.0.0.1:PORT`.
    #[must_use]
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Forgets every request recorded so far and numbers the next one 0, then
    /// breaks request `fault.0` with `fault.1` (none: breaks nothing).
    pub fn arm(&self, fault: Option<(usize, Fault)>) {
        let mut state = lock(&self.state);
        state.requests.clear();
        state.fault = fault;
    }

    /// Stops breaking requests, keeping the record.
    pub fn disarm(&self) {
        lock(&self.state).fault = None;
    }

    /// Forgets every request recorded so far.
    pub fn clear(&self) {
        lock(&self.state).requests.clear();
    }

    /// Every request since the last clear, in the order the proxy read them.
    #[must_use]
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.state).requests.clone()
    }

    /// Requests by operation key (`api:Operation`), whatever their answer.
    #[must_use]
    pub fn calls(&self) -> BTreeMap<String, usize> {
        count(self.requests().iter())
    }

    /// Requests answered 429 by the proxy, by operation key.
    #[must_use]
    pub fn throttled(&self) -> BTreeMap<String, usize> {
        count(
            self.requests()
                .iter()
                .filter(|r| matches!(r.answer, Answer::Throttled(_))),
        )
    }
}

fn count<'a>(requests: impl Iterator<Item = &'a Request>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for r in requests {
        *out.entry(r.operation.key()).or_default() += 1;
    }
    out
}

/// What to do with one request, decided when it is read.
enum Plan {
    Forward,
    Fault(Fault),
    /// Answered by the proxy: over a quota, or by its responder.
    Reply(Vec<u8>),
}

async fn handle(mut client: TcpStream, state: Arc<Mutex<State>>) {
    let Some(request) = wire::read_message(&mut client).await else {
        return;
    };
    let mut start = request.start_line().split_whitespace();
    let method = start.next().unwrap_or_default().to_string();
    let target = start.next().unwrap_or_default().to_string();
    let operation = operation::classify(&method, &target, &request);
    let (plan, upstream, id) = {
        let mut state = lock(&state);
        let at = Instant::now();
        let index = state.requests.len();
        let id = state.next_id;
        state.next_id += 1;
        let fault = state.fault.filter(|(i, _)| *i == index).map(|(_, f)| f);
        let offset = at.duration_since(state.started);
        let (plan, answer) = match (fault, state.buckets.as_mut()) {
            (Some(f), _) => (Plan::Fault(f), Answer::Fault(f)),
            (None, Some(buckets)) => match buckets.admit(&operation, offset) {
                Ok(()) => (Plan::Forward, Answer::Forwarded),
                Err(refusal) => {
                    let request_id = format!("dowguard-proxy-{id}");
                    let (status, headers, body) = throttled_answer(&operation, &refusal, &request_id);
                    (
                        Plan::Reply(wire::answer(status, &headers, &body)),
                        Answer::Throttled(refusal.quota.name),
                    )
                }
            },
            (None, None) => match state
                .responder
                .as_ref()
                .and_then(|r| (r.0)(&operation, &request.body))
            {
                Some(answer) => (
                    Plan::Reply(wire::answer(answer.status, &answer.headers, &answer.body)),
                    Answer::Synthetic,
                ),
                None => (Plan::Forward, Answer::Forwarded),
            },
        };
        state.requests.push(Request {
            id,
            index,
            at,
            method,
            target,
            operation,
            answer,
        });
        (plan, state.upstream.clone(), id)
    };
    let reply = match plan {
        Plan::Fault(Fault::NoAnswer) => {
            tokio::time::sleep(NO_ANSWER_HOLD).await;
            return;
        }
        Plan::Fault(Fault::ServerError) => wire::answer("503 Service Unavailable", &[], b""),
        Plan::Fault(Fault::AppliedThenLost) => {
            // The server acts; its answer is lost.
            let _ = wire::forward(&upstream, &request).await;
            wire::answer("500 Internal Server Error", &[], b"")
        }
        Plan::Reply(reply) => reply,
        Plan::Forward => match wire::forward(&upstream, &request).await {
            Ok(reply) => reply,
            Err(_) => {
                if let Some(r) = lock(&state).requests.iter_mut().find(|r| r.id == id) {
                    r.answer = Answer::Unforwarded;
                }
                wire::answer("502 Bad Gateway", &[], b"")
            }
        },
    };
    let _ = client.write_all(&reply).await;
    let _ = client.shutdown().await;
}
