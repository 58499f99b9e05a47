//! Logs and errors: JSON lines through `tracing` (the level from
//! `AWS_LAMBDA_LOG_LEVEL`, else `RUST_LOG`, else `info`), and errors turned into
//! the runtime's [`Diagnostic`]: a type and a message with the error's causes,
//! never a backtrace or a debug dump.

use std::error::Error;

use lambda_runtime::Diagnostic;
use tracing_subscriber::EnvFilter;

/// Installs the JSON subscriber for the process. A second call does nothing.
pub fn init_tracing() {
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_string())
        .to_lowercase();
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info"));
    let _already_set = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .with_current_span(false)
        .with_span_list(false)
        .try_init();
}

/// The error and its causes, `outer: inner: innermost`, in one line.
pub fn chain(error: &(dyn Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

/// The runtime's diagnostic for `error`, typed `error_type` (e.g. `ConfigError`).
pub fn diagnostic(error_type: &str, error: &(dyn Error + 'static)) -> Diagnostic {
    Diagnostic {
        error_type: error_type.to_string(),
        error_message: chain(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer failed")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn diagnostics_carry_the_causes_but_no_debug_dump() {
        let err = Outer(std::io::Error::other("disk on fire"));
        let d = diagnostic("GuardError", &err);
        assert_eq!(d.error_type, "GuardError");
        assert_eq!(d.error_message, "outer failed: disk on fire");
        assert!(!d.error_message.contains("Custom"), "no Debug output");
    }
}
