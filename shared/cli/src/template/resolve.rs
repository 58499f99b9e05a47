//! Intrinsic functions, resolved where a template alone decides them (CloudFormation
//! User Guide, "Intrinsic function reference" and "Pseudo parameters reference"):
//! `Ref` to a parameter (its `--parameter` value, else its `Default`) or to a pseudo
//! parameter known before deployment (`AWS::Region`, `AWS::Partition`,
//! `AWS::URLSuffix`, `AWS::NoValue`), `Fn::Sub`, `Fn::Join`, `Fn::Select`,
//! `Fn::Split`, `Fn::FindInMap`, `Fn::If` and the condition functions. Anything else
//! (`Fn::GetAtt`, `Fn::ImportValue`, a resource's `Ref`, `AWS::AccountId`, ...) is
//! known only once deployed: it comes back as [`Unresolved`], for the reader to
//! report and take the worst case.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// An expression the template alone does not decide, as the template writes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unresolved(pub(crate) String);

/// What a property resolves to.
pub(crate) type Resolved = Result<Option<Value>, Unresolved>;

/// Resolves intrinsic functions against a template's parameters, conditions and
/// mappings.
#[derive(Debug)]
pub(crate) struct Resolver {
    /// Each parameter's value; `None` when it has neither `--parameter` nor `Default`.
    parameters: BTreeMap<String, Option<Value>>,
    conditions: Map<String, Value>,
    mappings: Map<String, Value>,
    region: String,
}

/// The deepest nesting of conditions followed (a loop is a template error).
const MAX_DEPTH: usize = 32;

impl Resolver {
    /// A resolver over the template's `Parameters`, `Conditions` and `Mappings`.
    pub(crate) fn new(
        parameters: BTreeMap<String, Option<Value>>,
        conditions: Map<String, Value>,
        mappings: Map<String, Value>,
        region: &str,
    ) -> Self {
        Resolver {
            parameters,
            conditions,
            mappings,
            region: region.to_string(),
        }
    }

    /// `value` with its own intrinsic function resolved (its children are left for
    /// their readers); `Ok(None)` for `AWS::NoValue` (the property is absent).
    pub(crate) fn resolve(&self, value: &Value) -> Resolved {
        self.shallow(value, 0)
    }

    fn shallow(&self, value: &Value, depth: usize) -> Resolved {
        if depth > MAX_DEPTH {
            return Err(unresolved(value));
        }
        let Some((name, args)) = intrinsic(value) else {
            return Ok(Some(value.clone()));
        };
        let out = match name {
            "Ref" => self.reference(args, value)?,
            "Fn::Sub" => Some(self.sub(args, value)?),
            "Fn::Join" => Some(self.join(args, value, depth)?),
            "Fn::Select" => self.select(args, value, depth)?,
            "Fn::Split" => Some(self.split(args, value, depth)?),
            "Fn::FindInMap" => Some(self.find_in_map(args, value, depth)?),
            "Fn::If" => {
                let Value::Array(parts) = args else {
                    return Err(unresolved(value));
                };
                let [condition, yes, no] = parts.as_slice() else {
                    return Err(unresolved(value));
                };
                let name = condition.as_str().ok_or_else(|| unresolved(value))?;
                let chosen = if self.condition(name, depth + 1)? { yes } else { no };
                return self.shallow(chosen, depth + 1);
            }
            _ => return Err(unresolved(value)),
        };
        match out {
            Some(v) if intrinsic(&v).is_some() => self.shallow(&v, depth + 1),
            other => Ok(other),
        }
    }

    /// `value` and everything in it resolved (arguments of the string functions).
    pub(crate) fn deep(&self, value: &Value, depth: usize) -> Resolved {
        let Some(v) = self.shallow(value, depth)? else {
            return Ok(None);
        };
        Ok(Some(match v {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for item in &items {
                    if let Some(v) = self.deep(item, depth + 1)? {
                        out.push(v);
                    }
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = Map::new();
                for (k, item) in &map {
                    if let Some(v) = self.deep(item, depth + 1)? {
                        out.insert(k.clone(), v);
                    }
                }
                Value::Object(out)
            }
            other => other,
        }))
    }

    /// Whether condition `name` of the `Conditions` section holds.
    pub(crate) fn condition(&self, name: &str, depth: usize) -> Result<bool, Unresolved> {
        let expression = self
            .conditions
            .get(name)
            .ok_or_else(|| Unresolved(format!("Condition {name} (not in Conditions)")))?;
        self.truth(expression, depth + 1)
    }

