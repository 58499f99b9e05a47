//! The SAM template, transformed offline to CloudFormation with aws-sam-translator
//! (`tests/harness/sam_translate.py`, run with `.venv-sam`'s Python from
//! `make setup`), and what the IAM tests read from it: each function's role, its
//! policy statements, and those statements with CloudFormation's intrinsic functions
//! resolved for one deployment.
//!
//! The resolution follows "Intrinsic function reference" in the AWS CloudFormation
//! User Guide (`Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::Join`, `Fn::If`, `Fn::Equals`,
//! `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`) and its "Pseudo parameters reference"
//! (`AWS::Partition`, `AWS::Region`, `AWS::AccountId`, `AWS::StackName`,
//! `AWS::URLSuffix`, `AWS::NoValue`). Anything else is an error that names it, so a
//! template the resolver does not understand fails the test instead of being guessed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Map, Value};

/// What reading or resolving the template can fail with.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// `.venv-sam` is not there.
    #[error("{} is missing: run `make setup`", .0.display())]
    PythonMissing(PathBuf),
    /// The translator could not be run.
    #[error("could not run the SAM translator: {0}")]
    Spawn(#[source] std::io::Error),
    /// The translator failed.
    #[error("the SAM translator failed: {0}")]
    Translator(String),
    /// Its output is not JSON.
    #[error("the SAM translator printed no JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The template lacks something the tests look for.
    #[error("the template has no {0}")]
    Missing(String),
    /// An intrinsic function or reference the resolver does not know.
    #[error("cannot resolve {0} for the test deployment")]
    Unresolved(String),
}

/// The workspace root (this crate lives at `<root>/tests`).
pub fn root() -> &'static Path {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest)
}

/// `infra/template.yaml` transformed to CloudFormation, as JSON. The interpreter is
/// `$DOWGUARD_SAM_PYTHON`, else `.venv-sam/bin/python`.
///
/// # Errors
///
/// [`TemplateError`] when the translator is missing or fails.
pub fn translated() -> Result<Value, TemplateError> {
    let python: PathBuf = std::env::var_os("DOWGUARD_SAM_PYTHON")
        .map_or_else(|| root().join(".venv-sam/bin/python"), PathBuf::from);
    if !python.exists() {
        return Err(TemplateError::PythonMissing(python));
    }
    let out = Command::new(&python)
        .arg(root().join("tests/harness/sam_translate.py"))
        .arg(root().join("infra/template.yaml"))
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .map_err(TemplateError::Spawn)?;
    if !out.status.success() {
        return Err(TemplateError::Translator(
            String::from_utf8_lossy(&out.stderr).into_owned(),
        ));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Every statement of a policy document, both branches of an `Fn::If` included,
/// unresolved: what a reviewer reads, whichever way the conditions go.
pub fn statements(value: &Value, out: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| statements(v, out)),
        Value::Object(map) if map.contains_key("Fn::If") => {
            if let Some(Value::Array(parts)) = map.get("Fn::If") {
                parts.iter().skip(1).for_each(|v| statements(v, out));
            }
        }
        Value::Object(map) if map.contains_key("Effect") => out.push(value.clone()),
        _ => {}
    }
}

/// A string or a list of strings (a policy's `Action` or `Resource`) as a list.
pub fn strings(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items.iter().flat_map(|v| strings(Some(v))).collect(),
        Some(other) => vec![other.to_string()],
        None => vec![],
    }
}

/// The logical id of `function`'s generated execution role.
///
/// # Errors
///
/// [`TemplateError::Missing`] when the function has no generated role.
pub fn role_id<'a>(template: &'a Value, function: &str) -> Result<&'a str, TemplateError> {
    template["Resources"][function]["Properties"]["Role"]["Fn::GetAtt"][0]
        .as_str()
        .ok_or_else(|| TemplateError::Missing(format!("role generated for {function}")))
}

/// The inline policy documents' `Statement` values of `function`'s role, unresolved.
///
/// # Errors
///
/// [`TemplateError::Missing`] when the function has no generated role.
pub fn role_policies<'a>(template: &'a Value, function: &str) -> Result<Vec<&'a Value>, TemplateError> {
    let role = &template["Resources"][role_id(template, function)?]["Properties"];
    Ok(role["Policies"]
        .as_array()
        .map(|policies| {
            policies
                .iter()
                .map(|p| &p["PolicyDocument"]["Statement"])
                .collect()
        })
        .unwrap_or_default())
}

