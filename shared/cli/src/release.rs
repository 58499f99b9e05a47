//! `dowguard release TARGET [--for DURATION]`: put the originals back now through the
//! guard's own executor and hold off re-tightening, audited with who ran it.

use dowguard_domain::{Intent, TargetId};
use dowguard_guard::ports::Discovery;
use dowguard_guard::release::{ReleaseError, Released, release_target};
use dowguard_guard::{Executor, FailureKind};
use serde::Serialize;

use crate::context::{Caller, Context};
use crate::describe::change;
use crate::error::{CliError, CliResult};
use crate::output::{Format, duration, limits, parse_duration, print_json, print_text};

/// `dowguard release`
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Examples:
  dowguard release function:checkout               # originals back, guard holds off 1h
  dowguard release rest-stage:a1b2c3d4e5/prod --for 30m
  dowguard release usage-plan:abc123 --for 1d --output json")]
pub struct ReleaseArgs {
    /// The target: function:NAME, rest-stage:API_ID/STAGE, http-stage:API_ID/STAGE or usage-plan:ID.
    pub target: String,
    /// How long the guard holds off tightening it again (e.g. 30m, 2h, 1d; at most 31d).
    #[arg(long = "for", value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
    pub hold: chrono::Duration,
}

#[derive(Debug, Serialize)]
struct StepView {
    change: String,
    outcome: String,
}

#[derive(Debug, Serialize)]
struct ReleaseView {
    target: TargetId,
    released: bool,
    by: Caller,
    was: Option<String>,
    originals: Option<dowguard_domain::Limits>,
    hold_until: Option<chrono::DateTime<chrono::Utc>>,
    steps: Vec<StepView>,
    message: String,
}

/// Runs `release`.
pub async fn run(ctx: &Context, args: &ReleaseArgs) -> CliResult<()> {
    let id = TargetId::parse(&args.target).map_err(|e| CliError::Invalid(format!("TARGET: {e}")))?;
    let now = ctx.now();
    let store = &ctx.stack.store;
    let state = store.load_one(&id).await?;
    let caller = ctx.caller().await;
    let targets = ctx.stack.account.discover().await?;
    let Some(target) = targets.into_iter().find(|t| t.id == id) else {
        return Err(CliError::NotFound(format!(
            "{id}: no such target in this account and region"
        )));
    };
    let executor = Executor {
        account: &ctx.stack.account,
        notifier: &ctx.stack.notifier,
    };
    let run = release_target(
        store,
        &executor,
        &target,
        state.as_ref(),
        (now, args.hold),
        &caller.actor,
    )
    .await
    .map_err(|e| match e {
        ReleaseError::State(e) if e.kind == FailureKind::Conflict => CliError::Conflict(format!(
            "the guard changed {id}'s state while you released it; nothing was changed. Run the release again"
        )),
        ReleaseError::State(e) | ReleaseError::Audit(e) => CliError::Port(e),
    })?;
    let Some(Released {
        release: released,
        outcomes,
    }) = run
    else {
        let view = ReleaseView {
            target: id.clone(),
            released: false,
            by: caller,
            was: state.as_ref().map(|s| s.phase.name()),
            originals: None,
            hold_until: None,
            steps: vec![],
            message: format!(
                "dowguard never changed {id}: there is no restore point, so there is nothing to release. Nothing was changed"
            ),
        };
        return output(ctx, &view);
    };
    let steps: Vec<StepView> = released
        .actions
        .iter()
        .zip(&outcomes)
        .filter(|(a, _)| a.intent != Intent::Notify)
        .map(|(a, o)| StepView {
            change: change(&a.change),
            outcome: match o {
                dowguard_guard::Outcome::Applied => "ok".into(),
                dowguard_guard::Outcome::Skipped { why } => format!("skipped: {why}"),
                dowguard_guard::Outcome::Failed { error, .. } => format!("failed: {error}"),
            },
        })
        .collect();
    let failed = steps.iter().any(|s| s.outcome.starts_with("failed"));
    let view = ReleaseView {
        target: id.clone(),
        released: !failed,
        by: caller,
        was: state.as_ref().map(|s| s.phase.name()),
        originals: Some(released.originals.clone()),
        hold_until: released.state.hold_until,
        message: if failed {
            format!(
                "{id}: a restore failed; the state says recovering, so the guard's next pass restores it again"
            )
        } else if steps.is_empty() {
            format!("{id}: the original limits were already in place")
        } else {
            format!("{id}: original limits restored")
        },
        steps,
    };
    output(ctx, &view)?;
    if failed {
        return Err(CliError::Port(dowguard_guard::PortError::new(
            "release",
            id.to_string(),
            FailureKind::Unavailable,
            "at least one restore failed (see above)",
        )));
    }
    Ok(())
}

fn output(ctx: &Context, view: &ReleaseView) -> CliResult<()> {
    if ctx.format() == Format::Json {
        return print_json(view);
    }
    let mut out = format!("{}\n", view.message);
    if view.originals.is_none() {
        return print_text(&out);
    }
    {
        for s in &view.steps {
            out.push_str(&format!("  {}: {}\n", s.change, s.outcome));
        }
        if let Some(o) = &view.originals {
            out.push_str(&format!("  originals: {}\n", limits(o)));
        }
        if let (Some(was), Some(until)) = (&view.was, view.hold_until) {
            out.push_str(&format!(
                "  was {was}; now recovering. The guard holds off tightening for {} (until {})\n",
                duration(until - ctx.now()),
                until.format("%Y-%m-%d %H:%M UTC"),
            ));
        }
    }
    let source = match view.by.source {
        "sts" => "caller identity from STS GetCallerIdentity",
        _ => "OS user: STS GetCallerIdentity did not answer",
    };
    out.push_str(&format!("  audited as {} ({source})\n", view.by.actor));
    print_text(&out)
}
