//! A template's text as one tree: JSON, or YAML with CloudFormation's short forms
//! (`!Ref X`, `!Sub ...`, `!GetAtt A.B`, `!If [...]`) turned into their long forms
//! (`{"Ref": "X"}`, `{"Fn::Sub": ...}`, `{"Fn::GetAtt": ["A", "B"]}`), as the
//! "Intrinsic function reference" of the CloudFormation User Guide writes them.

use serde_json::{Map, Number, Value};

use super::TemplateError;

/// Parses `text` (JSON if it starts with `{`, else YAML) into a tree whose short
/// forms are long forms.
pub(crate) fn parse(file: &str, text: &str) -> Result<Value, TemplateError> {
    let not_parsed = |message: String, line: Option<usize>| TemplateError::NotParsed {
        file: file.to_string(),
        message,
        line,
    };
    if text.trim_start().starts_with('{') {
        return serde_json::from_str(text).map_err(|e| {
            let message = e.to_string();
            // serde_json appends " at line L column C" itself.
            let message = message.split(" at line ").next().unwrap_or(&message).to_string();
            not_parsed(message, Some(e.line()))
        });
    }
    let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
        let line = e.location().map(|l| l.line());
        let message = e.to_string();
        let message = message.split(" at line ").next().unwrap_or(&message).to_string();
        not_parsed(message, line)
    })?;
    Ok(long_form(yaml))
}

/// The YAML tree as JSON, each tagged value as its intrinsic function's long form.
fn long_form(yaml: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match yaml {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => number(&n),
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(long_form).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                out.insert(key_text(k), long_form(v));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let name = tag.trim_start_matches('!');
            let value = long_form(tagged.value);
            let (key, value) = match name {
                "Ref" => ("Ref".to_string(), value),
                "Condition" => ("Condition".to_string(), value),
                // `!GetAtt Resource.Attribute`: the long form takes a list.
                "GetAtt" => {
                    let value = match value {
                        Value::String(s) => match s.split_once('.') {
                            Some((resource, attribute)) => Value::Array(vec![
                                Value::String(resource.to_string()),
                                Value::String(attribute.to_string()),
                            ]),
                            None => Value::String(s),
                        },
                        other => other,
                    };
                    ("Fn::GetAtt".to_string(), value)
                }
                other => (format!("Fn::{other}"), value),
            };
            let mut out = Map::new();
            out.insert(key, value);
            Value::Object(out)
        }
    }
}

fn number(n: &serde_norway::Number) -> Value {
    if let Some(u) = n.as_u64() {
        Value::Number(Number::from(u))
    } else if let Some(i) = n.as_i64() {
        Value::Number(Number::from(i))
    } else {
        n.as_f64()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(n.to_string()), Value::Number)
    }
}

/// A mapping key as text (CloudFormation's keys are strings; YAML allows others).
fn key_text(key: serde_norway::Value) -> String {
    use serde_norway::Value as Y;
    match key {
        Y::String(s) => s,
        Y::Number(n) => n.to_string(),
        Y::Bool(b) => b.to_string(),
        Y::Null => "null".to_string(),
        other => serde_norway::to_string(&other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn short_forms_become_long_forms() {
        let text = "A: !Ref Memory\nB: !Sub '${AWS::Region}-x'\nC: !GetAtt Table.Arn\nD: !If [Big, 1, !Ref AWS::NoValue]\nE: !Equals [a, b]\nF: !Condition IsProd\n";
        let tree = parse("t.yaml", text).expect("parses");
        assert_eq!(
            tree,
            json!({
                "A": {"Ref": "Memory"},
                "B": {"Fn::Sub": "${AWS::Region}-x"},
                "C": {"Fn::GetAtt": ["Table", "Arn"]},
                "D": {"Fn::If": ["Big", 1, {"Ref": "AWS::NoValue"}]},
                "E": {"Fn::Equals": ["a", "b"]},
                "F": {"Condition": "IsProd"},
            })
        );
    }

    #[test]
    fn json_templates_are_read_as_they_are() {
        let tree = parse("t.json", r#"{"Resources": {"F": {"Ref": "X"}}}"#).expect("parses");
        assert_eq!(tree, json!({"Resources": {"F": {"Ref": "X"}}}));
    }

    #[test]
    fn a_parse_error_names_the_line() {
        let err = parse("t.yaml", "Resources:\n  A: [unclosed\n  B: 1\n").expect_err("bad YAML");
        match err {
            TemplateError::NotParsed { line, .. } => assert!(line.is_some_and(|l| l >= 2), "{line:?}"),
            other => panic!("{other:?}"),
        }
        let err = parse("t.json", "{\"Resources\": ,}").expect_err("bad JSON");
        assert!(
            matches!(err, TemplateError::NotParsed { line: Some(1), .. }),
            "{err:?}"
        );
    }
}
