//! AWS Lambda: reserved concurrency, async invoke config, account concurrency, and
//! function discovery. Every call is paced to share the account's Lambda control
//! plane (about 15 requests a second) politely.

use std::collections::BTreeMap;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::types::{Architecture, DestinationConfig, FunctionConfiguration, OnFailure, OnSuccess};
use dowguard_domain::{
    AccountConcurrency, Arch, AsyncConfig, FunctionName, Limits, Target, TargetId, TargetSpec,
    tags_allow_guard,
};
use dowguard_guard::ports::LambdaControl;
use dowguard_guard::{FailureKind, PortResult};

use crate::error::{invalid, port_error};
use crate::pace::Pacer;

/// The tag that marks a function as invoked asynchronously (its throttled events
/// are queued and replayed by Lambda), so the guard also shortens its event age.
pub const ASYNC_TAG: &str = "dowguard:invocation";

/// Lambda through the SDK.
#[derive(Debug)]
pub struct LambdaAdapter {
    client: Client,
    pacer: Pacer,
    /// `GetFunction` is outside the control plane's shared quota ("Lambda quotas":
    /// the remainder "excludes invocation, GetFunction, and GetPolicy requests"),
    /// so it does not draw on `pacer`; it is paced at the same rate on its own.
    get_function_pacer: Pacer,
}

impl LambdaAdapter {
    /// An adapter pacing calls to `per_second`.
    pub fn new(client: Client, per_second: u32) -> Self {
        LambdaAdapter {
            client,
            pacer: Pacer::per_second(per_second),
            get_function_pacer: Pacer::per_second(per_second),
        }
    }

