//! The resources of a template that are entry points, read into [`EntryPoint`]s.
//!
//! Property names and defaults follow the CloudFormation resource reference
//! ("AWS::Lambda::Function", "AWS::Lambda::Url", "AWS::ApiGateway::RestApi",
//! "AWS::ApiGateway::Stage", "AWS::ApiGateway::Deployment", "AWS::ApiGateway::Method",
//! "AWS::ApiGateway::Resource", "AWS::ApiGateway::UsagePlan", "AWS::ApiGatewayV2::Api",
//! "AWS::ApiGatewayV2::Stage", "AWS::ApiGatewayV2::Route") and the AWS SAM
//! specification ("AWS::Serverless::Function", "AWS::Serverless::Api",
//! "AWS::Serverless::HttpApi", "Globals section of the AWS SAM template", and "AWS SAM
//! generated CloudFormation resources" for the implicit APIs: `ServerlessRestApi`
//! with its stage `Prod`, `ServerlessHttpApi` with its stage `$default`):
//!
//! - a function's `MemorySize` defaults to 128 MB, `Timeout` to 3 s,
//!   `Architectures` to `x86_64`; no `ReservedConcurrentExecutions` is no
//!   reservation. Unresolved: 10,240 MB, 900 s, x86_64, no reservation (the most
//!   each can cost, "Lambda quotas");
//! - a function URL with `AuthType` `NONE` is open ("Control access to Lambda
//!   function URLs"); unresolved, it is taken as open;
//! - a REST stage's throttle is its method setting for `/*` and `*`; an HTTP stage's
//!   is its `DefaultRouteSettings`; unresolved, none (the account's default);
//! - a method is open without authorization (`AuthorizationType` `NONE`, the
//!   default) and without `ApiKeyRequired`; SAM events take the API's
//!   `Auth.DefaultAuthorizer` and `Auth.ApiKeyRequired` unless they set their own.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;

use dowguard_domain::exposure::EntryPoint;
use dowguard_domain::{
    ApiId, Arch, FunctionName, Limits, Quota, QuotaPeriod, StageName, Target, TargetId, TargetSpec, Throttle,
    UsagePlanId, tags_allow_guard,
};
use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::resolve::{Resolver, intrinsic, text};
use super::{Options, Scan, TemplateError};

/// The most memory a function may have, in MB ("Lambda quotas").
const MAX_MEMORY_MB: u64 = 10_240;
/// The longest a function may run, in seconds ("Lambda quotas").
const MAX_TIMEOUT_S: u64 = 900;
/// A function's memory when `MemorySize` is not set.
const DEFAULT_MEMORY_MB: u64 = 128;
/// A function's timeout when `Timeout` is not set.
const DEFAULT_TIMEOUT_S: u64 = 3;
/// API Gateway's account-level burst ("Amazon API Gateway quotas"), taken where a
/// template sets a rate without a burst.
const ACCOUNT_BURST: u32 = 5_000;
/// The implicit REST API SAM creates for `Api` events, and its stage.
const IMPLICIT_REST: (&str, &str) = ("ServerlessRestApi", "Prod");
/// The implicit HTTP API SAM creates for `HttpApi` events, and its stage.
const IMPLICIT_HTTP: (&str, &str) = ("ServerlessHttpApi", "$default");

/// What a property resolved to.
enum Field {
    Absent,
    Present(Value),
    Unresolved(String),
}

#[derive(Debug)]
struct Function {
    name: FunctionName,
    memory_mb: u32,
    arch: Arch,
    timeout_s: u32,
    reserved: Option<u32>,
    open_url: bool,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Stage {
    throttle: Option<Throttle>,
    tags: BTreeMap<String, String>,
}

#[derive(Debug, Default)]
struct Api {
    rest: bool,
    stages: BTreeMap<String, Stage>,
    open: BTreeSet<String>,
    tags: BTreeMap<String, String>,
    /// SAM `Auth.DefaultAuthorizer` (any but `NONE` authorizes every event's method).
    default_authorizer: bool,
    /// SAM `Auth.ApiKeyRequired`.
    api_key_required: bool,
}

#[derive(Debug)]
struct Plan {
    logical: String,
    throttle: Option<Throttle>,
    quota: Option<Quota>,
    stages: Vec<(String, String)>,
    tags: BTreeMap<String, String>,
}

/// A SAM function's `Api` or `HttpApi` event, decided once its API is known.
struct Event {
    api: String,
    rest: bool,
    route: String,
    /// The event's own `Auth.Authorizer`: `Some(true)` authorized, `Some(false)` `NONE`.
    authorized: Option<bool>,
    api_key_required: Option<bool>,
}

struct Reader<'a> {
    resolver: Resolver,
    resources: &'a Map<String, Value>,
    globals: Map<String, Value>,
    notes: Vec<String>,
    functions: BTreeMap<String, Function>,
    apis: BTreeMap<String, Api>,
    plans: Vec<Plan>,
    events: Vec<Event>,
}

/// Reads the entry points of the template `tree`.
pub(super) fn read(file: &str, tree: &Value, options: &Options) -> Result<Scan, TemplateError> {
    let not_template = |why: &str| TemplateError::NotATemplate {
        file: file.to_string(),
        why: why.to_string(),
    };
    let Value::Object(top) = tree else {
        return Err(not_template(&format!(
            "expected a mapping of sections (Resources, Parameters, ...), got {}",
            describe(tree)
        )));
    };
    let resources = match top.get("Resources") {
        Some(Value::Object(r)) => r,
        Some(other) => {
            return Err(TemplateError::WrongType {
                path: "Resources".into(),
                expected: "a mapping of logical ids to resources",
                got: describe(other),
            });
        }
        None => {
            return Err(not_template(
                "no `Resources` section (every template declares its resources there)",
            ));
        }
    };
    let section = |name: &str| -> Result<Map<String, Value>, TemplateError> {
        match top.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(m)) => Ok(m.clone()),
            Some(other) => Err(TemplateError::WrongType {
                path: name.to_string(),
                expected: "a mapping",
                got: describe(other),
            }),
        }
    };
    let parameters = parameters(&section("Parameters")?, &options.parameters)?;
    let resolver = Resolver::new(
        parameters,
        section("Conditions")?,
        section("Mappings")?,
        &options.region,
    );
    let mut reader = Reader {
        resolver,
        resources,
        globals: section("Globals")?,
        notes: Vec::new(),
        functions: BTreeMap::new(),
        apis: BTreeMap::new(),
        plans: Vec::new(),
        events: Vec::new(),
    };
    reader.read_all()?;
    reader.finish()
}