    fn truth(&self, value: &Value, depth: usize) -> Result<bool, Unresolved> {
        if depth > MAX_DEPTH {
            return Err(unresolved(value));
        }
        let Some((name, args)) = intrinsic(value).or_else(|| condition_ref(value)) else {
            return match value {
                Value::Bool(b) => Ok(*b),
                Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
                _ => Err(unresolved(value)),
            };
        };
        let list = || match args {
            Value::Array(items) => Ok(items.as_slice()),
            _ => Err(unresolved(value)),
        };
        match name {
            "Condition" => self.condition(args.as_str().ok_or_else(|| unresolved(value))?, depth + 1),
            "Fn::Equals" => {
                let [a, b] = list()? else {
                    return Err(unresolved(value));
                };
                let a = self.deep(a, depth + 1)?.map(|v| text(&v));
                let b = self.deep(b, depth + 1)?.map(|v| text(&v));
                Ok(a == b)
            }
            "Fn::Not" => {
                let [a] = list()? else {
                    return Err(unresolved(value));
                };
                Ok(!self.truth(a, depth + 1)?)
            }
            "Fn::And" => {
                let mut all = true;
                for a in list()? {
                    all &= self.truth(a, depth + 1)?;
                }
                Ok(all)
            }
            "Fn::Or" => {
                let mut any = false;
                for a in list()? {
                    any |= self.truth(a, depth + 1)?;
                }
                Ok(any)
            }
            _ => Err(unresolved(value)),
        }
    }

    /// `Ref` to a parameter or a pseudo parameter.
    fn reference(&self, args: &Value, whole: &Value) -> Resolved {
        let name = args.as_str().ok_or_else(|| unresolved(whole))?;
        if name == "AWS::NoValue" {
            return Ok(None);
        }
        match self.named(name) {
            Some(v) => Ok(Some(v)),
            None => Err(unresolved(whole)),
        }
    }

    /// The value of a parameter or pseudo parameter, if known before deployment.
    fn named(&self, name: &str) -> Option<Value> {
        if let Some(value) = self.parameters.get(name) {
            return value.clone();
        }
        let partition = if self.region.starts_with("cn-") {
            "aws-cn"
        } else if self.region.starts_with("us-gov-") {
            "aws-us-gov"
        } else {
            "aws"
        };
        match name {
            "AWS::Region" => Some(Value::String(self.region.clone())),
            "AWS::Partition" => Some(Value::String(partition.to_string())),
            "AWS::URLSuffix" => Some(Value::String(
                if partition == "aws-cn" {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                }
                .to_string(),
            )),
            _ => None,
        }
    }

    /// `Fn::Sub`: `${Name}` from its own variables, parameters or pseudo
    /// parameters; `${!Literal}` is written as `${Literal}`.
    fn sub(&self, args: &Value, whole: &Value) -> Result<Value, Unresolved> {
        let (template, variables) = match args {
            Value::String(s) => (s.as_str(), None),
            Value::Array(parts) => match parts.as_slice() {
                [Value::String(s), Value::Object(vars)] => (s.as_str(), Some(vars)),
                _ => return Err(unresolved(whole)),
            },
            _ => return Err(unresolved(whole)),
        };
        let mut out = String::new();
        let mut rest = template;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let end = after.find('}').ok_or_else(|| unresolved(whole))?;
            let name = &after[..end];
            if let Some(literal) = name.strip_prefix('!') {
                out.push_str("${");
                out.push_str(literal);
                out.push('}');
            } else {
                let value = match variables.and_then(|v| v.get(name)) {
                    Some(v) => self.deep(v, 1)?,
                    None => self.named(name),
                };
                match value {
                    Some(v) if !v.is_object() && !v.is_array() => out.push_str(&text(&v)),
                    _ => return Err(unresolved(whole)),
                }
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Value::String(out))
    }

    fn join(&self, args: &Value, whole: &Value, depth: usize) -> Result<Value, Unresolved> {
        let Value::Array(parts) = args else {
            return Err(unresolved(whole));
        };
        let [Value::String(delimiter), items] = parts.as_slice() else {
            return Err(unresolved(whole));
        };
        let Some(Value::Array(items)) = self.deep(items, depth + 1)? else {
            return Err(unresolved(whole));
        };
        let texts: Vec<String> = items.iter().map(text).collect();
        Ok(Value::String(texts.join(delimiter)))
    }

    fn select(&self, args: &Value, whole: &Value, depth: usize) -> Resolved {
        let Value::Array(parts) = args else {
            return Err(unresolved(whole));
        };
        let [index, items] = parts.as_slice() else {
            return Err(unresolved(whole));
        };
        let index: usize = self
            .deep(index, depth + 1)?
            .map(|v| text(&v))
            .and_then(|t| t.parse().ok())
            .ok_or_else(|| unresolved(whole))?;
        let Some(Value::Array(items)) = self.deep(items, depth + 1)? else {
            return Err(unresolved(whole));
        };
        items
            .get(index)
            .cloned()
            .map(Some)
            .ok_or_else(|| unresolved(whole))
    }

    fn split(&self, args: &Value, whole: &Value, depth: usize) -> Result<Value, Unresolved> {
        let Value::Array(parts) = args else {
            return Err(unresolved(whole));
        };
        let [Value::String(delimiter), source] = parts.as_slice() else {
            return Err(unresolved(whole));
        };
        let source = self.deep(source, depth + 1)?.ok_or_else(|| unresolved(whole))?;
        Ok(Value::Array(
            text(&source)
                .split(delimiter.as_str())
                .map(|s| Value::String(s.to_string()))
                .collect(),
        ))
    }

