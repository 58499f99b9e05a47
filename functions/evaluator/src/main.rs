//! The evaluator's entry point: tracing, configuration and clients once, then the
//! Lambda runtime loop.

use dowguard_runtime::telemetry::{chain, init_tracing};
use dowguard_runtime::{App, Role};
use lambda_runtime::{Error, service_fn};

// One thread: the handler awaits its AWS calls one after another (it spawns no task),
// and a second worker thread would only add its own allocator arena to the memory.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let app = App::from_env(Role::Evaluator).await.inspect_err(|e| {
        tracing::error!(error = %chain(e), "cannot start");
    })?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event| dowguard_evaluator::handle(app, event))).await
}
