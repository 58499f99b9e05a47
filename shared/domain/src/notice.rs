//! Notices people read: what happened to which target, why (the budget, spent,
//! projected, burn rates), what was changed from what to what, and the exact
//! `dowguard release` command, as data ([`Notice`]) and in the two forms a topic's
//! subscribers read ([`Publication`]):
//!
//! - **chat** ([`ChatNotification`]): the custom-notification event that Amazon Q
//!   Developer in chat applications (formerly AWS Chatbot) turns into a Slack or
//!   Microsoft Teams message. The schema is the one of "Custom notifications using
//!   Amazon Q Developer in chat applications" (Event schema): `version` must be
//!   `1.0`, `source` must be `custom`, `content` holds `textType`
//!   (`client-markdown`, the only one supported), `title`, `description`,
//!   `nextSteps` and `keywords`, and `metadata` holds `threadId`, `summary`,
//!   `eventType`, `relatedResources` and `additionalContext`.
//! - **e-mail**: a plain-text body.
//!
//! A storm of notices is capped per hour across the deployment ([`gate`]): the
//! last notice the cap allows becomes one that says until when the rest are held
//! ([`Publication::suppressed`]); the shell logs the ones held.
//!
//! ```
//! use dowguard_domain::notice::{Notice, NoticeKind};
//! use dowguard_domain::{BurnRate, Change, FunctionName, Level, Mode, Money, Reason, Rule, TargetId};
//!
//! let id = TargetId::parse("function:checkout")?;
//! let reason = Reason {
//!     budget: None, rule: Rule::MultiWindow, level: Level::Throttle(1),
//!     spent: Money::from_dollars(120), amount: Money::from_dollars(240), projected: Money::from_dollars(410),
//!     burn_short: BurnRate(14_400_000), burn_long: BurnRate(6_100_000),
//! };
//! let change = Change::ReservedConcurrency { function: FunctionName::parse("checkout")?, from: None, to: Some(40) };
//! let notice = Notice::new(&id, "normal → throttled(1)", Mode::Enforce, &reason, vec![change]);
//! assert_eq!(notice.kind, NoticeKind::Throttled);
//! let published = notice.publication();
//! assert!(published.text.contains("reserved concurrency none -> 40"));
//! assert!(published.text.contains("dowguard release function:checkout"));
//! assert_eq!(published.chat.source, "custom");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Timelike, Utc};
use serde::{Deserialize, Serialize};

use crate::action::{Change, Reason, Rule};
use crate::budget::{BurnRate, Mode};
use crate::state::Level;
use crate::target::TargetId;

/// What a notice tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NoticeKind {
    /// Spend is above the watch threshold, or over a throttle threshold on a target
    /// the guard may not change: nothing is changed.
    Watching,
    /// Limits are tightened.
    Throttled,
    /// The budget is exhausted: limits are at the floors.
    Stopped,
    /// The original limits are going back, or are back.
    Restored,
    /// Someone released the target by hand.
    Released,
    /// A change the guard decided failed.
    Failed,
}

impl NoticeKind {
    /// The kind of a notice given for `rule` at `level`.
    pub fn of(rule: Rule, level: Level) -> Self {
        match rule {
            Rule::Calm | Rule::ModeChange => NoticeKind::Restored,
            Rule::Released => NoticeKind::Released,
            Rule::Protected | Rule::NotGuarded => NoticeKind::Watching,
            _ => match level {
                Level::Normal | Level::Watch => NoticeKind::Watching,
                Level::Throttle(_) => NoticeKind::Throttled,
                Level::Stop => NoticeKind::Stopped,
            },
        }
    }

