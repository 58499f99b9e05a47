//! Recording every AWS call a function makes: an SDK interceptor that keeps, per
//! call, the service and operation (the operation metadata each generated SDK
//! client puts in the config bag), the HTTP method, URI and body as sent, and the
//! function that made it. Installed through `App::with_interceptors` (or
//! `StackConfig::interceptors`), so the code under test is the shipped code.
//!
//! Also a gate: an interceptor that holds one chosen request of one pass until the
//! test lets it go, so two passes can be made to race deterministically.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::{Intercept, SharedInterceptor};
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use dowguard_adapters::Interceptors;
use tokio::sync::oneshot;

/// One request as it left the SDK.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The function that made it: its logical id in the template.
    pub function: String,
    /// The SDK's service name (`Lambda`, `API Gateway`, `ApiGatewayV2`,
    /// `DynamoDB`, `CloudWatch`, `SNS`, `STS`).
    pub service: String,
    /// The operation (`PutFunctionConcurrency`).
    pub operation: String,
    /// The HTTP method.
    pub method: String,
    /// The full URI, query included.
    pub uri: String,
    /// The body as sent (empty for a streaming body; the guard sends none).
    pub body: Vec<u8>,
}

/// Calls recorded by every interceptor made from it, in the order sent.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Recording {
    /// An empty recording.
    pub fn new() -> Self {
        Recording::default()
    }

    /// An interceptor that records the calls of `function` (the function's logical
    /// id in the template, e.g. `Evaluator`).
    pub fn interceptor(&self, function: &str) -> SharedInterceptor {
        SharedInterceptor::new(Recorder {
            function: function.to_string(),
            calls: Arc::clone(&self.calls),
        })
    }

    /// The same, as the interceptors of a stack or an `App`.
    pub fn interceptors(&self, function: &str) -> Interceptors {
        Interceptors::new([self.interceptor(function)])
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// How many calls so far.
    pub fn len(&self) -> usize {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[derive(Debug)]
struct Recorder {
    function: String,
    calls: Arc<Mutex<Vec<Call>>>,
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "dowguard-tests call recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let metadata = cfg
            .load::<Metadata>()
            .ok_or("the SDK put no operation metadata in the config bag")?;
        let request = context.request();
        let call = Call {
            function: self.function.clone(),
            service: metadata.service().to_string(),
            operation: metadata.name().to_string(),
            method: request.method().to_string(),
            uri: request.uri().to_string(),
            body: request.body().bytes().map(<[u8]>::to_vec).unwrap_or_default(),
        };
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(call);
        Ok(())
    }
}

/// How long a gate holds its request at most before failing it.
pub const GATE_TIMEOUT: Duration = Duration::from_secs(60);

/// The test's side of a [`gate`].
#[derive(Debug)]
pub struct GateControl {
    reached: oneshot::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

impl GateControl {
    /// Waits until the gated request is being held.
    ///
    /// # Errors
    ///
    /// When the gate was dropped without holding anything.
    pub async fn reached(&mut self) -> Result<(), oneshot::error::RecvError> {
        (&mut self.reached).await
    }

    /// Lets the held request go.
    pub fn release(&self) {
        // The gate may already have timed out and dropped its end: nothing to do then.
        let _ignored = self.release.send(());
    }
}

/// An interceptor that holds the first request of `operation` whose body contains
/// `marker`, just before it is sent, until [`GateControl::release`] (or
/// [`GATE_TIMEOUT`], which fails the request). Every other request passes.
///
/// It blocks its thread with `tokio::task::block_in_place`, so the pass it holds
/// must run on a multi-threaded runtime.
pub fn gate(operation: &'static str, marker: &'static str) -> (SharedInterceptor, GateControl) {
    let (reached_tx, reached_rx) = oneshot::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel();
    let gate = Gate {
        operation,
        marker,
        reached: Mutex::new(Some(reached_tx)),
        release: Mutex::new(Some(release_rx)),
    };
    (
        SharedInterceptor::new(gate),
        GateControl {
            reached: reached_rx,
            release: release_tx,
        },
    )
}

#[derive(Debug)]
struct Gate {
    operation: &'static str,
    marker: &'static str,
    reached: Mutex<Option<oneshot::Sender<()>>>,
    release: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

impl Intercept for Gate {
    fn name(&self) -> &'static str {
        "dowguard-tests gate"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if cfg.load::<Metadata>().map(Metadata::name) != Some(self.operation) {
            return Ok(());
        }
        let body = context.request().body().bytes().unwrap_or_default();
        if !String::from_utf8_lossy(body).contains(self.marker) {
            return Ok(());
        }
        let Some(release) = self.release.lock().unwrap_or_else(PoisonError::into_inner).take() else {
            return Ok(());
        };
        if let Some(reached) = self.reached.lock().unwrap_or_else(PoisonError::into_inner).take() {
            // The test may have stopped waiting: then nobody listens.
            let _ignored = reached.send(());
        }
        tokio::task::block_in_place(|| release.recv_timeout(GATE_TIMEOUT))
            .map_err(|e| format!("the gate on {} was never released: {e}", self.operation).into())
    }
}
