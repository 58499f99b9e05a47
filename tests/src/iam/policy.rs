//! Deciding whether a role's policy allows one request, by IAM's own rules:
//!
//! - "Policy evaluation logic" (IAM User Guide): an explicit `Deny` wins, then an
//!   `Allow` whose action, resource and conditions all match allows, and anything
//!   else is denied implicitly.
//! - "IAM JSON policy elements: Action": the service prefix and action name are
//!   case-insensitive, and `*` and `?` are wildcards.
//! - "IAM JSON policy elements: Resource": `*` and `?` match within one
//!   colon-separated ARN segment, a `*` that ends a segment may run over colons,
//!   and `*` runs over `/` and every other character.
//! - "IAM JSON policy elements: Condition operators": `StringEquals` is exact and
//!   case-sensitive; a key absent from the request context makes the condition
//!   false. Every condition operator and key in one statement must hold.
//! - "AWS global condition context keys": `aws:ResourceTag/<key>` is the tag of
//!   the resource the request acts on.
//!
//! Only what the template uses is understood (`Effect`, `Action`, `Resource`,
//! `Condition` with `StringEquals` on `aws:ResourceTag/...`); anything else
//! (`NotAction`, `NotResource`, another operator or key) is an error that names
//! it, never a guess.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::iam::operations::Request;

/// A resource's tags as IAM sees them for `aws:ResourceTag`.
pub type Tags = BTreeMap<String, String>;

/// A statement the evaluator cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported policy statement {statement}: {reason}")]
pub struct PolicyError {
    /// The statement, as JSON.
    pub statement: String,
    /// What is not understood.
    pub reason: String,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// `"Allow"`.
    Allow,
    /// `"Deny"`.
    Deny,
}

/// One statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Its `Sid`, or its position.
    pub sid: String,
    /// Allow or deny.
    pub effect: Effect,
    /// Action patterns.
    pub actions: Vec<String>,
    /// Resource patterns.
    pub resources: Vec<String>,
    /// `StringEquals` on `aws:ResourceTag/<key>`: the key and the values any of
    /// which satisfies it.
    pub resource_tags: Vec<(String, Vec<String>)>,
}

/// A role's statements.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Policy {
    /// Every statement, in order.
    pub statements: Vec<Statement>,
}

/// What IAM decides for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed by the statement named.
    Allowed(String),
    /// Denied by the statement named.
    ExplicitlyDenied(String),
    /// No statement allows it; the text says what came closest.
    ImplicitlyDenied(String),
}

impl Decision {
    /// Whether the request is allowed.
    pub fn allowed(&self) -> bool {
        matches!(self, Decision::Allowed(_))
    }
}

fn texts(value: Option<&Value>) -> Option<Vec<String>> {
    match value? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => items.iter().map(|v| v.as_str().map(str::to_string)).collect(),
        _ => None,
    }
}

impl Policy {
    /// Reads resolved statements (see `template::resolved_statements`).
    ///
    /// # Errors
    ///
    /// [`PolicyError`] for an element or condition the evaluator does not know.
    pub fn parse(statements: &[Value]) -> Result<Self, PolicyError> {
        let mut out = Vec::with_capacity(statements.len());
        for (i, s) in statements.iter().enumerate() {
            let fail = |reason: &str| PolicyError {
                statement: s.to_string(),
                reason: reason.to_string(),
            };
            let map = s.as_object().ok_or_else(|| fail("not an object"))?;
            if let Some(other) = map
                .keys()
                .find(|k| !["Sid", "Effect", "Action", "Resource", "Condition"].contains(&k.as_str()))
            {
                return Err(fail(&format!("element {other}")));
            }
            let effect = match map.get("Effect").and_then(Value::as_str) {
                Some("Allow") => Effect::Allow,
                Some("Deny") => Effect::Deny,
                _ => return Err(fail("Effect is neither Allow nor Deny")),
            };
            let actions = texts(map.get("Action")).ok_or_else(|| fail("no Action"))?;
            let resources = texts(map.get("Resource")).ok_or_else(|| fail("no Resource"))?;
            let mut resource_tags = Vec::new();
            if let Some(condition) = map.get("Condition") {
                let operators = condition
                    .as_object()
                    .ok_or_else(|| fail("Condition is not an object"))?;
                for (operator, keys) in operators {
                    if operator != "StringEquals" {
                        return Err(fail(&format!("condition operator {operator}")));
                    }
                    let keys = keys
                        .as_object()
                        .ok_or_else(|| fail("StringEquals is not an object"))?;
                    for (key, values) in keys {
                        // Condition key names are case-insensitive ("IAM JSON policy
                        // elements: Condition").
                        let lower = key.to_ascii_lowercase();
                        let Some(tag) = lower.strip_prefix("aws:resourcetag/") else {
                            return Err(fail(&format!("condition key {key}")));
                        };
                        let tag = &key[key.len() - tag.len()..];
                        let values = texts(Some(values)).ok_or_else(|| fail("condition values"))?;
                        resource_tags.push((tag.to_string(), values));
                    }
                }
            }
            out.push(Statement {
                sid: map
                    .get("Sid")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("#{i}"), str::to_string),
                effect,
                actions,
                resources,
                resource_tags,
            });
        }
        Ok(Policy { statements: out })
    }

    /// Whether this policy allows `request` on a resource with `tags` (`None`: the
    /// resource has no tags IAM could see).
    pub fn decide(&self, request: &Request, tags: Option<&Tags>) -> Decision {
        let mut allowed = None;
        let mut closest = None;
        for s in &self.statements {
            if !s.actions.iter().any(|a| action_matches(a, &request.action)) {
                continue;
            }
            if !s.resources.iter().any(|r| resource_matches(r, &request.resource)) {
                closest.get_or_insert_with(|| format!("{} allows the action on other resources", s.sid));
                continue;
            }
            let conditions_hold = s.resource_tags.iter().all(|(key, values)| {
                tags.and_then(|t| t.get(key))
                    .is_some_and(|v| values.iter().any(|want| want == v))
            });
            if !conditions_hold {
                closest = Some(format!(
                    "{} matches, but the resource's tags {} fail its condition",
                    s.sid,
                    tags.map_or_else(|| "(none)".to_string(), |t| format!("{t:?}"))
                ));
                continue;
            }
            match s.effect {
                Effect::Deny => return Decision::ExplicitlyDenied(s.sid.clone()),
                Effect::Allow => {
                    allowed.get_or_insert_with(|| s.sid.clone());
                }
            }
        }
        match allowed {
            Some(sid) => Decision::Allowed(sid),
            None => {
                Decision::ImplicitlyDenied(closest.unwrap_or_else(|| "no statement has the action".into()))
            }
        }
    }
}