    /// The kind's name, as in `eventType` and the keywords.
    pub fn name(self) -> &'static str {
        match self {
            NoticeKind::Watching => "watching",
            NoticeKind::Throttled => "throttled",
            NoticeKind::Stopped => "stopped",
            NoticeKind::Restored => "restored",
            NoticeKind::Released => "released",
            NoticeKind::Failed => "failed",
        }
    }

    /// True when the guard holds the target's limits below its own (in enforce):
    /// the notice says how to release it.
    pub fn holds(self) -> bool {
        matches!(
            self,
            NoticeKind::Throttled | NoticeKind::Stopped | NoticeKind::Failed
        )
    }

    fn emoji(self) -> &'static str {
        match self {
            NoticeKind::Watching => ":eyes:",
            NoticeKind::Throttled => ":warning:",
            NoticeKind::Stopped => ":octagonal_sign:",
            NoticeKind::Restored => ":white_check_mark:",
            NoticeKind::Released => ":unlock:",
            NoticeKind::Failed => ":x:",
        }
    }
}

/// A notice about one target, as data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notice {
    /// What it tells.
    pub kind: NoticeKind,
    /// The target.
    pub target: TargetId,
    /// What happened, in a few words (`normal → throttled(2)`).
    pub headline: String,
    /// The mode the guard acted in: in dry-run nothing was changed.
    pub mode: Mode,
    /// The figures: the budget, spent, amount, projected, burn rates.
    pub reason: Reason,
    /// What was changed (in dry-run: would have been), from what to what.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<Change>,
    /// For a failure: what AWS answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A notice in the forms a topic's subscribers read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Publication {
    /// The subject line (e-mail).
    pub subject: String,
    /// The plain-text body (e-mail).
    pub text: String,
    /// The chat rendering.
    pub chat: ChatNotification,
    /// Sent at most once a day for this key, where the notifier can remember it
    /// (a failure that every pass retries is told once).
    pub once: Option<String>,
}

/// A custom notification for Amazon Q Developer in chat applications (Slack,
/// Microsoft Teams), as "Custom notifications using Amazon Q Developer in chat
/// applications" defines its event schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatNotification {
    /// Must be `1.0`.
    pub version: String,
    /// Must be `custom`.
    pub source: String,
    /// The message.
    pub content: ChatContent,
    /// Threading, summary and context.
    pub metadata: ChatMetadata,
}

/// The message of a [`ChatNotification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatContent {
    /// `client-markdown`: rendered in the chat platform's own markdown.
    pub text_type: String,
    /// The title.
    pub title: String,
    /// The body.
    pub description: String,
    /// What to do next, one step a line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
    /// Keywords shown with the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keywords: Vec<String>,
}

/// The metadata of a [`ChatNotification`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMetadata {
    /// Groups one target's notices in one thread.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// One line.
    pub summary: String,
    /// `dowguard.<kind>`.
    pub event_type: String,
    /// The target.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related_resources: Vec<String>,
    /// The figures, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub additional_context: BTreeMap<String, String>,
}

/// The exact command that releases `target`.
pub fn release_command(target: &TargetId) -> String {
    format!("dowguard release {target}")
}

/// Why, in words, for the rule behind a notice.
fn rule_words(rule: Rule) -> &'static str {
    match rule {
        Rule::MultiWindow => "both burn-rate windows above a threshold",
        Rule::FastLane => "the short window alone above the top threshold: too fast to wait",
        Rule::Exhausted => "spend reached the budget",
        Rule::Calm => "demand calm for the cool-down",
        Rule::Relapse => "a surge came back while recovering",
        Rule::Converge => "the limits differ from what the guard set",
        Rule::ModeChange => "enforce was turned off",
        Rule::Released => "a manual release",
        Rule::Protected => "the target is protected: reported, never throttled",
        Rule::UnreservedMinimum => "the account's unreserved concurrency minimum",
        Rule::NotGuarded => "the target lacks the dowguard-guarded=true tag",
    }
}

fn burn(b: BurnRate) -> String {
    if b.0 == i64::MAX {
        "exhausted".into()
    } else {
        b.to_string()
    }
}