/// Each parameter's value: its `--parameter`, else its `Default`, else unknown.
fn parameters(
    declared: &Map<String, Value>,
    given: &[(String, String)],
) -> Result<BTreeMap<String, Option<Value>>, TemplateError> {
    let mut out = BTreeMap::new();
    for (name, p) in declared {
        let list = p
            .get("Type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("List<") || t == "CommaDelimitedList");
        let default = p.get("Default").map(|d| {
            if list {
                Value::Array(
                    text(d)
                        .split(',')
                        .map(|s| Value::String(s.trim().to_string()))
                        .collect(),
                )
            } else {
                Value::String(text(d))
            }
        });
        out.insert(name.clone(), default);
    }
    for (key, value) in given {
        let Some(slot) = out.get_mut(key) else {
            return Err(TemplateError::Parameter {
                key: key.clone(),
                why: "the template declares no such parameter".into(),
            });
        };
        let list = matches!(slot, Some(Value::Array(_)));
        *slot = Some(if list {
            Value::Array(
                value
                    .split(',')
                    .map(|s| Value::String(s.trim().to_string()))
                    .collect(),
            )
        } else {
            Value::String(value.clone())
        });
    }
    Ok(out)
}

impl Reader<'_> {
    fn read_all(&mut self) -> Result<(), TemplateError> {
        let resources = self.resources;
        // APIs first: stages, methods, routes and events refer to them.
        let order = |t: &str| match t {
            "AWS::ApiGateway::RestApi"
            | "AWS::ApiGatewayV2::Api"
            | "AWS::Serverless::Api"
            | "AWS::Serverless::HttpApi" => 0,
            "AWS::Serverless::Function" | "AWS::Lambda::Function" => 1,
            _ => 2,
        };
        let mut typed: Vec<(u8, &String, &str, &Value)> = Vec::new();
        for (id, resource) in resources {
            let path = format!("Resources.{id}");
            let Value::Object(body) = resource else {
                return Err(wrong(&path, "a mapping with Type and Properties", resource));
            };
            let kind = match body.get("Type") {
                Some(Value::String(t)) => t.as_str(),
                Some(other) => return Err(wrong(&format!("{path}.Type"), "a resource type", other)),
                None => {
                    return Err(TemplateError::Invalid {
                        path,
                        why: "no Type".into(),
                    });
                }
            };
            if !self.created(id, body)? {
                continue;
            }
            typed.push((order(kind), id, kind, resource));
        }
        typed.sort_by_key(|(o, ..)| *o);
        for (_, id, kind, resource) in typed {
            let props = self.properties(id, resource)?;
            match kind {
                "AWS::Serverless::Function" => {
                    let global = self.globals.get("Function").cloned().unwrap_or(Value::Null);
                    let props = merge(&global, &props);
                    self.function(id, &props, true)?;
                }
                "AWS::Lambda::Function" => self.function(id, &props, false)?,
                "AWS::Lambda::Url" => self.url(id, &props)?,
                "AWS::Serverless::Api" => {
                    let global = self.globals.get("Api").cloned().unwrap_or(Value::Null);
                    self.sam_api(id, &merge(&global, &props), true)?;
                }
                "AWS::Serverless::HttpApi" => {
                    let global = self.globals.get("HttpApi").cloned().unwrap_or(Value::Null);
                    self.sam_api(id, &merge(&global, &props), false)?;
                }
                "AWS::ApiGateway::RestApi" => {
                    let tags = self.tags(id, &props)?;
                    self.apis.insert(
                        id.clone(),
                        Api {
                            rest: true,
                            tags,
                            ..Api::default()
                        },
                    );
                }
                "AWS::ApiGatewayV2::Api" => self.http_api(id, &props)?,
                "AWS::ApiGateway::Stage" => self.rest_stage(id, &props, "RestApiId")?,
                "AWS::ApiGateway::Deployment" => self.deployment(id, &props)?,
                "AWS::ApiGatewayV2::Stage" => self.http_stage(id, &props)?,
                "AWS::ApiGateway::Method" => self.method(id, &props)?,
                "AWS::ApiGatewayV2::Route" => self.route(id, &props)?,
                "AWS::ApiGateway::UsagePlan" => self.usage_plan(id, &props)?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Whether the resource is created: its `Condition` holds (unresolved: taken as
    /// created, and said).
    fn created(&mut self, id: &str, body: &Map<String, Value>) -> Result<bool, TemplateError> {
        match body.get("Condition") {
            None => Ok(true),
            Some(Value::String(name)) => match self.resolver.condition(name, 0) {
                Ok(holds) => Ok(holds),
                Err(u) => {
                    self.notes.push(format!(
                        "Resources.{id}.Condition: cannot resolve {name} ({}); assumed the resource is created",
                        u.0
                    ));
                    Ok(true)
                }
            },
            Some(other) => Err(wrong(
                &format!("Resources.{id}.Condition"),
                "a condition's name",
                other,
            )),
        }
    }

    fn properties(&self, id: &str, resource: &Value) -> Result<Value, TemplateError> {
        match resource.get("Properties") {
            None | Some(Value::Null) => Ok(Value::Object(Map::new())),
            Some(p @ Value::Object(_)) => Ok(p.clone()),
            Some(other) => Err(wrong(&format!("Resources.{id}.Properties"), "a mapping", other)),
        }
    }

    fn field(&self, object: &Value, key: &str) -> Field {
        match object.get(key) {
            None => Field::Absent,
            Some(v) => match self.resolver.resolve(v) {
                Ok(None) => Field::Absent,
                Ok(Some(Value::Null)) => Field::Absent,
                Ok(Some(v)) => Field::Present(v),
                Err(u) => Field::Unresolved(u.0),
            },
        }
    }

    fn note(&mut self, path: &str, expression: &str, assumed: &str) {
        self.notes
            .push(format!("{path}: cannot resolve {expression}; assumed {assumed}"));
    }

    /// A whole number; unresolved: `worst` (said, with `worst_text`).
    fn whole(
        &mut self,
        object: &Value,
        key: &str,
        path: &str,
        worst: Option<u64>,
        worst_text: &str,
    ) -> Result<Option<u64>, TemplateError> {
        let path = format!("{path}.{key}");
        match self.field(object, key) {
            Field::Absent => Ok(None),
            Field::Present(v) => whole_of(&v, &path).map(Some),
            Field::Unresolved(e) => {
                self.note(&path, &e, worst_text);
                Ok(worst)
            }
        }
    }

    /// Text: `Ok(Some(Ok(text)))`, `Ok(Some(Err(expression)))` when unresolved.
    fn text(
        &self,
        object: &Value,
        key: &str,
        path: &str,
    ) -> Result<Option<Result<String, String>>, TemplateError> {
        match self.field(object, key) {
            Field::Absent => Ok(None),
            Field::Present(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) => {
                Ok(Some(Ok(text(&v))))
            }
            Field::Present(v) => Err(wrong(&format!("{path}.{key}"), "text", &v)),
            Field::Unresolved(e) => Ok(Some(Err(e))),
        }
    }

    fn flag(
        &mut self,
        object: &Value,
        key: &str,
        path: &str,
        worst: bool,
    ) -> Result<Option<bool>, TemplateError> {
        let path = format!("{path}.{key}");
        match self.field(object, key) {
            Field::Absent => Ok(None),
            Field::Present(Value::Bool(b)) => Ok(Some(b)),
            Field::Present(Value::String(s))
                if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false") =>
            {
                Ok(Some(s.eq_ignore_ascii_case("true")))
            }
            Field::Present(v) => Err(wrong(&path, "true or false", &v)),
            Field::Unresolved(e) => {
                self.note(&path, &e, &worst.to_string());
                Ok(Some(worst))
            }
        }
    }

    /// A nested mapping property (resolved), or nothing.
    fn mapping(&mut self, object: &Value, key: &str, path: &str) -> Result<Option<Value>, TemplateError> {
        match self.field(object, key) {
            Field::Absent => Ok(None),
            Field::Present(v @ Value::Object(_)) => Ok(Some(v)),
            Field::Present(v) => Err(wrong(&format!("{path}.{key}"), "a mapping", &v)),
            Field::Unresolved(e) => {
                self.note(&format!("{path}.{key}"), &e, "it is not set");
                Ok(None)
            }
        }
    }

    /// Tags: a mapping (SAM, API Gateway V2) or a list of `Key`/`Value` (CloudFormation).
    fn tags(&mut self, id: &str, props: &Value) -> Result<BTreeMap<String, String>, TemplateError> {
        let path = format!("Resources.{id}.Properties.Tags");
        let mut out = BTreeMap::new();
        let value = match self.field(props, "Tags") {
            Field::Absent => return Ok(out),
            Field::Present(v) => v,
            Field::Unresolved(e) => {
                self.note(&path, &e, "no tags");
                return Ok(out);
            }
        };
        match &value {
            Value::Object(map) => {
                for (k, v) in map {
                    if let Ok(Some(v)) = self.resolver.deep(v, 0) {
                        out.insert(k.clone(), text(&v));
                    }
                }
            }
            Value::Array(items) => {
                for item in items {
                    let (Some(k), Some(v)) = (item.get("Key"), item.get("Value")) else {
                        return Err(wrong(&path, "a list of Key and Value", item));
                    };
                    if let (Ok(Some(k)), Ok(Some(v))) = (self.resolver.deep(k, 0), self.resolver.deep(v, 0)) {
                        out.insert(text(&k), text(&v));
                    }
                }
            }
            other => return Err(wrong(&path, "tags (a mapping or a list of Key and Value)", other)),
        }
        Ok(out)
    }

    fn function(&mut self, id: &str, props: &Value, sam: bool) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let name = match self.text(props, "FunctionName", &path)? {
            Some(Ok(name)) => name,
            Some(Err(e)) => {
                self.note(
                    &format!("{path}.FunctionName"),
                    &e,
                    &format!("the logical id {id}"),
                );
                id.to_string()
            }
            None => id.to_string(),
        };
        let name = FunctionName::parse(&name).map_err(|e| TemplateError::Invalid {
            path: format!("{path}.FunctionName"),
            why: e.to_string(),
        })?;
        let memory = self
            .whole(
                props,
                "MemorySize",
                &path,
                Some(MAX_MEMORY_MB),
                "10240 MB (the most Lambda allows)",
            )?
            .unwrap_or(DEFAULT_MEMORY_MB);
        let timeout = self
            .whole(
                props,
                "Timeout",
                &path,
                Some(MAX_TIMEOUT_S),
                "900 s (the longest Lambda allows)",
            )?
            .unwrap_or(DEFAULT_TIMEOUT_S);
        let reserved = self.whole(
            props,
            "ReservedConcurrentExecutions",
            &path,
            None,
            "no reservation (the account's concurrency)",
        )?;
        let arch = self.arch(props, &path)?;
        let open_url = if sam {
            match self.mapping(props, "FunctionUrlConfig", &path)? {
                Some(config) => self.auth_type_open(&config, &format!("{path}.FunctionUrlConfig"))?,
                None => false,
            }
        } else {
            false
        };
        let tags = self.tags(id, props)?;
        let to_u32 = |n: u64, key: &str| {
            u32::try_from(n).map_err(|_| TemplateError::Invalid {
                path: format!("{path}.{key}"),
                why: format!("{n} is out of range"),
            })
        };
        let function = Function {
            name,
            memory_mb: to_u32(memory, "MemorySize")?,
            arch,
            timeout_s: to_u32(timeout, "Timeout")?,
            reserved: reserved
                .map(|r| to_u32(r, "ReservedConcurrentExecutions"))
                .transpose()?,
            open_url,
            tags,
        };
        self.functions.insert(id.to_string(), function);
        if sam {
            self.sam_events(id, props, &path)?;
        }
        Ok(())
    }

    /// `Architectures`: arm64 only when every entry is arm64; unresolved, x86_64
    /// (its GB-second costs more).
    fn arch(&mut self, props: &Value, path: &str) -> Result<Arch, TemplateError> {
        let path = format!("{path}.Architectures");
        let value = match props.get("Architectures").map(|v| self.resolver.deep(v, 0)) {
            None | Some(Ok(None)) => return Ok(Arch::X86_64),
            Some(Ok(Some(v))) => v,
            Some(Err(e)) => {
                self.note(&path, &e.0, "x86_64 (the dearer GB-second)");
                return Ok(Arch::X86_64);
            }
        };
        let Value::Array(items) = &value else {
            return Err(wrong(&path, "a list of architectures", &value));
        };
        let names: Vec<String> = items.iter().map(text).collect();
        Ok(if !names.is_empty() && names.iter().all(|n| n == "arm64") {
            Arch::Arm64
        } else {
            Arch::X86_64
        })
    }

    /// Whether a function URL's `AuthType` leaves it open (`NONE`); unresolved or
    /// missing, open.
    fn auth_type_open(&mut self, config: &Value, path: &str) -> Result<bool, TemplateError> {
        match self.text(config, "AuthType", path)? {
            Some(Ok(t)) => Ok(t.eq_ignore_ascii_case("NONE")),
            Some(Err(e)) => {
                self.note(&format!("{path}.AuthType"), &e, "NONE (anyone may call the URL)");
                Ok(true)
            }
            None => {
                self.notes.push(format!(
                    "{path}.AuthType: not set; assumed NONE (anyone may call the URL)"
                ));
                Ok(true)
            }
        }
    }

    fn url(&mut self, id: &str, props: &Value) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let target = props.get("TargetFunctionArn").and_then(logical_ref);
        let open = self.auth_type_open(props, &path)?;
        match target.filter(|t| self.functions.contains_key(t)) {
            Some(function) => {
                if let Some(f) = self.functions.get_mut(&function) {
                    f.open_url |= open;
                }
            }
            None => self.notes.push(format!(
                "{path}.TargetFunctionArn: not a function of this template; its URL is not counted"
            )),
        }
        Ok(())
    }

    /// A SAM function's `Api` and `HttpApi` events.
    fn sam_events(&mut self, id: &str, props: &Value, path: &str) -> Result<(), TemplateError> {
        let Some(events) = self.mapping(props, "Events", path)? else {
            return Ok(());
        };
        let Value::Object(events) = events else {
            return Ok(());
        };
        for (name, event) in &events {
            let epath = format!("{path}.Events.{name}");
            let kind = match self.text(event, "Type", &epath)? {
                Some(Ok(k)) => k,
                _ => continue,
            };
            let rest = match kind.as_str() {
                "Api" => true,
                "HttpApi" => false,
                _ => continue,
            };
            let eprops = self
                .mapping(event, "Properties", &epath)?
                .unwrap_or(Value::Object(Map::new()));
            let ppath = format!("{epath}.Properties");
            let (api_key, implicit) = if rest {
                ("RestApiId", IMPLICIT_REST)
            } else {
                ("ApiId", IMPLICIT_HTTP)
            };
            let api = match eprops.get(api_key) {
                None => {
                    self.implicit_api(implicit.0, rest)?;
                    implicit.0.to_string()
                }
                Some(v) => match logical_ref(v).filter(|a| self.apis.contains_key(a)) {
                    Some(a) => a,
                    None => {
                        self.notes.push(format!(
                            "{ppath}.{api_key}: not an API of this template; the event of {id} is not counted"
                        ));
                        continue;
                    }
                },
            };
            let path_text = self.text(&eprops, "Path", &ppath)?;
            let method_text = self.text(&eprops, "Method", &ppath)?;
            let route = match (path_text, method_text) {
                (None, None) if !rest => "$default".to_string(),
                (p, m) => {
                    let p = p.map_or_else(|| "/".to_string(), |p| p.unwrap_or_else(|e| e));
                    let m = m.map_or_else(|| "ANY".to_string(), |m| m.unwrap_or_else(|e| e));
                    let m = m.to_ascii_uppercase();
                    format!("{m} {p}")
                }
            };
            let auth = self.mapping(&eprops, "Auth", &ppath)?;
            let apath = format!("{ppath}.Auth");
            let (authorized, api_key_required) = match auth {
                Some(auth) => {
                    let authorized = match self.text(&auth, "Authorizer", &apath)? {
                        Some(Ok(a)) => Some(!a.eq_ignore_ascii_case("NONE")),
                        Some(Err(e)) => {
                            self.note(&format!("{apath}.Authorizer"), &e, "NONE (open)");
                            Some(false)
                        }
                        None => None,
                    };
                    (authorized, self.flag(&auth, "ApiKeyRequired", &apath, false)?)
                }
                None => (None, None),
            };
            self.events.push(Event {
                api,
                rest,
                route,
                authorized,
                api_key_required,
            });
        }
        Ok(())
    }

    /// SAM's implicit API, created once with the `Globals` section's settings.
    fn implicit_api(&mut self, id: &str, rest: bool) -> Result<(), TemplateError> {
        if self.apis.contains_key(id) {
            return Ok(());
        }
        let global = self
            .globals
            .get(if rest { "Api" } else { "HttpApi" })
            .cloned()
            .unwrap_or(Value::Object(Map::new()));
        let mut props = match global {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let stage = if rest { IMPLICIT_REST.1 } else { IMPLICIT_HTTP.1 };
        props.insert("StageName".into(), Value::String(stage.into()));
        self.sam_api(id, &Value::Object(props), rest)
    }

    /// `AWS::Serverless::Api` (REST) or `AWS::Serverless::HttpApi`.
    fn sam_api(&mut self, id: &str, props: &Value, rest: bool) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let stage = match self.text(props, "StageName", &path)? {
            Some(Ok(s)) => s,
            Some(Err(e)) => {
                self.note(&format!("{path}.StageName"), &e, "the stage name `unresolved`");
                "unresolved".into()
            }
            None if rest => {
                return Err(TemplateError::Invalid {
                    path: format!("{path}.StageName"),
                    why: "required for AWS::Serverless::Api".into(),
                });
            }
            None => IMPLICIT_HTTP.1.into(),
        };
        let throttle = if rest {
            self.method_settings(props, &path)?
        } else {
            self.route_settings(props, "DefaultRouteSettings", &path)?
        };
        let tags = self.tags(id, props)?;
        let mut api = Api {
            rest,
            ..Api::default()
        };
        if let Some(auth) = self.mapping(props, "Auth", &path)? {
            let apath = format!("{path}.Auth");
            api.default_authorizer = match self.text(&auth, "DefaultAuthorizer", &apath)? {
                Some(Ok(a)) => !a.eq_ignore_ascii_case("NONE"),
                Some(Err(e)) => {
                    self.note(&format!("{apath}.DefaultAuthorizer"), &e, "none (open)");
                    false
                }
                None => false,
            };
            api.api_key_required = self
                .flag(&auth, "ApiKeyRequired", &apath, false)?
                .unwrap_or(false);
            if rest {
                self.sam_usage_plan(id, &stage, &auth, &apath)?;
            }
        }
        if props.get("DefinitionBody").is_some() || props.get("DefinitionUri").is_some() {
            self.notes.push(format!(
                "{path}: the methods of an OpenAPI definition are not read; only its functions' events are"
            ));
        }
        api.stages.insert(stage, Stage { throttle, tags });
        self.apis.insert(id.to_string(), api);
        Ok(())
    }

    /// SAM `Auth.UsagePlan`: `PER_API` creates `<Api>UsagePlan`, `SHARED` one
    /// `ServerlessUsagePlan` for every API that asks for it.
    fn sam_usage_plan(
        &mut self,
        api: &str,
        stage: &str,
        auth: &Value,
        path: &str,
    ) -> Result<(), TemplateError> {
        let Some(plan) = self.mapping(auth, "UsagePlan", path)? else {
            return Ok(());
        };
        let ppath = format!("{path}.UsagePlan");
        let logical = match self.text(&plan, "CreateUsagePlan", &ppath)? {
            Some(Ok(c)) if c == "PER_API" => format!("{api}UsagePlan"),
            Some(Ok(c)) if c == "SHARED" => "ServerlessUsagePlan".to_string(),
            _ => return Ok(()),
        };
        let (throttle, quota) = self.plan_limits(&plan, &ppath)?;
        if let Some(existing) = self.plans.iter_mut().find(|p| p.logical == logical) {
            existing.stages.push((api.to_string(), stage.to_string()));
        } else {
            self.plans.push(Plan {
                logical,
                throttle,
                quota,
                stages: vec![(api.to_string(), stage.to_string())],
                tags: BTreeMap::new(),
            });
        }
        Ok(())
    }

    fn http_api(&mut self, id: &str, props: &Value) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        if let Some(Ok(protocol)) = self.text(props, "ProtocolType", &path)?
            && !protocol.eq_ignore_ascii_case("HTTP")
        {
            return Ok(());
        }
        let tags = self.tags(id, props)?;
        let mut api = Api {
            rest: false,
            tags,
            ..Api::default()
        };
        // Quick create: `Target` makes a `$default` stage and a route (`RouteKey`,
        // default `$default`) with no authorization.
        if props.get("Target").is_some() {
            let route = match self.text(props, "RouteKey", &path)? {
                Some(Ok(k)) => k,
                _ => "$default".into(),
            };
            api.open.insert(route);
            api.stages.insert(IMPLICIT_HTTP.1.into(), Stage::default());
        }
        self.apis.insert(id.to_string(), api);
        Ok(())
    }

    /// The API a stage, method or route names in `key`, if it is one of this
    /// template's (else said).
    fn api_of(&mut self, props: &Value, key: &str, path: &str) -> Option<String> {
        let api = props
            .get(key)
            .and_then(logical_ref)
            .filter(|a| self.apis.contains_key(a));
        if api.is_none() {
            self.notes
                .push(format!("{path}.{key}: not an API of this template; not counted"));
        }
        api
    }

    fn stage_name(&mut self, props: &Value, path: &str) -> Result<Option<String>, TemplateError> {
        Ok(match self.text(props, "StageName", path)? {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                self.note(&format!("{path}.StageName"), &e, "the stage name `unresolved`");
                Some("unresolved".into())
            }
            None => None,
        })
    }

    fn rest_stage(&mut self, id: &str, props: &Value, key: &str) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let Some(api) = self.api_of(props, key, &path) else {
            return Ok(());
        };
        let Some(stage) = self.stage_name(props, &path)? else {
            return Err(TemplateError::Invalid {
                path: format!("{path}.StageName"),
                why: "required".into(),
            });
        };
        let throttle = self.method_settings(props, &path)?;
        let tags = self.tags(id, props)?;
        if let Some(a) = self.apis.get_mut(&api) {
            a.stages.insert(stage, Stage { throttle, tags });
        }
        Ok(())
    }

    /// `AWS::ApiGateway::Deployment` with a `StageName` creates that stage, set by
    /// its `StageDescription`.
    fn deployment(&mut self, id: &str, props: &Value) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let Some(stage) = self.stage_name(props, &path)? else {
            return Ok(());
        };
        let Some(api) = self.api_of(props, "RestApiId", &path) else {
            return Ok(());
        };
        let description = self.mapping(props, "StageDescription", &path)?;
        let (throttle, tags) = match description {
            Some(d) => {
                let dpath = format!("{path}.StageDescription");
                let mut throttle = self.method_settings(&d, &dpath)?;
                if throttle.is_none() {
                    throttle = self.throttle(&d, &dpath, ("ThrottlingRateLimit", "ThrottlingBurstLimit"))?;
                }
                (throttle, self.tags(id, &d)?)
            }
            None => (None, BTreeMap::new()),
        };
        if let Some(a) = self.apis.get_mut(&api) {
            a.stages.entry(stage).or_insert(Stage { throttle, tags });
        }
        Ok(())
    }

    fn http_stage(&mut self, id: &str, props: &Value) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let Some(api) = self.api_of(props, "ApiId", &path) else {
            return Ok(());
        };
        let Some(stage) = self.stage_name(props, &path)? else {
            return Err(TemplateError::Invalid {
                path: format!("{path}.StageName"),
                why: "required".into(),
            });
        };
        let throttle = self.route_settings(props, "DefaultRouteSettings", &path)?;
        let tags = self.tags(id, props)?;
        if let Some(a) = self.apis.get_mut(&api) {
            a.stages.insert(stage, Stage { throttle, tags });
        }
        Ok(())
    }

    /// The path of an `AWS::ApiGateway::Resource` (or the root).
    fn resource_path(&self, reference: &Value, depth: usize) -> Option<String> {
        if let Some(("Fn::GetAtt", Value::Array(parts))) = intrinsic(reference)
            && parts.get(1).and_then(Value::as_str) == Some("RootResourceId")
        {
            return Some("/".into());
        }
        let id = logical_ref(reference)?;
        let props = self.resources.get(&id)?.get("Properties")?;
        let part = self.resolver.deep(props.get("PathPart")?, 0).ok()??;
        let parent = self.resource_path(props.get("ParentId")?, depth.checked_sub(1)?)?;
        Some(format!("{}/{}", parent.trim_end_matches('/'), text(&part)))
    }

    fn method(&mut self, id: &str, props: &Value) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let Some(api) = self.api_of(props, "RestApiId", &path) else {
            return Ok(());
        };
        let verb = match self.text(props, "HttpMethod", &path)? {
            Some(Ok(v)) => v.to_ascii_uppercase(),
            Some(Err(e)) => e,
            None => "ANY".into(),
        };
        let resource = props
            .get("ResourceId")
            .and_then(|r| self.resource_path(r, 32))
            .unwrap_or_else(|| format!("(resource of {id})"));
        let authorized = self.authorized(props, &path)?;
        let key = self.flag(props, "ApiKeyRequired", &path, false)?.unwrap_or(false);
        if !authorized
            && !key
            && let Some(a) = self.apis.get_mut(&api)
        {
            a.open.insert(format!("{verb} {resource}"));
        }
        Ok(())
    }

    /// Whether a method's or route's `AuthorizationType` asks for one; an
    /// unresolved one is noted and taken as `NONE` (open), the worst case.
    fn authorized(&mut self, props: &Value, path: &str) -> Result<bool, TemplateError> {
        Ok(match self.text(props, "AuthorizationType", path)? {
            Some(Ok(a)) => !a.eq_ignore_ascii_case("NONE"),
            Some(Err(e)) => {
                self.note(&format!("{path}.AuthorizationType"), &e, "NONE (open)");
                false
            }
            None => false,
        })
    }

    fn route(&mut self, id: &str, props: &Value) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let Some(api) = self.api_of(props, "ApiId", &path) else {
            return Ok(());
        };
        let key = match self.text(props, "RouteKey", &path)? {
            Some(Ok(k)) => k,
            Some(Err(e)) => e,
            None => {
                return Err(TemplateError::Invalid {
                    path: format!("{path}.RouteKey"),
                    why: "required".into(),
                });
            }
        };
        let authorized = self.authorized(props, &path)?;
        if !authorized && let Some(a) = self.apis.get_mut(&api) {
            a.open.insert(key);
        }
        Ok(())
    }

    fn usage_plan(&mut self, id: &str, props: &Value) -> Result<(), TemplateError> {
        let path = format!("Resources.{id}.Properties");
        let (throttle, quota) = self.plan_limits(props, &path)?;
        let tags = self.tags(id, props)?;
        let mut stages = Vec::new();
        match self.field(props, "ApiStages") {
            Field::Absent => {}
            Field::Unresolved(e) => self.note(&format!("{path}.ApiStages"), &e, "no stages"),
            Field::Present(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let spath = format!("{path}.ApiStages[{i}]");
                    let Some(api) = self.api_of(item, "ApiId", &spath) else {
                        continue;
                    };
                    // `Stage` is a name, or a `Ref` to an `AWS::ApiGateway::Stage`
                    // (whose `Ref` is its name).
                    let stage = match item.get("Stage").and_then(logical_ref) {
                        Some(stage_id) => self
                            .resources
                            .get(&stage_id)
                            .and_then(|r| r.get("Properties"))
                            .and_then(|p| p.get("StageName"))
                            .and_then(|s| self.resolver.deep(s, 0).ok().flatten())
                            .map(|s| text(&s)),
                        None => match self.text(item, "Stage", &spath)? {
                            Some(Ok(s)) => Some(s),
                            _ => None,
                        },
                    };
                    match stage {
                        Some(s) => stages.push((api, s)),
                        None => self.notes.push(format!(
                            "{spath}.Stage: cannot resolve the stage; the plan is counted without it"
                        )),
                    }
                }
            }
            Field::Present(other) => return Err(wrong(&format!("{path}.ApiStages"), "a list", &other)),
        }
        self.plans.push(Plan {
            logical: id.to_string(),
            throttle,
            quota,
            stages,
            tags,
        });
        Ok(())
    }

    /// A usage plan's `Throttle` (`RateLimit`, `BurstLimit`) and `Quota` (`Limit`,
    /// `Period`, `Offset`).
    fn plan_limits(
        &mut self,
        plan: &Value,
        path: &str,
    ) -> Result<(Option<Throttle>, Option<Quota>), TemplateError> {
        let throttle = match self.mapping(plan, "Throttle", path)? {
            Some(t) => self.throttle(&t, &format!("{path}.Throttle"), ("RateLimit", "BurstLimit"))?,
            None => None,
        };
        let quota = match self.mapping(plan, "Quota", path)? {
            Some(q) => {
                let qpath = format!("{path}.Quota");
                let limit = self.whole(&q, "Limit", &qpath, None, "no quota")?;
                let period = match self.text(&q, "Period", &qpath)? {
                    Some(Ok(p)) => Some(match p.to_ascii_uppercase().as_str() {
                        "DAY" => QuotaPeriod::Day,
                        "WEEK" => QuotaPeriod::Week,
                        "MONTH" => QuotaPeriod::Month,
                        _ => {
                            return Err(TemplateError::Invalid {
                                path: format!("{qpath}.Period"),
                                why: format!("`{p}` is not DAY, WEEK or MONTH"),
                            });
                        }
                    }),
                    Some(Err(e)) => {
                        self.note(&format!("{qpath}.Period"), &e, "no quota");
                        None
                    }
                    None => None,
                };
                let offset = self.whole(&q, "Offset", &qpath, Some(0), "0")?.unwrap_or(0);
                match (limit, period) {
                    (Some(limit), Some(period)) => Some(Quota {
                        limit,
                        period,
                        offset: u32::try_from(offset).unwrap_or(u32::MAX),
                    }),
                    _ => None,
                }
            }
            None => None,
        };
        Ok((throttle, quota))
    }

    /// A throttle from a rate and a burst; no rate (or an unresolved one) is none.
    fn throttle(
        &mut self,
        object: &Value,
        path: &str,
        (rate, burst): (&str, &str),
    ) -> Result<Option<Throttle>, TemplateError> {
        let rate_path = format!("{path}.{rate}");
        let rate = match self.field(object, rate) {
            Field::Absent => return Ok(None),
            Field::Present(v) => decimal_of(&v, &rate_path)?,
            Field::Unresolved(e) => {
                self.note(&rate_path, &e, "no throttle (the account's)");
                return Ok(None);
            }
        };
        let burst = self
            .whole(
                object,
                burst,
                path,
                Some(u64::from(ACCOUNT_BURST)),
                "the account's burst",
            )?
            .map_or(ACCOUNT_BURST, |b| u32::try_from(b).unwrap_or(u32::MAX));
        Ok(Some(Throttle {
            rate_limit: rate,
            burst_limit: burst,
        }))
    }

    /// A REST stage's throttle: its `MethodSettings` entry for every resource (`/*`)
    /// and method (`*`).
    fn method_settings(&mut self, props: &Value, path: &str) -> Result<Option<Throttle>, TemplateError> {
        let mpath = format!("{path}.MethodSettings");
        let items = match self.field(props, "MethodSettings") {
            Field::Absent => return Ok(None),
            Field::Present(Value::Array(items)) => items,
            Field::Present(other) => return Err(wrong(&mpath, "a list of method settings", &other)),
            Field::Unresolved(e) => {
                self.note(&mpath, &e, "no throttle (the account's)");
                return Ok(None);
            }
        };
        for (i, item) in items.iter().enumerate() {
            let Ok(Some(item)) = self.resolver.resolve(item) else {
                continue;
            };
            let ipath = format!("{mpath}[{i}]");
            let resource = self.text(&item, "ResourcePath", &ipath)?.and_then(Result::ok);
            let method = self.text(&item, "HttpMethod", &ipath)?.and_then(Result::ok);
            if resource.as_deref() == Some("/*") && method.as_deref() == Some("*") {
                return self.throttle(&item, &ipath, ("ThrottlingRateLimit", "ThrottlingBurstLimit"));
            }
        }
        Ok(None)
    }

    /// An HTTP stage's `DefaultRouteSettings` throttle.
    fn route_settings(
        &mut self,
        props: &Value,
        key: &str,
        path: &str,
    ) -> Result<Option<Throttle>, TemplateError> {
        match self.mapping(props, key, path)? {
            Some(settings) => self.throttle(
                &settings,
                &format!("{path}.{key}"),
                ("ThrottlingRateLimit", "ThrottlingBurstLimit"),
            ),
            None => Ok(None),
        }
    }

    /// The entry points, once every resource is read.
    fn finish(mut self) -> Result<Scan, TemplateError> {
        for event in std::mem::take(&mut self.events) {
            let Some(api) = self.apis.get_mut(&event.api) else {
                continue;
            };
            let authorized = event.authorized.unwrap_or(api.default_authorizer);
            let key = event.rest && event.api_key_required.unwrap_or(api.api_key_required);
            if !authorized && !key {
                api.open.insert(event.route);
            }
        }
        let mut entries = Vec::new();
        for f in self.functions.into_values() {
            let guarded = tags_allow_guard(&f.tags);
            let mut target = Target::new(
                TargetId::Function(f.name),
                TargetSpec::Function {
                    memory_mb: f.memory_mb,
                    arch: f.arch,
                    async_invoked: false,
                },
                f.tags,
                Limits::Function {
                    reserved_concurrency: f.reserved,
                    async_config: None,
                },
            );
            target.guarded = guarded;
            entries.push(EntryPoint {
                target,
                timeout_s: Some(f.timeout_s),
                open_methods: vec![],
                plans: vec![],
                open_url: f.open_url,
                access: None,
            });
        }
        let mut plan_ids = Vec::new();
        for plan in &self.plans {
            let id = UsagePlanId::parse(&plan.logical).map_err(|e| TemplateError::Invalid {
                path: format!("Resources.{}", plan.logical),
                why: e.to_string(),
            })?;
            plan_ids.push(id);
        }
        for (logical, api) in &self.apis {
            let api_id = ApiId::logical(logical).map_err(|e| TemplateError::Invalid {
                path: format!("Resources.{logical}"),
                why: e.to_string(),
            })?;
            for (stage_name, stage) in &api.stages {
                let stage_id = StageName::parse(stage_name).map_err(|e| TemplateError::Invalid {
                    path: format!("Resources.{logical} (stage {stage_name})"),
                    why: e.to_string(),
                })?;
                let covering: Vec<usize> = self
                    .plans
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| p.stages.iter().any(|(a, s)| a == logical && s == stage_name))
                    .map(|(i, _)| i)
                    .collect();
                // A REST stage inherits its API's tags for IAM; an HTTP stage does not
                // ("API Gateway resources that can be tagged").
                let mut tags = if api.rest {
                    api.tags.clone()
                } else {
                    BTreeMap::new()
                };
                tags.extend(stage.tags.clone());
                let guarded = tags_allow_guard(&tags);
                let (id, spec) = if api.rest {
                    (
                        TargetId::RestStage(api_id.clone(), stage_id),
                        TargetSpec::RestStage,
                    )
                } else {
                    (
                        TargetId::HttpStage(api_id.clone(), stage_id),
                        TargetSpec::HttpStage,
                    )
                };
                let mut target = Target::new(id, spec, tags, Limits::stage(stage.throttle));
                target.guarded = guarded;
                if api.rest {
                    target.usage_plans = covering.iter().map(|i| plan_ids[*i].clone()).collect();
                }
                entries.push(EntryPoint {
                    target,
                    timeout_s: None,
                    open_methods: api.open.iter().cloned().collect(),
                    plans: if api.rest {
                        covering
                            .iter()
                            .map(|i| (self.plans[*i].throttle, self.plans[*i].quota))
                            .collect()
                    } else {
                        vec![]
                    },
                    open_url: false,
                    // The targeted levels are reported by the live audit only (access logs and web ACLs are read from the account).
                    access: None,
                });
            }
        }
        for (plan, id) in self.plans.iter().zip(plan_ids) {
            let mut target = Target::new(
                TargetId::UsagePlan(id),
                TargetSpec::UsagePlan,
                plan.tags.clone(),
                Limits::UsagePlan {
                    throttle: plan.throttle,
                    quota: plan.quota,
                },
            );
            target.guarded = tags_allow_guard(&plan.tags);
            entries.push(EntryPoint {
                target,
                timeout_s: None,
                open_methods: vec![],
                plans: vec![],
                open_url: false,
                access: None,
            });
        }
        Ok(Scan {
            entries,
            unresolved: self.notes,
        })
    }
}