/// One deployment of the stack: the values CloudFormation would give the pseudo
/// parameters, the template's parameters, and the physical names and attributes
/// of the resources the roles refer to.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// `AWS::Partition`.
    pub partition: String,
    /// `AWS::Region`.
    pub region: String,
    /// `AWS::AccountId`.
    pub account: String,
    /// `AWS::StackName`.
    pub stack: String,
    /// Parameter values that differ from the template's defaults.
    pub parameters: BTreeMap<String, String>,
    /// `Ref` of a resource: its physical id (a table's name, a topic's ARN).
    pub refs: BTreeMap<String, String>,
    /// `Fn::GetAtt` of a resource: `(logical id, attribute)` → value.
    pub attributes: BTreeMap<(String, String), String>,
}

impl Deployment {
    /// The stack `dowguard` in `account` and `region` (partition `aws`), with its
    /// table named `table`, its notice topic `topic_arn` and its failure queue
    /// `dowguard-failures`; every parameter at its default.
    pub fn new(account: &str, region: &str, table: &str, topic_arn: &str) -> Self {
        let queue = format!("arn:aws:sqs:{region}:{account}:dowguard-failures");
        Deployment {
            partition: "aws".into(),
            region: region.into(),
            account: account.into(),
            stack: "dowguard".into(),
            parameters: BTreeMap::new(),
            refs: BTreeMap::from([
                ("GuardTable".into(), table.into()),
                ("NoticeTopic".into(), topic_arn.into()),
                (
                    "FailureQueue".into(),
                    format!("https://sqs.{region}.amazonaws.com/{account}/dowguard-failures"),
                ),
            ]),
            attributes: BTreeMap::from([
                (
                    ("GuardTable".into(), "Arn".into()),
                    format!("arn:aws:dynamodb:{region}:{account}:table/{table}"),
                ),
                (("FailureQueue".into(), "Arn".into()), queue),
            ]),
        }
    }

    fn parameter(&self, template: &Value, name: &str) -> Result<String, TemplateError> {
        if let Some(v) = self.parameters.get(name) {
            return Ok(v.clone());
        }
        match &template["Parameters"][name]["Default"] {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(TemplateError::Unresolved(format!(
                "parameter {name} (no value and no default)"
            ))),
        }
    }

    fn reference(&self, template: &Value, name: &str) -> Result<Option<String>, TemplateError> {
        Ok(Some(match name {
            "AWS::NoValue" => return Ok(None),
            "AWS::Partition" => self.partition.clone(),
            "AWS::Region" => self.region.clone(),
            "AWS::AccountId" => self.account.clone(),
            "AWS::StackName" => self.stack.clone(),
            "AWS::URLSuffix" => "amazonaws.com".into(),
            _ if template["Parameters"].get(name).is_some() => self.parameter(template, name)?,
            _ => self
                .refs
                .get(name)
                .cloned()
                .ok_or_else(|| TemplateError::Unresolved(format!("Ref {name}")))?,
        }))
    }

    fn attribute(&self, resource: &str, attribute: &str) -> Result<String, TemplateError> {
        self.attributes
            .get(&(resource.to_string(), attribute.to_string()))
            .cloned()
            .ok_or_else(|| TemplateError::Unresolved(format!("Fn::GetAtt {resource}.{attribute}")))
    }

    /// Whether the template's condition `name` holds in this deployment.
    ///
    /// # Errors
    ///
    /// [`TemplateError::Unresolved`] for an unknown condition or function.
    pub fn condition(&self, template: &Value, name: &str) -> Result<bool, TemplateError> {
        let body = template["Conditions"]
            .get(name)
            .ok_or_else(|| TemplateError::Unresolved(format!("condition {name}")))?;
        self.truth(template, body)
    }

