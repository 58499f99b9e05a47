//! Amazon SNS: notices to budget owners.

use aws_sdk_sns::Client;
use dowguard_guard::ports::Notifier;
use dowguard_guard::{FailureKind, PortError, PortResult};

/// SNS through the SDK, with the deployment's default topic for budgets that name
/// none.
#[derive(Debug, Clone)]
pub struct SnsNotifier {
    client: Client,
    default_topic: Option<String>,
}

impl SnsNotifier {
    /// Publishes to `default_topic` when a budget names no topic of its own.
    pub fn new(client: Client, default_topic: Option<String>) -> Self {
        SnsNotifier {
            client,
            default_topic,
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

impl Notifier for SnsNotifier {
    async fn publish(&self, topic: Option<&str>, subject: &str, message: &str) -> PortResult<()> {
        let Some(topic) = topic.or(self.default_topic.as_deref()) else {
            tracing::info!(subject, "no topic configured; notice logged only");
            return Ok(());
        };
        if message.len() > 256 * 1024 {
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
            .subject(subject_line(subject))
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
}
