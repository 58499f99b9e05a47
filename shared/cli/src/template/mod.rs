//! Reading a CloudFormation or SAM template (YAML or JSON) into the entry points the
//! exposure audit ranks, before anything is deployed (`dowguard audit --template`).
//!
//! - [`parse`] turns the text into one tree, YAML short forms as long forms;
//! - [`resolve`] resolves the intrinsic functions a template alone decides;
//! - [`entries`] reads the resources that are entry points (functions, function
//!   URLs, REST and HTTP API stages, their methods and routes, usage plans) into
//!   [`EntryPoint`]s, with SAM's `Globals` merged and its implicit APIs created.
//!
//! What the template does not decide is reported as a line of [`Scan::unresolved`]
//! and priced at its worst case, never guessed. Pure: the caller reads the file.

mod entries;
mod parse;
mod resolve;

use dowguard_domain::exposure::EntryPoint;

/// What a template read needs besides its text.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The region deployed to (`AWS::Region`, and the prices).
    pub region: String,
    /// `--parameter KEY=VALUE` values, overriding the parameters' `Default`.
    pub parameters: Vec<(String, String)>,
}

/// The entry points a template declares, and what it left undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// Every entry point, as the live audit would see it once deployed.
    pub entries: Vec<EntryPoint>,
    /// One line per expression that could not be resolved: the resource, the
    /// property, the expression and the worst case taken instead.
    pub unresolved: Vec<String>,
}

/// Why a template could not be read. Each names the file or the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// Neither YAML nor JSON.
    #[error("{file}: not YAML or JSON: {message}{}", at_line(.line))]
    NotParsed {
        /// The file.
        file: String,
        /// The parser's message.
        message: String,
        /// The line it stopped at.
        line: Option<usize>,
    },
    /// YAML or JSON, but not a template.
    #[error("{file}: not a CloudFormation template: {why}")]
    NotATemplate {
        /// The file.
        file: String,
        /// What is missing or wrong.
        why: String,
    },
    /// A property of the wrong type.
    #[error("{path}: expected {expected}, got {got}")]
    WrongType {
        /// Where, e.g. `Resources.Foo.Properties.MemorySize`.
        path: String,
        /// What the property must be.
        expected: &'static str,
        /// What it is.
        got: String,
    },
    /// A value of the right type that is not valid there.
    #[error("{path}: {why}")]
    Invalid {
        /// Where.
        path: String,
        /// Why.
        why: String,
    },
    /// A `--parameter` the template does not declare.
    #[error("--parameter {key}: {why}")]
    Parameter {
        /// The parameter's name.
        key: String,
        /// Why.
        why: String,
    },
}

fn at_line(line: &Option<usize>) -> String {
    line.map(|l| format!(" at line {l}")).unwrap_or_default()
}

/// Reads the template `text` (from `file`, for messages).
///
/// # Errors
///
/// [`TemplateError`] naming the file or the field: not YAML or JSON, no
/// `Resources`, a property of the wrong type, an unknown `--parameter`.
pub fn read(file: &str, text: &str, options: &Options) -> Result<Scan, TemplateError> {
    let tree = parse::parse(file, text)?;
    entries::read(file, &tree, options)
}

#[cfg(test)]
mod tests {
    use dowguard_domain::{Arch, Limits, TargetSpec};

    use super::*;

    fn scan(text: &str) -> Scan {
        read("t.yaml", text, &options(&[])).expect("reads")
    }

    fn options(parameters: &[(&str, &str)]) -> Options {
        Options {
            region: "us-east-1".into(),
            parameters: parameters
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect(),
        }
    }

    fn entry<'a>(scan: &'a Scan, id: &str) -> &'a EntryPoint {
        scan.entries
            .iter()
            .find(|e| e.target.id.to_string() == id)
            .unwrap_or_else(|| panic!("no {id} in {:?}", scan.entries))
    }

    const SAM: &str = r#"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    MemorySize: 2048
    Timeout: 60
    Architectures: [arm64]
    Tags:
      dowguard-guarded: "true"
  Api:
    Auth:
      ApiKeyRequired: true
Resources:
  Small:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: 256
      Tags:
        team: shop
      Events:
        List:
          Type: Api
          Properties: {Path: /orders, Method: get}
        Open:
          Type: Api
          Properties:
            Path: /health
            Method: get
            Auth: {ApiKeyRequired: false}
        Hook:
          Type: HttpApi
          Properties: {Path: /hook, Method: post}
        Any:
          Type: HttpApi
  Big:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: big-one
      ReservedConcurrentExecutions: 5