impl Notice {
    /// A notice about `target`: `headline` given for `reason` in `mode`, with the
    /// `changes` made (or, in dry-run, decided); its kind follows from the reason's
    /// rule and level ([`NoticeKind::of`]).
    pub fn new(target: &TargetId, headline: &str, mode: Mode, reason: &Reason, changes: Vec<Change>) -> Self {
        Notice {
            kind: NoticeKind::of(reason.rule, reason.level),
            target: target.clone(),
            headline: headline.to_string(),
            mode,
            reason: reason.clone(),
            changes,
            error: None,
        }
    }

    /// A notice that `change`, decided for `reason`, failed with `error`.
    pub fn failed(target: &TargetId, mode: Mode, reason: &Reason, change: &Change, error: &str) -> Self {
        Notice {
            kind: NoticeKind::Failed,
            target: target.clone(),
            headline: format!("change failed: {}", change.describe()),
            mode,
            reason: reason.clone(),
            changes: vec![change.clone()],
            error: Some(error.to_string()),
        }
    }

    /// The subject line: `dowguard: <target> <headline>`.
    pub fn subject(&self) -> String {
        format!("dowguard: {} {}", self.target, self.headline)
    }

    fn dry(&self) -> bool {
        self.mode != Mode::Enforce
    }

    /// True when the notice gives the release command: the guard holds the
    /// target, in enforce.
    fn offers_release(&self) -> bool {
        self.kind.holds() && !self.dry()
    }

    /// Why, in one sentence: the budget and its figures.
    fn why(&self) -> String {
        let r = &self.reason;
        match &r.budget {
            Some(budget) => format!(
                "budget {budget} ({rule}): spent {spent} of {amount}, projected {projected} at the period's end; \
                 burn rate {short} on the short window, {long} on the long one, against the remaining budget",
                rule = rule_words(r.rule),
                spent = r.spent,
                amount = r.amount,
                projected = r.projected,
                short = burn(r.burn_short),
                long = burn(r.burn_long),
            ),
            None => rule_words(r.rule).to_string(),
        }
    }

    fn change_heading(&self) -> &'static str {
        match (self.kind, self.dry()) {
            (NoticeKind::Failed, _) => "What failed",
            (_, true) => "What would have changed (dry-run: nothing was changed)",
            (_, false) => "What changed",
        }
    }

    /// The plain-text body for e-mail.
    pub fn text(&self) -> String {
        let mut out = format!("{}: {}", self.target, self.headline);
        if self.dry() {
            out.push_str(" [dry-run: nothing changed]");
        }
        out.push_str(&format!(
            ".\n\nWhat happened: {} ({} mode).\nWhy: {}.\n",
            self.kind.name(),
            self.mode,
            self.why()
        ));
        if !self.changes.is_empty() {
            out.push_str(&format!("\n{}:\n", self.change_heading()));
            for change in &self.changes {
                out.push_str(&format!("  - {}\n", change.describe()));
            }
        }
        if let Some(error) = &self.error {
            out.push_str(&format!("\nAWS answered: {error}\n"));
        }
        if self.offers_release() {
            let why = if self.kind == NoticeKind::Failed {
                "To stop the guard trying again and give the target its own limits back"
            } else {
                "To give the target its own limits back now"
            };
            out.push_str(&format!("\n{why}: {} --for 1h\n", release_command(&self.target)));
        }
        out.push_str("\nStatus and audit trail: dowguard status\n");
        out
    }

    /// The chat rendering.
    pub fn chat(&self) -> ChatNotification {
        let mut description = format!("*What happened:* {}", self.headline);
        if self.dry() {
            description.push_str(" _(dry-run: nothing changed)_");
        }
        description.push_str(&format!("\n*Why:* {}", self.why()));
        if !self.changes.is_empty() {
            description.push_str(&format!("\n*{}:*", self.change_heading()));
            for change in &self.changes {
                description.push_str(&format!("\n• `{}`", change.describe()));
            }
        }
        if let Some(error) = &self.error {
            description.push_str(&format!("\n*AWS answered:* {error}"));
        }
        let mut next_steps = Vec::new();
        if self.offers_release() {
            next_steps.push(format!(
                "Release it: `{} --for 1h`",
                release_command(&self.target)
            ));
        }
        next_steps.push("Status and audit trail: `dowguard status`".to_string());
        let r = &self.reason;
        let mut context = BTreeMap::new();
        if let Some(budget) = &r.budget {
            context.insert("budget".to_string(), budget.to_string());
            context.insert("spent".to_string(), r.spent.to_string());
            context.insert("amount".to_string(), r.amount.to_string());
            context.insert("projected".to_string(), r.projected.to_string());
            context.insert("burnShort".to_string(), burn(r.burn_short));
            context.insert("burnLong".to_string(), burn(r.burn_long));
        }
        context.insert("mode".to_string(), self.mode.to_string());
        ChatNotification {
            version: "1.0".into(),
            source: "custom".into(),
            content: ChatContent {
                text_type: "client-markdown".into(),
                title: format!(
                    "{} dowguard: {} {}",
                    self.kind.emoji(),
                    self.target,
                    self.kind.name()
                ),
                description,
                next_steps,
                keywords: vec!["dowguard".into(), self.kind.name().into(), self.mode.to_string()],
            },
            metadata: ChatMetadata {
                thread_id: Some(format!("dowguard/{}", self.target)),
                summary: self.subject(),
                event_type: format!("dowguard.{}", self.kind.name()),
                related_resources: vec![self.target.to_string()],
                additional_context: context,
            },
        }
    }

    /// Every rendering; a failure is told once a day per target and level.
    pub fn publication(&self) -> Publication {
        let once = (self.kind == NoticeKind::Failed).then(|| {
            let level = match self.reason.level {
                Level::Normal => "normal".to_string(),
                Level::Watch => "watch".to_string(),
                Level::Throttle(n) => format!("throttle-{n}"),
                Level::Stop => "stop".to_string(),
            };
            format!("failed/{}/{level}", self.target)
        });
        Publication {
            subject: self.subject(),
            text: self.text(),
            chat: self.chat(),
            once,
        }
    }
}