    /// One function as it is now: its configuration and tags (`GetFunction`), its
    /// reservation (`GetFunctionConcurrency`) and its async invoke config; `None`
    /// when it does not exist.
    pub async fn read_function(&self, function: &FunctionName) -> PortResult<Option<Target>> {
        self.get_function_pacer.wait().await;
        let found = match self
            .client
            .get_function()
            .function_name(function.as_str())
            .send()
            .await
            .map_err(|e| port_error("GetFunction", function.as_str(), e))
        {
            Ok(found) => found,
            Err(e) if e.kind == FailureKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let tags: BTreeMap<String, String> = found
            .tags()
            .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        let Some(config) = found.configuration() else {
            return Err(invalid(
                "GetFunction",
                function.as_str(),
                "no configuration in the answer",
            ));
        };
        let limits = Limits::Function {
            reserved_concurrency: self.reserved_concurrency(function).await?,
            async_config: self.async_config(function).await?,
        };
        Ok(Some(function_target(function.clone(), config, tags, limits)))
    }

    /// The function's reserved concurrency (`GetFunctionConcurrency`; `GetFunction`
    /// omits a reservation of 0).
    pub async fn reserved_concurrency(&self, function: &FunctionName) -> PortResult<Option<u32>> {
        self.pacer.wait().await;
        let out = self
            .client
            .get_function_concurrency()
            .function_name(function.as_str())
            .send()
            .await
            .map_err(|e| port_error("GetFunctionConcurrency", function.as_str(), e))?;
        out.reserved_concurrent_executions()
            .map(|n| {
                u32::try_from(n).map_err(|_| {
                    invalid(
                        "GetFunctionConcurrency",
                        function.as_str(),
                        "negative reservation",
                    )
                })
            })
            .transpose()
    }

    /// The function's async invoke config, `None` if it has none.
    pub async fn async_config(&self, function: &FunctionName) -> PortResult<Option<AsyncConfig>> {
        self.pacer.wait().await;
        match self
            .client
            .get_function_event_invoke_config()
            .function_name(function.as_str())
            .send()
            .await
        {
            Ok(out) => {
                let destinations = out.destination_config();
                Ok(Some(AsyncConfig {
                    max_event_age_s: out
                        .maximum_event_age_in_seconds()
                        .and_then(|n| u32::try_from(n).ok()),
                    max_retry_attempts: out.maximum_retry_attempts().and_then(|n| u32::try_from(n).ok()),
                    on_success: destinations
                        .and_then(DestinationConfig::on_success)
                        .and_then(OnSuccess::destination)
                        .map(str::to_string),
                    on_failure: destinations
                        .and_then(DestinationConfig::on_failure)
                        .and_then(OnFailure::destination)
                        .map(str::to_string),
                }))
            }
            Err(e) => {
                let err = port_error("GetFunctionEventInvokeConfig", function.as_str(), e);
                if err.kind == FailureKind::NotFound {
                    Ok(None)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Every function with its memory, architecture, tags and current limits.
    pub async fn discover_functions(&self) -> PortResult<Vec<Target>> {
        let configs = self.list_functions().await?;
        let mut targets = Vec::with_capacity(configs.len());
        for config in configs {
            let Some(name) = config.function_name() else {
                continue;
            };
            let Ok(function) = FunctionName::parse(name) else {
                tracing::warn!(
                    function = name,
                    "skipping a function whose name the guard cannot use"
                );
                continue;
            };
            let tags = match config.function_arn() {
                Some(arn) => {
                    self.pacer.wait().await;
                    self.client
                        .list_tags()
                        .resource(arn)
                        .send()
                        .await
                        .map_err(|e| port_error("ListTags", name, e))?
                        .tags()
                        .map(|t| t.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                        .unwrap_or_default()
                }
                None => Default::default(),
            };
            let limits = Limits::Function {
                reserved_concurrency: self.reserved_concurrency(&function).await?,
                async_config: self.async_config(&function).await?,
            };
            targets.push(function_target(function, &config, tags, limits));
        }
        Ok(targets)
    }
}

impl LambdaAdapter {
    /// Every function's timeout in seconds (`ListFunctions`), for the exposure audit.
    pub async fn timeouts(&self) -> PortResult<std::collections::HashMap<FunctionName, u32>> {
        let mut out = std::collections::HashMap::new();
        for config in self.list_functions().await? {
            let (Some(Ok(name)), Some(timeout)) = (
                config.function_name().map(FunctionName::parse),
                config.timeout().and_then(|t| u32::try_from(t).ok()),
            ) else {
                continue;
            };
            out.insert(name, timeout);
        }
        Ok(out)
    }

    /// Whether the function has a function URL anyone may call: `GetFunctionUrlConfig`
    /// (Lambda API Reference) on the function itself answers its URL's `AuthType`,
    /// `NONE` meaning no IAM authentication ("Control access to Lambda function
    /// URLs"); no URL (`ResourceNotFoundException`) is `false`. A URL on an alias is
    /// not seen here: that needs `ListFunctionUrlConfigs`, which the local test
    /// server does not answer.
    pub async fn open_url(&self, function: &FunctionName) -> PortResult<bool> {
        self.pacer.wait().await;
        match self
            .client
            .get_function_url_config()
            .function_name(function.as_str())
            .send()
            .await
        {
            Ok(out) => Ok(out.auth_type() == &aws_sdk_lambda::types::FunctionUrlAuthType::None),
            Err(e) => {
                let err = port_error("GetFunctionUrlConfig", function.as_str(), e);
                if err.kind == FailureKind::NotFound {
                    Ok(false)
                } else {
                    Err(err)
                }
            }
        }
    }

    /// Every function's configuration, following every page of `ListFunctions`.
    async fn list_functions(&self) -> PortResult<Vec<FunctionConfiguration>> {
        let mut configs = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            self.pacer.wait().await;
            let page = self
                .client
                .list_functions()
                .set_marker(marker.clone())
                .max_items(50)
                .send()
                .await
                .map_err(|e| port_error("ListFunctions", "account", e))?;
            configs.extend(page.functions().iter().cloned());
            marker = page.next_marker().map(str::to_string);
            if marker.is_none() {
                return Ok(configs);
            }
        }
    }
}

/// A function as a target: memory, architecture and tags from its configuration.
fn function_target(
    function: FunctionName,
    config: &FunctionConfiguration,
    tags: BTreeMap<String, String>,
    limits: Limits,
) -> Target {
    let arch = if config.architectures().contains(&Architecture::Arm64) {
        Arch::Arm64
    } else {
        Arch::X86_64
    };
    let memory_mb = config
        .memory_size()
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(128);
    let async_invoked = tags_say_async(&tags);
    // IAM's `aws:ResourceTag` sees the function's own tags.
    let guarded = tags_allow_guard(&tags);
    let mut target = Target::new(
        TargetId::Function(function),
        TargetSpec::Function {
            memory_mb,
            arch,
            async_invoked,
        },
        tags,
        limits,
    );
    target.guarded = guarded;
    target
}

fn tags_say_async(tags: &BTreeMap<String, String>) -> bool {
    tags.get(ASYNC_TAG)
        .is_some_and(|v| v.eq_ignore_ascii_case("async"))
}

fn i32_of(value: u32, operation: &'static str, resource: &str) -> PortResult<i32> {
    i32::try_from(value).map_err(|_| invalid(operation, resource, format!("{value} is out of range")))
}

impl LambdaControl for LambdaAdapter {
    async fn account_concurrency(&self) -> PortResult<AccountConcurrency> {
        self.pacer.wait().await;
        let out = self
            .client
            .get_account_settings()
            .send()
            .await
            .map_err(|e| port_error("GetAccountSettings", "account", e))?;
        let limit = out
            .account_limit()
            .ok_or_else(|| invalid("GetAccountSettings", "account", "no account limit in the answer"))?;
        let total = u32::try_from(limit.concurrent_executions()).unwrap_or(0);
        let unreserved = limit
            .unreserved_concurrent_executions()
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(total);
        // The minimum the account must keep follows from its limit (100, or all of
        // a smaller limit): never assumed.
        Ok(AccountConcurrency::from_settings(total, unreserved))
    }

    async fn set_reserved_concurrency(&self, function: &FunctionName, value: Option<u32>) -> PortResult<()> {
        self.pacer.wait().await;
        match value {
            Some(n) => self
                .client
                .put_function_concurrency()
                .function_name(function.as_str())
                .reserved_concurrent_executions(i32_of(n, "PutFunctionConcurrency", function.as_str())?)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| port_error("PutFunctionConcurrency", function.as_str(), e)),
            None => self
                .client
                .delete_function_concurrency()
                .function_name(function.as_str())
                .send()
                .await
                .map(|_| ())
                .map_err(|e| port_error("DeleteFunctionConcurrency", function.as_str(), e)),
        }
    }

    /// Writes the whole config with `PutFunctionEventInvokeConfig`, which (Lambda
    /// API reference, "PutFunctionEventInvokeConfig") overwrites any existing config
    /// and removes every setting it is not given; `UpdateFunctionEventInvokeConfig`
    /// changes only the settings it is given, so it could never put back a setting
    /// the original did not have. `None` deletes the config.
    async fn set_async_config(&self, function: &FunctionName, to: Option<&AsyncConfig>) -> PortResult<()> {
        let name = function.as_str();
        let Some(config) = to else {
            self.pacer.wait().await;
            return match self
                .client
                .delete_function_event_invoke_config()
                .function_name(name)
                .send()
                .await
            {
                Ok(_) => Ok(()),
                Err(e) => {
                    let err = port_error("DeleteFunctionEventInvokeConfig", name, e);
                    if err.kind == FailureKind::NotFound {
                        Ok(())
                    } else {
                        Err(err)
                    }
                }
            };
        };
        let age = config
            .max_event_age_s
            .map(|n| i32_of(n, "PutFunctionEventInvokeConfig", name))
            .transpose()?;
        let retries = config
            .max_retry_attempts
            .map(|n| i32_of(n, "PutFunctionEventInvokeConfig", name))
            .transpose()?;
        let destinations = (config.on_success.is_some() || config.on_failure.is_some()).then(|| {
            DestinationConfig::builder()
                .set_on_success(
                    config
                        .on_success
                        .as_ref()
                        .map(|arn| OnSuccess::builder().destination(arn).build()),
                )
                .set_on_failure(
                    config
                        .on_failure
                        .as_ref()
                        .map(|arn| OnFailure::builder().destination(arn).build()),
                )
                .build()
        });
        self.pacer.wait().await;
        self.client
            .put_function_event_invoke_config()
            .function_name(name)
            .set_maximum_event_age_in_seconds(age)
            .set_maximum_retry_attempts(retries)
            .set_destination_config(destinations)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error("PutFunctionEventInvokeConfig", name, e))
    }
}
