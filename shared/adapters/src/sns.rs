//! Amazon SNS: notices to budget owners.
//!
//! Each notice is published once with `MessageStructure=json` ("Publish", Amazon
//! SNS API Reference): the message is a JSON object whose `default` key (required,
//! a string) goes to every protocol without a key of its own, here the custom
//! notification that Amazon Q Developer in chat applications (formerly AWS
//! Chatbot) shows in Slack or Microsoft Teams; its `email` key is the plain text
//! that e-mail subscribers get ("Amazon SNS message formatting per protocol").
//!
//! With a cap ([`SnsNotifier::with_cap`]), the deployment publishes at most that
//! many notices an hour: each is counted in the guard's table first
//! ([`TableLeases::count_notice`]), the cap's last slot goes to a notice that says
//! until when the rest are held, and the rest are logged, not sent
//! ([`dowguard_domain::notice::gate`]).

use std::borrow::Cow;

use aws_sdk_sns::Client;
use chrono::Utc;
use dowguard_domain::notice::{Gate, Publication, gate};
use dowguard_guard::ports::Notifier;
use dowguard_guard::{FailureKind, PortError, PortResult};
use serde::Serialize;

use crate::lease::TableLeases;

/// The most a published message may hold: 256 KB, 262,144 bytes ("Publish",
/// Amazon SNS API Reference, `Message`).
pub const MAX_MESSAGE_BYTES: usize = 262_144;

/// How long a notice with a `once` key is not sent again.
const ONCE_FOR: chrono::Duration = chrono::Duration::days(1);

/// SNS through the SDK, with the deployment's default topic for budgets that name
/// none, and optionally a cap on notices an hour.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    default_topic: Option<String>,
    cap: Option<NoticeCap>,
}

/// The deployment's cap on notices an hour, counted in its table.
#[derive(Debug, Clone)]
struct NoticeCap {
    counter: TableLeases,
    per_hour: u32,
}

/// The message of a `MessageStructure=json` publish: one string per protocol.
#[derive(Debug, Serialize)]
struct PerProtocol<'a> {
    /// Every protocol without its own key: https (chat), sqs, lambda, ...
    default: String,
    /// E-mail subscribers.
    email: &'a str,
}

impl SnsNotifier {
    /// Publishes to `default_topic` when a budget names no topic of its own.
    pub fn new(client: Client, default_topic: Option<String>) -> Self {
        SnsNotifier {
            client,
            default_topic,
            cap: None,
        }
    }

    /// Publishes at most `per_hour` notices an hour across the deployment, counted
    /// with `counter`.
    #[must_use]
    pub fn with_cap(mut self, counter: TableLeases, per_hour: u32) -> Self {
        self.cap = Some(NoticeCap { counter, per_hour });
        self
    }

    /// What to send instead of `notice`, if anything: nothing when a notice with
    /// its `once` key went out in the last day, else as the hour's count allows.
    async fn gated<'a>(&self, notice: &'a Publication) -> Option<Cow<'a, Publication>> {
        let Some(cap) = &self.cap else {
            return Some(Cow::Borrowed(notice));
        };
        let now = Utc::now();
        if let Some(key) = &notice.once {
            match cap.counter.first_time(key, now, now + ONCE_FOR).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::info!(subject = %notice.subject, key = %key, "notice already sent today; logged only");
                    return None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, key = %key, "could not check whether the notice was sent; sending it")
                }
            }
        }
        let number = match cap.counter.count_notice(now, cap.per_hour).await {
            Ok(number) => number,
            Err(e) => {
                // A notice matters more than the cap: one the table cannot count
                // is sent.
                tracing::warn!(error = %e, subject = %notice.subject, "could not count the notice; sent uncounted");
                return Some(Cow::Borrowed(notice));
            }
        };
        match gate(number, cap.per_hour, now) {
            Gate::Send => Some(Cow::Borrowed(notice)),
            Gate::Suppress { until } => {
                tracing::warn!(
                    subject = %notice.subject,
                    message = %notice.text,
                    cap = cap.per_hour,
                    until = %until,
                    "notice held: the hour's cap is reached; saying so instead"
                );
                Some(Cow::Owned(Publication::suppressed(until, cap.per_hour, notice)))
            }
            Gate::Hold => {
                tracing::warn!(
                    subject = %notice.subject,
                    message = %notice.text,
                    cap = cap.per_hour,
                    "notice held: the hour's cap is reached"
                );
                None
            }
        }
    }
}

/// SNS subjects are ASCII, at most 100 characters, on one line.
pub fn subject_line(subject: &str) -> String {
    let ascii: String = subject
        .replace('→', "->")
        .chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                ' '
            }
        })
        .collect();
    ascii.chars().take(100).collect()
}

/// The `MessageStructure=json` message of `notice`: the chat notification as
/// `default`, the plain text as `email`.
///
/// # Errors
///
/// [`FailureKind::Invalid`] when it cannot be serialised.
pub fn message_of(notice: &Publication, topic: &str) -> PortResult<String> {
    let invalid = |e: serde_json::Error| {
        PortError::new(
            "Publish",
            topic,
            FailureKind::Invalid,
            "the notice could not be serialised",
        )
        .with_source(e)
    };
    let default = serde_json::to_string(&notice.chat).map_err(invalid)?;
    serde_json::to_string(&PerProtocol {
        default,
        email: &notice.text,
    })
    .map_err(invalid)
}

impl Notifier for SnsNotifier {
    async fn publish(&self, topic: Option<&str>, notice: &Publication) -> PortResult<()> {
        let Some(topic) = topic.or(self.default_topic.as_deref()) else {
            tracing::info!(subject = %notice.subject, message = %notice.text, "no topic configured; notice logged only");
            return Ok(());
        };
        let Some(notice) = self.gated(notice).await else {
            return Ok(());
        };
        let message = message_of(&notice, topic)?;
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(PortError::new(
                "Publish",
                topic,
                FailureKind::Invalid,
                "message over 256 KB",
            ));
        }
        self.client
            .publish()
            .topic_arn(topic)
            .subject(subject_line(&notice.subject))
            .message_structure("json")
            .message(message)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| crate::error::port_error("Publish", topic, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_become_short_ascii_lines() {
        let s = subject_line("dowguard: function:x normal → throttled(3)\nü");
        assert_eq!(s, "dowguard: function:x normal -> throttled(3)  ");
        assert_eq!(subject_line(&"x".repeat(300)).len(), 100);
    }

    #[test]
    fn the_message_holds_the_chat_notification_as_default_and_the_text_for_email()
    -> Result<(), serde_json::Error> {
        let notice = Publication::plain(
            "dowguard: function:x normal → throttled(3)",
            "line one\n\"quoted\"",
        );
        let message = message_of(&notice, "arn:aws:sns:us-east-1:123456789012:t")
            .map_err(|e| serde_json::Error::io(std::io::Error::other(e.to_string())))?;
        let value: serde_json::Value = serde_json::from_str(&message)?;
        let keys: Vec<&String> = value.as_object().map(|o| o.keys().collect()).unwrap_or_default();
        assert_eq!(keys, ["default", "email"]);
        assert_eq!(value["email"], "line one\n\"quoted\"");
        let chat: serde_json::Value = serde_json::from_str(value["default"].as_str().unwrap_or_default())?;
        assert_eq!(chat["version"], "1.0");
        assert_eq!(chat["source"], "custom");
        assert_eq!(
            chat["content"]["title"],
            "dowguard: function:x normal → throttled(3)"
        );
        Ok(())
    }
}