impl Publication {
    /// A notice with no structured form (a record written before notices had one):
    /// the subject and text as they are, and a chat message made of them.
    pub fn plain(subject: &str, text: &str) -> Self {
        Publication {
            subject: subject.to_string(),
            text: text.to_string(),
            chat: ChatNotification {
                version: "1.0".into(),
                source: "custom".into(),
                content: ChatContent {
                    text_type: "client-markdown".into(),
                    title: subject.to_string(),
                    description: text.to_string(),
                    next_steps: Vec::new(),
                    keywords: vec!["dowguard".into()],
                },
                metadata: ChatMetadata {
                    thread_id: None,
                    summary: subject.to_string(),
                    event_type: "dowguard.notice".into(),
                    related_resources: Vec::new(),
                    additional_context: BTreeMap::new(),
                },
            },
            once: None,
        }
    }

    /// How a `Change::Notify` is published: its subject, and its notice's
    /// renderings (else its message as it is).
    pub fn of(subject: &str, message: &str, notice: Option<&Notice>) -> Self {
        match notice {
            Some(notice) => Publication {
                subject: subject.to_string(),
                ..notice.publication()
            },
            None => Publication::plain(subject, message),
        }
    }

    /// The last notice an hour's cap allows: the ones after it, until `until`, are
    /// logged, not sent. `held` is the notice it stands in for.
    pub fn suppressed(until: DateTime<Utc>, cap: u32, held: &Publication) -> Self {
        let hhmm = until.format("%H:%M");
        let subject = format!("dowguard: notices suppressed until {hhmm} UTC");
        let text = format!(
            "dowguard reached its cap of {cap} notices an hour. Notices until {hhmm} UTC are written to the \
             evaluator's log and kept in the audit trail (dowguard status), not sent.\n\n\
             The first notice held: {}\n\nStatus and audit trail: dowguard status\n",
            held.subject
        );
        let mut notice = Publication::plain(&subject, &text);
        notice.chat.content.title = format!(":mute: {subject}");
        notice.chat.content.description = format!(
            "dowguard reached its cap of {cap} notices an hour. Notices until {hhmm} UTC are logged, not sent.\n\
             *The first notice held:* {}",
            held.subject
        );
        notice.chat.content.next_steps = vec!["Status and audit trail: `dowguard status`".into()];
        notice.chat.metadata.event_type = "dowguard.suppressed".into();
        notice
    }
}

