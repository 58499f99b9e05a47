//! The widget function's entry point: tracing, configuration and clients once,
//! then the Lambda runtime loop.

use chrono::Utc;
use dowguard_adapters::stack::Role;
use dowguard_runtime::App;
use dowguard_runtime::telemetry::{chain, init_tracing};
use dowguard_widget::{WRITES_VARIABLE, WidgetSettings, handle_at};
use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    init_tracing();
    let writes = std::env::var(WRITES_VARIABLE).ok();
    let settings = WidgetSettings::parse(writes.as_deref()).inspect_err(|e| {
        tracing::error!(error = %e, "cannot start");
    })?;
    // A person reads the widgets, as with the command line: the CLI's share of
    // the control-plane quotas.
    let app = App::from_env(Role::Cli).await.inspect_err(|e| {
        tracing::error!(error = %chain(e), "cannot start");
    })?;
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let endpoint = event.context.invoked_function_arn.clone();
        Ok::<Value, Error>(handle_at(app, settings, &endpoint, &event.payload, Utc::now()).await)
    }))
    .await
}