    fn truth(&self, template: &Value, value: &Value) -> Result<bool, TemplateError> {
        let Some((function, args)) = single(value) else {
            return Err(TemplateError::Unresolved(format!("condition {value}")));
        };
        let list = |n: usize| -> Result<&Vec<Value>, TemplateError> {
            args.as_array()
                .filter(|a| n == 0 || a.len() == n)
                .ok_or_else(|| TemplateError::Unresolved(format!("{function} {args}")))
        };
        match function {
            "Condition" => self.condition(template, args.as_str().unwrap_or_default()),
            "Fn::Equals" => {
                let pair = list(2)?;
                Ok(self.resolve(template, &pair[0])? == self.resolve(template, &pair[1])?)
            }
            "Fn::Not" => Ok(!self.truth(template, &list(1)?[0])?),
            "Fn::And" => list(0)?
                .iter()
                .try_fold(true, |acc, c| Ok(acc && self.truth(template, c)?)),
            "Fn::Or" => list(0)?
                .iter()
                .try_fold(false, |acc, c| Ok(acc || self.truth(template, c)?)),
            other => Err(TemplateError::Unresolved(format!("condition function {other}"))),
        }
    }

    /// `value` with every intrinsic function evaluated for this deployment;
    /// `AWS::NoValue` removes the element or key that holds it.
    ///
    /// # Errors
    ///
    /// [`TemplateError::Unresolved`] naming what it cannot evaluate.
    pub fn resolve(&self, template: &Value, value: &Value) -> Result<Value, TemplateError> {
        Ok(self.resolve_opt(template, value)?.unwrap_or(Value::Null))
    }