/// What to do with a notice, given its number in the hour's count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Send it.
    Send,
    /// The cap's last slot: send [`Publication::suppressed`] in its place (until
    /// the end of the hour) and log it.
    Suppress {
        /// When notices are sent again: the start of the next hour.
        until: DateTime<Utc>,
    },
    /// The hour is full: log it only.
    Hold,
}

/// The gate of a notice that is number `number` in the hour of `now` (`None`: the
/// count is already at `cap`). The cap's last slot goes to the notice that says
/// the rest are held, so at most `cap` notices go out in an hour.
pub fn gate(number: Option<u32>, cap: u32, now: DateTime<Utc>) -> Gate {
    match number {
        Some(n) if n < cap => Gate::Send,
        Some(_) => Gate::Suppress {
            until: hour_start(now) + Duration::hours(1),
        },
        None => Gate::Hold,
    }
}

/// The start of the hour containing `t`.
pub fn hour_start(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0)
        .and_then(|t| t.with_second(0))
        .and_then(|t| t.with_minute(0))
        .unwrap_or(t)
}

/// The hour (since the Unix epoch) containing `t`: the key of its notice count.
pub fn epoch_hour(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(3_600)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::budget::BudgetId;
    use crate::money::Money;
    use crate::target::{FunctionName, Throttle};

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0)
            .single()
            .expect("time")
    }

    fn reason(rule: Rule, level: Level) -> Reason {
        Reason {
            budget: Some(BudgetId::parse("checkout-daily").expect("budget")),
            rule,
            level,
            spent: Money::from_dollars(120),
            amount: Money::from_dollars(240),
            projected: Money::from_dollars(410),
            burn_short: BurnRate(14_400_000),
            burn_long: BurnRate(6_100_000),
        }
    }

    fn function() -> TargetId {
        TargetId::parse("function:checkout").expect("id")
    }

    fn concurrency(from: Option<u32>, to: Option<u32>) -> Change {
        Change::ReservedConcurrency {
            function: FunctionName::parse("checkout").expect("name"),
            from,
            to,
        }
    }

    fn released() -> Reason {
        Reason::released()
    }

    /// One notice of each kind, as the guard makes them.
    fn every_kind() -> Vec<(&'static str, Notice)> {
        let f = function();
        let stage = TargetId::parse("rest-stage:a1b2c3/prod").expect("id");
        let stage_change = Change::StageThrottle {
            stage: stage.clone(),
            from: None,
            to: Some(Throttle {
                rate_limit: 5.into(),
                burst_limit: 5,
            }),
            from_overrides: BTreeMap::new(),
            to_overrides: BTreeMap::new(),
        };
        let (on, dry) = (Mode::Enforce, Mode::DryRun);
        let watch = reason(Rule::MultiWindow, Level::Watch);
        let throttle = reason(Rule::MultiWindow, Level::Throttle(2));
        let fast = reason(Rule::FastLane, Level::Throttle(2));
        let stop = reason(Rule::Exhausted, Level::Stop);
        let calm = reason(Rule::Calm, Level::Normal);
        let tight = || vec![concurrency(None, Some(40))];
        let loose = || vec![concurrency(Some(40), None)];
        let recovering = "throttled(2) → recovering: restoring original limits";
        let error = "UpdateStage on rest-stage:a1b2c3/prod: TooManyRequestsException: Rate exceeded";
        let failing = reason(Rule::MultiWindow, Level::Throttle(1));
        vec![
            (
                "watching",
                Notice::new(&f, "spend above the watch threshold", on, &watch, vec![]),
            ),
            (
                "throttled",
                Notice::new(&f, "normal → throttled(2)", on, &throttle, tight()),
            ),
            (
                "throttled_dry_run",
                Notice::new(&f, "normal → throttled(2)", dry, &fast, tight()),
            ),
            (
                "stopped",
                Notice::new(
                    &stage,
                    "throttled(2) → stopped",
                    on,
                    &stop,
                    vec![stage_change.clone()],
                ),
            ),
            ("restored", Notice::new(&f, recovering, on, &calm, loose())),
            (
                "released",
                Notice::new(&f, "released by cli:ana", on, &released(), loose()),
            ),
            (
                "failed",
                Notice::failed(&stage, on, &failing, &stage_change, error),
            ),
        ]
    }

    #[test]
    fn each_kind_of_notice_reads_as_plain_text() {
        for (name, notice) in every_kind() {
            let p = notice.publication();
            insta::assert_snapshot!(
                format!("text_{name}"),
                format!("Subject: {}\n\n{}", p.subject, p.text)
            );
        }
    }

    #[test]
    fn each_kind_of_notice_is_a_chat_custom_notification() {
        for (name, notice) in every_kind() {
            let chat = notice.chat();
            let json = serde_json::to_string_pretty(&chat).expect("json");
            insta::assert_snapshot!(format!("chat_{name}"), json);
            // The schema's fixed values ("Custom notifications using Amazon Q
            // Developer in chat applications", Event schema).
            let value: serde_json::Value = serde_json::from_str(&json).expect("parse");
            assert_eq!(value["version"], "1.0");
            assert_eq!(value["source"], "custom");
            assert_eq!(value["content"]["textType"], "client-markdown");
        }
    }

    #[test]
    fn a_notice_that_holds_a_target_gives_the_release_command_and_one_that_does_not_does_not() {
        for (_, notice) in every_kind() {
            let command = format!("dowguard release {}", notice.target);
            let text = notice.text();
            let chat = notice.chat();
            let holds = notice.mode == Mode::Enforce
                && matches!(
                    notice.kind,
                    NoticeKind::Throttled | NoticeKind::Stopped | NoticeKind::Failed
                );
            assert_eq!(text.contains(&command), holds, "{text}");
            assert_eq!(
                chat.content.next_steps.iter().any(|s| s.contains(&command)),
                holds,
                "{:?}",
                chat.content.next_steps
            );
        }
    }

    #[test]
    fn kinds_follow_the_rule_and_the_level() {
        use NoticeKind::*;
        assert_eq!(NoticeKind::of(Rule::MultiWindow, Level::Watch), Watching);
        assert_eq!(NoticeKind::of(Rule::FastLane, Level::Throttle(3)), Throttled);
        assert_eq!(NoticeKind::of(Rule::Exhausted, Level::Stop), Stopped);
        assert_eq!(NoticeKind::of(Rule::Calm, Level::Throttle(2)), Restored);
        assert_eq!(NoticeKind::of(Rule::ModeChange, Level::Normal), Restored);
        assert_eq!(NoticeKind::of(Rule::Released, Level::Normal), Released);
        assert_eq!(NoticeKind::of(Rule::Protected, Level::Throttle(2)), Watching);
    }

    #[test]
    fn the_cap_sends_until_its_last_slot_which_says_until_when_the_rest_are_held() {
        let now = at(13, 42);
        assert_eq!(gate(Some(1), 3, now), Gate::Send);
        assert_eq!(gate(Some(2), 3, now), Gate::Send);
        assert_eq!(gate(Some(3), 3, now), Gate::Suppress { until: at(14, 0) });
        assert_eq!(gate(None, 3, now), Gate::Hold);
        let held = Publication::plain("dowguard: function:checkout normal → throttled(2)", "text");
        let last = Publication::suppressed(at(14, 0), 3, &held);
        assert_eq!(last.subject, "dowguard: notices suppressed until 14:00 UTC");
        assert!(
            last.text.contains("function:checkout normal → throttled(2)"),
            "{}",
            last.text
        );
        assert_eq!(epoch_hour(at(13, 59)) + 1, epoch_hour(at(14, 0)));
    }
}