"#;

    #[test]
    fn globals_merge_under_each_function_s_own_properties() {
        let scan = scan(SAM);
        let small = entry(&scan, "function:Small");
        assert_eq!(
            small.target.spec,
            TargetSpec::Function {
                memory_mb: 256,
                arch: Arch::Arm64,
                async_invoked: false
            }
        );
        assert_eq!(small.timeout_s, Some(60));
        // Mappings merge: the global tag and the function's own.
        assert_eq!(small.target.tags.get("team").map(String::as_str), Some("shop"));
        assert!(small.target.guarded);
        let big = entry(&scan, "function:big-one");
        assert_eq!(
            big.target.spec,
            TargetSpec::Function {
                memory_mb: 2_048,
                arch: Arch::Arm64,
                async_invoked: false
            }
        );
        assert_eq!(
            big.target.limits,
            Limits::Function {
                reserved_concurrency: Some(5),
                async_config: None
            }
        );
        assert!(scan.unresolved.is_empty(), "{:?}", scan.unresolved);
    }

    #[test]
    fn api_events_create_sam_s_implicit_apis_with_their_stages_and_open_routes() {
        let scan = scan(SAM);
        // Globals.Api asks for an API key everywhere; /health opts out.
        let rest = entry(&scan, "rest-stage:ServerlessRestApi/Prod");
        assert_eq!(rest.open_methods, vec!["GET /health".to_string()]);
        assert_eq!(rest.target.limits, Limits::stage(None));
        let http = entry(&scan, "http-stage:ServerlessHttpApi/$default");
        assert_eq!(
            http.open_methods,
            vec!["$default".to_string(), "POST /hook".to_string()]
        );
        assert_eq!(scan.entries.len(), 4);
    }

    #[test]
    fn short_form_tags_resolve_parameters_conditions_and_no_value() {
        let text = r#"
Parameters:
  Mem: {Type: Number, Default: 512}
  Env: {Type: String, Default: dev}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: !Sub "${Env}-fn"
      MemorySize: !Ref Mem
      ReservedConcurrentExecutions: !If [IsProd, 20, !Ref AWS::NoValue]
  OnlyInProd:
    Type: AWS::Lambda::Function
    Condition: IsProd
    Properties: {FunctionName: prod-only}
"#;
        let dev = scan(text);
        let f = entry(&dev, "function:dev-fn");
        assert_eq!(
            f.target.limits,
            Limits::Function {
                reserved_concurrency: None,
                async_config: None
            }
        );
        assert_eq!(dev.entries.len(), 1, "the conditional function is not created");
        let prod = read("t.yaml", text, &options(&[("Env", "prod"), ("Mem", "1024")])).expect("reads");
        let f = entry(&prod, "function:prod-fn");
        assert_eq!(
            f.target.limits,
            Limits::Function {
                reserved_concurrency: Some(20),
                async_config: None
            }
        );
        assert!(matches!(
            f.target.spec,
            TargetSpec::Function { memory_mb: 1_024, .. }
        ));
        assert_eq!(prod.entries.len(), 2);
    }

    #[test]
    fn what_the_template_does_not_decide_is_reported_at_its_worst_case() {
        let text = r#"
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: !GetAtt Sizes.Memory
      Timeout: !ImportValue shared-timeout
      FunctionUrlConfig:
        AuthType: !Ref AuthParam
"#;
        let scan = scan(text);
        let f = entry(&scan, "function:Fn");
        assert!(matches!(
            f.target.spec,
            TargetSpec::Function {
                memory_mb: 10_240,
                ..
            }
        ));
        assert_eq!(f.timeout_s, Some(900));
        assert!(f.open_url);
        assert_eq!(
            scan.unresolved,
            vec![
                "Resources.Fn.Properties.MemorySize: cannot resolve !GetAtt [\"Sizes\",\"Memory\"]; assumed 10240 MB (the most Lambda allows)".to_string(),
                "Resources.Fn.Properties.Timeout: cannot resolve !ImportValue \"shared-timeout\"; assumed 900 s (the longest Lambda allows)".to_string(),
                "Resources.Fn.Properties.FunctionUrlConfig.AuthType: cannot resolve !Ref AuthParam; assumed NONE (anyone may call the URL)".to_string(),
            ]
        );
    }

    #[test]
    fn errors_name_the_file_or_the_field() {
        let err = |text: &str| {
            read("t.yaml", text, &options(&[]))
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            err(
                "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties:\n      MemorySize: [1]\n"
            ),
            "Resources.Fn.Properties.MemorySize: expected a whole number, got a list"
        );
        assert_eq!(
            err("AWSTemplateFormatVersion: '2010-09-09'\n"),
            "t.yaml: not a CloudFormation template: no `Resources` section (every template declares its resources there)"
        );
        assert!(err("Resources: [unclosed\n").starts_with("t.yaml: not YAML or JSON: "));
        let unknown = read("t.yaml", "Resources: {}\n", &options(&[("Nope", "1")])).expect_err("refused");
        assert_eq!(
            unknown.to_string(),
            "--parameter Nope: the template declares no such parameter"
        );
    }
}