    fn find_in_map(&self, args: &Value, whole: &Value, depth: usize) -> Result<Value, Unresolved> {
        let Value::Array(parts) = args else {
            return Err(unresolved(whole));
        };
        let [map, top, second] = parts.as_slice() else {
            return Err(unresolved(whole));
        };
        let mut keys = Vec::with_capacity(3);
        for key in [map, top, second] {
            keys.push(
                self.deep(key, depth + 1)?
                    .map(|v| text(&v))
                    .ok_or_else(|| unresolved(whole))?,
            );
        }
        self.mappings
            .get(&keys[0])
            .and_then(|m| m.get(&keys[1]))
            .and_then(|m| m.get(&keys[2]))
            .cloned()
            .ok_or_else(|| unresolved(whole))
    }
}

/// The intrinsic function `value` is, if it is one: a mapping with the single key
/// `Ref` or `Fn::...`.
pub(crate) fn intrinsic(value: &Value) -> Option<(&str, &Value)> {
    let Value::Object(map) = value else {
        return None;
    };
    if map.len() != 1 {
        return None;
    }
    let (name, args) = map.iter().next()?;
    (name == "Ref" || name.starts_with("Fn::")).then_some((name.as_str(), args))
}

/// `{"Condition": name}` inside a condition.
fn condition_ref(value: &Value) -> Option<(&str, &Value)> {
    let Value::Object(map) = value else {
        return None;
    };
    match (map.len(), map.get("Condition")) {
        (1, Some(args)) => Some(("Condition", args)),
        _ => None,
    }
}

/// A scalar as CloudFormation passes it to string functions.
pub(crate) fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The expression as the template's short form would write it, e.g. `!GetAtt ["T","Arn"]`.
pub(crate) fn unresolved(value: &Value) -> Unresolved {
    Unresolved(match intrinsic(value) {
        Some(("Ref", Value::String(name))) => format!("!Ref {name}"),
        Some((name, args)) => format!("!{} {args}", name.trim_start_matches("Fn::")),
        None => value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resolver() -> Resolver {
        let parameters = BTreeMap::from([
            ("Memory".to_string(), Some(json!("1024"))),
            ("Stage".to_string(), Some(json!("live"))),
            ("Secret".to_string(), None),
        ]);
        let conditions = json!({
            "IsLive": {"Fn::Equals": [{"Ref": "Stage"}, "live"]},
            "NotLive": {"Fn::Not": [{"Condition": "IsLive"}]},
            "Unknown": {"Fn::Equals": [{"Ref": "AWS::AccountId"}, "1"]},
        });
        let mappings = json!({"Sizes": {"live": {"Mb": 2048}}});
        Resolver::new(
            parameters,
            conditions.as_object().cloned().unwrap_or_default(),
            mappings.as_object().cloned().unwrap_or_default(),
            "eu-west-1",
        )
    }

    #[test]
    fn resolves_what_the_template_decides() {
        let r = resolver();
        assert_eq!(r.resolve(&json!({"Ref": "Memory"})), Ok(Some(json!("1024"))));
        assert_eq!(
            r.resolve(&json!({"Fn::Sub": "${Stage}-orders-${AWS::Region}-${!Literal}"})),
            Ok(Some(json!("live-orders-eu-west-1-${Literal}")))
        );
        assert_eq!(
            r.resolve(&json!({"Fn::Sub": ["${A}-x", {"A": {"Ref": "Stage"}}]})),
            Ok(Some(json!("live-x")))
        );
        assert_eq!(
            r.resolve(&json!({"Fn::If": ["IsLive", 50, {"Ref": "AWS::NoValue"}]})),
            Ok(Some(json!(50)))
        );
        assert_eq!(
            r.resolve(&json!({"Fn::If": ["NotLive", 50, {"Ref": "AWS::NoValue"}]})),
            Ok(None)
        );
        assert_eq!(
            r.resolve(&json!({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Mb"]})),
            Ok(Some(json!(2048)))
        );
        assert_eq!(
            r.resolve(&json!({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]})),
            Ok(Some(json!("a-live")))
        );
        assert_eq!(
            r.resolve(&json!({"Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]})),
            Ok(Some(json!("b")))
        );
    }

    #[test]
    fn reports_what_only_a_deployment_decides() {
        let r = resolver();
        assert_eq!(
            r.resolve(&json!({"Fn::GetAtt": ["Table", "Arn"]})),
            Err(Unresolved("!GetAtt [\"Table\",\"Arn\"]".into()))
        );
        assert_eq!(
            r.resolve(&json!({"Ref": "Secret"})),
            Err(Unresolved("!Ref Secret".into()))
        );
        assert!(r.resolve(&json!({"Fn::Sub": "${AWS::AccountId}-x"})).is_err());
        assert!(r.resolve(&json!({"Fn::If": ["Unknown", 1, 2]})).is_err());
        assert!(r.resolve(&json!({"Fn::ImportValue": "x"})).is_err());
    }
}