    fn resolve_opt(&self, template: &Value, value: &Value) -> Result<Option<Value>, TemplateError> {
        if let Some((function, args)) = single(value)
            && (function == "Ref" || function.starts_with("Fn::"))
        {
            return self.intrinsic(template, function, args);
        }
        Ok(Some(match value {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in items {
                    if let Some(v) = self.resolve_opt(template, item)? {
                        out.push(v);
                    }
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, v) in map {
                    if let Some(v) = self.resolve_opt(template, v)? {
                        out.insert(k.clone(), v);
                    }
                }
                Value::Object(out)
            }
            other => other.clone(),
        }))
    }

    fn intrinsic(
        &self,
        template: &Value,
        function: &str,
        args: &Value,
    ) -> Result<Option<Value>, TemplateError> {
        let unresolved = || TemplateError::Unresolved(format!("{function} {args}"));
        match function {
            "Ref" => Ok(self
                .reference(template, args.as_str().ok_or_else(unresolved)?)?
                .map(Value::String)),
            "Fn::GetAtt" => {
                let (resource, attribute) = match args {
                    Value::Array(a) if a.len() == 2 => (a[0].as_str(), a[1].as_str()),
                    Value::String(s) => match s.split_once('.') {
                        Some((r, a)) => (Some(r), Some(a)),
                        None => (None, None),
                    },
                    _ => (None, None),
                };
                let (Some(resource), Some(attribute)) = (resource, attribute) else {
                    return Err(unresolved());
                };
                Ok(Some(Value::String(self.attribute(resource, attribute)?)))
            }
            "Fn::Sub" => {
                let (text, vars) = match args {
                    Value::String(s) => (s.as_str(), None),
                    Value::Array(a) if a.len() == 2 => {
                        (a[0].as_str().ok_or_else(unresolved)?, a[1].as_object())
                    }
                    _ => return Err(unresolved()),
                };
                Ok(Some(Value::String(self.substitute(template, text, vars)?)))
            }
            "Fn::Join" => {
                let parts = args.as_array().filter(|a| a.len() == 2).ok_or_else(unresolved)?;
                let separator = parts[0].as_str().ok_or_else(unresolved)?;
                let items = self.resolve(template, &parts[1])?;
                let items = items.as_array().ok_or_else(unresolved)?;
                let texts = items
                    .iter()
                    .map(|v| v.as_str().map(str::to_string).ok_or_else(unresolved))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(Some(Value::String(texts.join(separator))))
            }
            "Fn::If" => {
                let parts = args.as_array().filter(|a| a.len() == 3).ok_or_else(unresolved)?;
                let name = parts[0].as_str().ok_or_else(unresolved)?;
                let branch = if self.condition(template, name)? {
                    &parts[1]
                } else {
                    &parts[2]
                };
                self.resolve_opt(template, branch)
            }
            _ => Err(unresolved()),
        }
    }

    /// `Fn::Sub`: `${Name}` is a `Ref`, `${Resource.Attribute}` a `Fn::GetAtt`,
    /// `${!Literal}` the text `${Literal}`.
    fn substitute(
        &self,
        template: &Value,
        text: &str,
        vars: Option<&Map<String, Value>>,
    ) -> Result<String, TemplateError> {
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after
                .find('}')
                .ok_or_else(|| TemplateError::Unresolved(format!("Fn::Sub {text}")))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else if let Some(v) = vars.and_then(|v| v.get(name)) {
                let v = self.resolve(template, v)?;
                out.push_str(
                    v.as_str()
                        .ok_or_else(|| TemplateError::Unresolved(format!("Fn::Sub {name}")))?,
                );
            } else if let Some((resource, attribute)) = name.split_once('.') {
                out.push_str(&self.attribute(resource, attribute)?);
            } else {
                let v = self
                    .reference(template, name)?
                    .ok_or_else(|| TemplateError::Unresolved(format!("Fn::Sub {name}")))?;
                out.push_str(&v);
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

/// A one-key object: an intrinsic function and its arguments.
fn single(value: &Value) -> Option<(&str, &Value)> {
    match value.as_object() {
        Some(map) if map.len() == 1 => map.iter().next().map(|(k, v)| (k.as_str(), v)),
        _ => None,
    }
}

/// `function`'s role statements resolved for `deployment`: each `Fn::If` takes the
/// branch its condition selects there, and `AWS::NoValue` statements are dropped.
///
/// # Errors
///
/// [`TemplateError`] when the role is missing or something cannot be resolved.
pub fn resolved_statements(
    template: &Value,
    function: &str,
    deployment: &Deployment,
) -> Result<Vec<Value>, TemplateError> {
    let mut out = Vec::new();
    for policy in role_policies(template, function)? {
        match deployment.resolve(template, policy)? {
            Value::Array(items) => out.extend(items),
            Value::Null => {}
            one => out.push(one),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn template() -> Value {
        json!({
            "Parameters": {
                "AlarmPrefix": {"Type": "String", "Default": "dowguard-"},
                "Key": {"Type": "String", "Default": ""}
            },
            "Conditions": {
                "HasKey": {"Fn::Not": [{"Fn::Equals": [{"Ref": "Key"}, ""]}]}
            }
        })
    }

    fn deployment() -> Deployment {
        Deployment::new(
            "123456789012",
            "us-east-1",
            "guard",
            "arn:aws:sns:us-east-1:123456789012:notices",
        )
    }

    #[test]
    fn subs_refs_and_attributes_resolve_for_the_deployment() {
        let t = template();
        let d = deployment();
        let value = json!([
            {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:${AlarmPrefix}*"},
            {"Fn::GetAtt": ["GuardTable", "Arn"]},
            {"Ref": "NoticeTopic"},
            {"Fn::Sub": ["${Table}/${!Literal}", {"Table": {"Ref": "GuardTable"}}]},
            {"Fn::Join": ["-", ["a", {"Ref": "AWS::Region"}]]}
        ]);
        assert_eq!(
            d.resolve(&t, &value).unwrap_or_default(),
            json!([
                "arn:aws:cloudwatch:us-east-1:123456789012:alarm:dowguard-*",
                "arn:aws:dynamodb:us-east-1:123456789012:table/guard",
                "arn:aws:sns:us-east-1:123456789012:notices",
                "guard/${Literal}",
                "a-us-east-1"
            ])
        );
    }

    #[test]
    fn a_condition_picks_one_branch_and_no_value_drops_the_statement() {
        let t = template();
        let mut d = deployment();
        let value =
            json!([{"Fn::If": ["HasKey", {"Sid": "Key"}, {"Ref": "AWS::NoValue"}]}, {"Sid": "Other"}]);
        assert_eq!(
            d.resolve(&t, &value).unwrap_or_default(),
            json!([{"Sid": "Other"}])
        );
        d.parameters
            .insert("Key".into(), "arn:aws:kms:us-east-1:123456789012:key/k".into());
        assert_eq!(
            d.resolve(&t, &value).unwrap_or_default(),
            json!([{"Sid": "Key"}, {"Sid": "Other"}])
        );
    }

    #[test]
    fn an_unknown_reference_is_an_error_not_a_guess() {
        let t = template();
        let d = deployment();
        for value in [
            json!({"Ref": "SomethingElse"}),
            json!({"Fn::GetAtt": ["GuardTable", "StreamArn"]}),
            json!({"Fn::ImportValue": "x"}),
        ] {
            assert!(
                matches!(d.resolve(&t, &value), Err(TemplateError::Unresolved(_))),
                "{value}"
            );
        }
    }
}