/// SAM's `Globals` merged under a resource's properties ("Globals section of the
/// AWS SAM template"): the resource's scalars win, mappings merge, lists add up.
fn merge(global: &Value, local: &Value) -> Value {
    match (global, local) {
        (Value::Object(g), Value::Object(l)) if intrinsic(global).is_none() && intrinsic(local).is_none() => {
            let mut out = g.clone();
            for (k, v) in l {
                let merged = match g.get(k) {
                    Some(gv) => merge(gv, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), merged);
            }
            Value::Object(out)
        }
        (Value::Array(g), Value::Array(l)) => Value::Array(g.iter().chain(l).cloned().collect()),
        (_, Value::Null) => global.clone(),
        _ => local.clone(),
    }
}

/// The logical id a `Ref` or `Fn::GetAtt` names.
fn logical_ref(value: &Value) -> Option<String> {
    match intrinsic(value)? {
        ("Ref", Value::String(id)) => Some(id.clone()),
        ("Fn::GetAtt", Value::Array(parts)) => parts.first().and_then(Value::as_str).map(str::to_string),
        ("Fn::GetAtt", Value::String(s)) => s.split('.').next().map(str::to_string),
        _ => None,
    }
}

fn wrong(path: &str, expected: &'static str, got: &Value) -> TemplateError {
    TemplateError::WrongType {
        path: path.to_string(),
        expected,
        got: describe(got),
    }
}

/// What a value is, for messages.
fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            format!("the text {shown:?}")
        }
        Value::Array(_) => "a list".into(),
        Value::Object(_) => match intrinsic(value) {
            Some((name, _)) => format!("the function {name}"),
            None => "a mapping".into(),
        },
    }
}

/// A whole number, written as a number or as text (CloudFormation passes
/// parameters as text).
fn whole_of(value: &Value, path: &str) -> Result<u64, TemplateError> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .ok_or_else(|| wrong(path, "a whole number", value))
}

/// A rate (requests a second; may have decimals).
fn decimal_of(value: &Value, path: &str) -> Result<Decimal, TemplateError> {
    match value {
        Value::Number(_) | Value::String(_) => Decimal::from_str(text(value).trim()).ok(),
        _ => None,
    }
    .filter(|d| !d.is_sign_negative())
    .ok_or_else(|| wrong(path, "a number", value))
}
