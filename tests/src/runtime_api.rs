//! A loopback stand-in for the Lambda runtime API, so that a benchmark can run a
//! function's shipped binary as Lambda runs it: the binary asks for its next event
//! (`GET /2018-06-01/runtime/invocation/next`, answered with the event and the
//! `Lambda-Runtime-*` headers) and posts its answer
//! (`POST /2018-06-01/runtime/invocation/{id}/response` or `.../error`), as "Using
//! the Lambda runtime API for custom runtimes" (AWS Lambda Developer Guide)
//! describes. Point the binary at it with `AWS_LAMBDA_RUNTIME_API` =
//! [`RuntimeApi::address`].
//!
//! It listens on `127.0.0.1` only, hands out the events it was given in order, holds
//! a request for the next event once they are all out (as Lambda does between
//! invocations), and stops when dropped.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::proxy::wire;

const NEXT: &str = "/2018-06-01/runtime/invocation/next";
const INVOCATION: &str = "/2018-06-01/runtime/invocation/";

/// How long a request for the next event is held once the events are all out.
const HOLD: Duration = Duration::from_secs(3_600);

/// What a function answered to one event.
#[derive(Debug, Clone, PartialEq)]
pub struct Answered {
    /// The request id the event was handed out with.
    pub request_id: String,
    /// Whether it was a response (`true`) or an error report.
    pub ok: bool,
    /// The answer's body (JSON, or a string when it is not).
    pub body: Value,
}

#[derive(Debug, Default)]
struct State {
    events: VecDeque<Value>,
    handed_out: u64,
    answers: Vec<Answered>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running stand-in. Dropping it stops it.
#[derive(Debug)]
pub struct RuntimeApi {
    address: String,
    state: Arc<Mutex<State>>,
    server: JoinHandle<()>,
}

impl Drop for RuntimeApi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl RuntimeApi {
    /// Starts serving `events`, in order.
    ///
    /// # Errors
    ///
    /// When no loopback port can be bound.
    pub async fn start(events: Vec<Value>) -> io::Result<RuntimeApi> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?.to_string();
        let state = Arc::new(Mutex::new(State {
            events: events.into(),
            ..State::default()
        }));
        let server = tokio::spawn(wire::serve_each(listener, state.clone(), handle));
        Ok(RuntimeApi {
            address,
            state,
            server,
        })
    }

    /// `127.0.0.1:PORT`: the value of `AWS_LAMBDA_RUNTIME_API`.
    #[must_use]
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The answers so far, once there are `n` of them, waiting up to `timeout`;
    /// `None` if fewer arrived.
    pub async fn answers(&self, n: usize, timeout: Duration) -> Option<Vec<Answered>> {
        let deadline = Instant::now() + timeout;
        loop {
            {
                let state = lock(&self.state);
                if state.answers.len() >= n {
                    return Some(state.answers.clone());
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn handle(mut client: TcpStream, state: Arc<Mutex<State>>) {
    let Some(request) = wire::read_message(&mut client).await else {
        return;
    };
    let mut start = request.start_line().split_whitespace();
    let method = start.next().unwrap_or_default().to_string();
    let path = start.next().unwrap_or_default().to_string();
    let reply = if method == "GET" && path == NEXT {
        let next = {
            let mut state = lock(&state);
            let event = state.events.pop_front();
            state.handed_out += 1;
            event.map(|e| (format!("bench-invocation-{}", state.handed_out), e))
        };
        let Some((request_id, event)) = next else {
            tokio::time::sleep(HOLD).await;
            return;
        };
        let deadline = chrono::Utc::now() + chrono::Duration::minutes(15);
        let headers = [
            ("Content-Type", "application/json".to_string()),
            ("Lambda-Runtime-Aws-Request-Id", request_id),
            (
                "Lambda-Runtime-Deadline-Ms",
                deadline.timestamp_millis().to_string(),
            ),
            (
                "Lambda-Runtime-Invoked-Function-Arn",
                format!(
                    "arn:aws:lambda:{}:{}:function:bench",
                    crate::REGION,
                    crate::ACCOUNT_ID
                ),
            ),
            (
                "Lambda-Runtime-Trace-Id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".to_string(),
            ),
        ];
        wire::answer("200 OK", &headers, event.to_string().as_bytes())
    } else if method == "POST"
        && let Some(rest) = path.strip_prefix(INVOCATION)
        && let Some((request_id, kind)) = rest.split_once('/')
        && (kind == "response" || kind == "error")
    {
        let body = serde_json::from_slice(&request.body)
            .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&request.body).into_owned()));
        lock(&state).answers.push(Answered {
            request_id: request_id.to_string(),
            ok: kind == "response",
            body,
        });
        wire::answer("202 Accepted", &[], b"{}")
    } else {
        wire::answer("404 Not Found", &[], b"{}")
    };
    let _ = client.write_all(&reply).await;
    let _ = client.shutdown().await;
}