/// An action pattern against an action: case-insensitive, `*` and `?` wildcards.
pub fn action_matches(pattern: &str, action: &str) -> bool {
    glob(
        &pattern.to_ascii_lowercase().chars().collect::<Vec<_>>(),
        &action.to_ascii_lowercase().chars().collect::<Vec<_>>(),
        false,
    )
}

/// A resource pattern against an ARN: case-sensitive; `*` and `?` stay within a
/// colon-separated segment, except a `*` that ends one.
pub fn resource_matches(pattern: &str, arn: &str) -> bool {
    glob(
        &pattern.chars().collect::<Vec<_>>(),
        &arn.chars().collect::<Vec<_>>(),
        true,
    )
}

fn glob(pattern: &[char], text: &[char], segments: bool) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some('*') => {
            let rest = &pattern[1..];
            let crosses = !segments || rest.first().is_none_or(|c| *c == ':');
            (0..=text.len())
                .take_while(|&n| n == 0 || crosses || text[n - 1] != ':')
                .any(|n| glob(rest, &text[n..], segments))
        }
        Some('?') => {
            text.first().is_some_and(|c| !(segments && *c == ':'))
                && glob(&pattern[1..], &text[1..], segments)
        }
        Some(p) => text.first() == Some(p) && glob(&pattern[1..], &text[1..], segments),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn actions_match_case_insensitively_with_wildcards() {
        assert!(action_matches("dynamodb:GetItem", "dynamodb:getitem"));
        assert!(action_matches("lambda:*", "lambda:PutFunctionConcurrency"));
        assert!(action_matches("lambda:Get*", "lambda:GetFunctionConcurrency"));
        assert!(!action_matches("lambda:Get*", "lambda:PutFunctionConcurrency"));
        assert!(!action_matches("dynamodb:Query", "dynamodb:GetItem"));
    }

    #[test]
    fn resource_wildcards_stay_within_a_segment_unless_they_end_it() {
        let function = "arn:aws:lambda:us-east-1:123456789012:function:checkout";
        assert!(resource_matches("*", function));
        assert!(resource_matches(
            "arn:aws:lambda:*:123456789012:function:*",
            function
        ));
        assert!(resource_matches(
            "arn:aws:lambda:us-east-1:123456789012:function:*",
            "arn:aws:lambda:us-east-1:123456789012:function:checkout:live"
        ));
        assert!(!resource_matches(
            "arn:aws:lambda:us-east-1:123456789012:function:check?",
            "arn:aws:lambda:us-east-1:123456789012:function:checkout"
        ));
        // `*` runs over `/`: a stage under any API.
        assert!(resource_matches(
            "arn:aws:apigateway:us-east-1::/restapis/*/stages/*",
            "arn:aws:apigateway:us-east-1::/restapis/a1/stages/prod"
        ));
        assert!(!resource_matches(
            "arn:aws:apigateway:us-east-1::/restapis/*/stages/*",
            "arn:aws:apigateway:us-east-1::/restapis/a1"
        ));
        // A `*` inside a segment does not run into the next one.
        assert!(!resource_matches(
            "arn:aws:cloudwatch:us-*east-1:123456789012:alarm:x",
            "arn:aws:cloudwatch:us-west-2:1:east-1:123456789012:alarm:x"
        ));
        // Case-sensitive.
        assert!(!resource_matches(
            "arn:aws:dynamodb:us-east-1:123456789012:table/Guard",
            "arn:aws:dynamodb:us-east-1:123456789012:table/guard"
        ));
    }

    #[test]
    fn unknown_elements_operators_and_keys_are_errors() {
        for s in [
            json!({"Effect": "Allow", "NotAction": "x:Y", "Resource": "*"}),
            json!({"Effect": "Allow", "Action": "x:Y", "NotResource": "*"}),
            json!({"Effect": "Allow", "Action": "x:Y", "Resource": "*", "Condition": {"StringLike": {"aws:ResourceTag/a": "b"}}}),
            json!({"Effect": "Allow", "Action": "x:Y", "Resource": "*", "Condition": {"StringEquals": {"aws:RequestTag/a": "b"}}}),
            json!({"Effect": "Maybe", "Action": "x:Y", "Resource": "*"}),
        ] {
            assert!(Policy::parse(std::slice::from_ref(&s)).is_err(), "{s}");
        }
    }
}
