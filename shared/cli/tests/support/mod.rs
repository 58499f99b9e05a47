//! Running the real `dowguard` binary in the CLI's tests: with the standard AWS
//! variables a user would set, none of the machine's own AWS configuration, and a
//! fixed time, so figures and snapshots are stable.

#![allow(
    dead_code,
    clippy::expect_used,
    reason = "each test binary uses its own subset; tests fail loudly"
)]

use std::process::{Command, Output};

/// Every command runs as of this time.
pub(crate) const NOW: &str = "2026-11-20T12:00:00Z";

/// [`NOW`] as a time.
pub(crate) fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(NOW)
        .expect("a valid time")
        .with_timezone(&chrono::Utc)
}

/// `dowguard` with a clean environment: test credentials, `us-east-1`, at most
/// `attempts` attempts per AWS call, no AWS configuration files, and [`NOW`].
pub(crate) fn command(attempts: u32) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dowguard"));
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("USER", "ana")
        .env("AWS_ACCESS_KEY_ID", "AKIDLOCALTEST")
        .env("AWS_SECRET_ACCESS_KEY", "local-test-secret")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_MAX_ATTEMPTS", attempts.to_string())
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("DOWGUARD_NOW", NOW);
    command
}

/// Runs `command` with `args` and prints what a user would see.
pub(crate) fn run(mut command: Command, args: &[&str]) -> Output {
    let output = command.args(args).output().expect("the binary runs");
    println!(
        "$ dowguard {}\n{}{}[exit {}]\n",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        output.status.code().unwrap_or(-1)
    );
    output
}

/// The process's exit code (-1 if a signal ended it).
pub(crate) fn code(o: &Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

/// What it printed on stdout.
pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// What it printed on stderr.
pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Its stdout as JSON.
pub(crate) fn json(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).expect("JSON on stdout")
}
