//! The scenario file: targets, budgets, guard settings, metric delay, schedule
//! interval, baseline settings, traffic and expectations, as TOML.
//!
//! Parsing turns the text into a validated [`Scenario`]: every rejection names the
//! field and says what is wrong. `docs/simulator.md` documents every field.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, TimeZone, Utc};
use dowguard_domain::{
    AlarmScope, Arch, AsyncConfig, Budget, BudgetSpec, Floors, GuardSettings, Limits, MetricsPlan, PriceBook,
    Prices, Target, TargetId, TargetKind, TargetSpec, Throttle,
};
use rust_decimal::Decimal;
use serde::Deserialize;

use crate::traffic::{Component, CsvTrace, Role, Shape, Traffic};
use crate::{SimError, invalid};

/// Lambda's default maximum age of a queued asynchronous event (6 hours).
pub const DEFAULT_MAX_EVENT_AGE_S: u32 = 21_600;
/// API Gateway's default account-level steady-state limit per region (requests/s).
pub const DEFAULT_MAX_RPS: u32 = 10_000;
/// Lambda's default concurrent-executions limit per account.
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1_000;
/// Minutes from a request to its caller's place in the ranking the guard reads:
/// the access log's delivery and the rule's one-minute evaluation.
pub const DEFAULT_ATTRIBUTION_DELAY_MINUTES: u32 = 2;

/// A simulated target: the domain's target plus what the simulator needs to run it.
#[derive(Debug, Clone)]
pub struct SimTarget {
    /// The target as the guard discovers it (initial limits included).
    pub target: Target,
    /// Average duration per request in ms (functions), when traffic does not say.
    pub avg_duration_ms: u64,
    /// Most concurrent executions the function can get without a reservation.
    pub max_concurrency: u32,
    /// Most requests per second a stage serves without a stage throttle.
    pub max_rps: u32,
    /// What the targeted levels can use on a stage (see [`Levers`]).
    pub levers: Levers,
}

/// How a stage's callers are named in its access logs, and what the guard may do
/// to one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levers {
    /// Callers are named by API key (else by address).
    pub api_keys: bool,
    /// A quarantine usage plan covers the stage (keys can be quarantined).
    pub quarantine_plan: bool,
    /// A web ACL with a blocking IP set is attached (addresses can be blocked).
    pub ip_set: bool,
}

impl Levers {
    /// The stage is attributed: its access logs are ranked and a lever exists.
    pub fn attributed(self) -> bool {
        self.ip_set || (self.api_keys && self.quarantine_plan)
    }
}

impl SimTarget {
    /// The target's identity.
    pub fn id(&self) -> &TargetId {
        &self.target.id
    }
}

/// How the dowguard strategy is run.
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// Minutes between two evaluations (the EventBridge schedule).
    pub interval_minutes: u32,
    /// The core's settings; `metric_delay_minutes` is the scenario's metric delay.
    pub settings: GuardSettings,
    /// How often the guard measures what (the guard's own CloudWatch bill).
    pub metrics_plan: MetricsPlan,
    /// Which targets get an alarm (the template's `Alarms` parameter): `needed`
    /// by default, `every-target` or `none`.
    pub alarms: AlarmScope,
    /// Minutes from a request to its caller's place in the ranking the guard reads
    /// (access logs delivered, Contributor Insights rule evaluated).
    pub attribution_delay_minutes: u32,
}

/// Settings of the baseline strategies.
#[derive(Debug, Clone)]
pub struct Baselines {
    /// AWS Budgets refreshes actual spend this often (minutes).
    pub budgets_refresh_minutes: u32,
    /// Cost Anomaly Detection raises its alert this long after the anomaly (minutes).
    pub anomaly_delay_minutes: u32,
    /// The static kill switch trips at this multiple of the budget's even pace
    /// (requests per minute of one target at its average cost), in millionths.
    pub kill_switch_multiple_millionths: i64,
    /// Minutes after a trip until a person restores the original limits.
    pub kill_switch_restore_minutes: u32,
}

impl Default for Baselines {
    /// The settings a scenario without a `[baselines]` table gets.
    fn default() -> Self {
        Baselines {
            budgets_refresh_minutes: 8 * 60,
            anomaly_delay_minutes: 24 * 60,
            kill_switch_multiple_millionths: 10_000_000,
            kill_switch_restore_minutes: 60,
        }
    }
}

/// What kind of scenario this is, which decides what its expectations mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ScenarioClass {
    /// An attack the guard must contain.
    Attack,
    /// Legitimate traffic within budget: the guard must not reject any of it.
    Benign,
    /// Legitimate traffic that does exhaust the budget: the guard must act and say why.
    Exhausting,
}

/// What a built-in scenario promises, checked by [`crate::Report::verdicts`].
#[derive(Debug, Clone)]
pub struct Expectations {
    /// The kind of scenario.
    pub class: ScenarioClass,
    /// dowguard's overspend at most this multiple of the physical floor (millionths).
    pub floor_ratio_max_millionths: Option<i64>,
    /// dowguard's exposure (attack spend before its first effective limit) at most
    /// this multiple of the physical floor (millionths).
    pub exposure_ratio_max_millionths: Option<i64>,
    /// dowguard's exposure at most this multiple of the physical floor plus the
    /// attack's spend over the attribution's own delay (millionths): the bound of a
    /// guard that holds callers ranked from access logs.
    pub exposure_attributed_ratio_max_millionths: Option<i64>,
    /// dowguard's overspend at most this fraction of the Budgets-action model's
    /// overspend on the same trace (millionths).
    pub budgets_ratio_max_millionths: Option<i64>,
    /// dowguard refuses at most this fraction of the legit requests (millionths).
    pub legit_refused_max_millionths: Option<i64>,
}

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Short name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Start of minute 0.
    pub start: DateTime<Utc>,
    /// Minutes simulated.
    pub minutes: u32,
    /// Prices of the scenario's region.
    pub prices: Prices,
    /// Lambda's account concurrency limit.
    pub account_concurrency: u32,
    /// How dowguard runs.
    pub guard: GuardConfig,
    /// How the baselines run.
    pub baselines: Baselines,
    /// The targets.
    pub targets: Vec<SimTarget>,
    /// The budgets (shared by every strategy that uses budgets).
    pub budgets: Vec<Budget>,
    /// The traffic.
    pub traffic: Traffic,
    /// What the scenario promises, if anything.
    pub expect: Option<Expectations>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    start: Option<String>,
    #[serde(default)]
    duration: Option<DurationText>,
    #[serde(default = "default_region")]
    region: String,
    #[serde(default)]
    free_tier: bool,
    #[serde(default)]
    account_concurrency: Option<u32>,
    #[serde(default)]
    guard: GuardFile,
    #[serde(default)]
    baselines: BaselinesFile,
    targets: Vec<TargetFile>,
    #[serde(default)]
    budgets: Vec<BudgetFile>,
    #[serde(default)]
    traffic: Vec<TrafficFile>,
    #[serde(default)]
    csv: Option<String>,
    #[serde(default)]
    expect: Option<ExpectFile>,
}

fn default_region() -> String {
    "us-east-1".into()
}

/// A duration written as minutes (`90`) or with a unit (`90m`, `6h`, `3d`, `2w`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DurationText {
    Minutes(u32),
    Text(String),
}

impl DurationText {
    fn minutes(&self, field: &str) -> Result<u32, SimError> {
        match self {
            DurationText::Minutes(m) => Ok(*m),
            DurationText::Text(text) => parse_duration(text).ok_or_else(|| {
                invalid(
                    field,
                    format!("`{text}` is not a duration; write minutes (90) or 90m, 6h, 3d, 2w"),
                )
            }),
        }
    }
}

fn parse_duration(text: &str) -> Option<u32> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: u32 = number.parse().ok()?;
    let factor = match unit.trim() {
        "m" | "min" => 1,
        "h" => 60,
        "d" => 1_440,
        "w" => 10_080,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardFile {
    #[serde(default)]
    schedule_interval_minutes: Option<u32>,
    #[serde(default)]
    alarms: Option<String>,
    #[serde(default)]
    metric_delay_minutes: Option<u32>,
    #[serde(default)]
    attribution_delay_minutes: Option<u32>,
    #[serde(default)]
    metrics_plan: Option<MetricsPlan>,
    #[serde(default)]
    settings: Option<GuardSettings>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselinesFile {
    #[serde(default)]
    budgets_refresh_hours: Option<u32>,
    #[serde(default)]
    anomaly_delay_hours: Option<u32>,
    #[serde(default)]
    kill_switch_multiple: Option<String>,
    #[serde(default)]
    kill_switch_restore_minutes: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetFile {
    id: String,
    #[serde(default)]
    count: Option<u32>,
    #[serde(default)]
    memory_mb: Option<u32>,
    #[serde(default)]
    arch: Option<Arch>,
    #[serde(default)]
    avg_duration_ms: Option<u64>,
    #[serde(default)]
    max_concurrency: Option<u32>,
    #[serde(default)]
    async_invoked: bool,
    #[serde(default)]
    max_event_age_s: Option<u32>,
    #[serde(default)]
    reserved_concurrency: Option<u32>,
    #[serde(default)]
    throttle: Option<ThrottleFile>,
    #[serde(default)]
    max_rps: Option<u32>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    callers: Option<String>,
    #[serde(default)]
    quarantine_plan: bool,
    #[serde(default)]
    ip_set: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThrottleFile {
    rate: u32,
    burst: u32,
}

#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct BudgetFile {
    id: String,
    scope: String,
    period: String,
    amount: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    thresholds: Vec<String>,
    #[serde(default = "default_mode")]
    mode: String,
    #[serde(default = "default_owner")]
    owner: String,
    #[serde(default)]
    floors: Floors,
    #[serde(default)]
    protected: bool,
}

/// A budgets file: `[[budgets]]` tables as a scenario writes them (id, scope,
/// period, amount, and optionally thresholds, mode, owner, floors, protected).
#[derive(Debug, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct BudgetsOnly {
    budgets: Vec<BudgetFile>,
}

/// Writes budgets as a budgets file that [`budgets_from_toml`] reads back.
pub fn budgets_to_toml(budgets: &[Budget]) -> Result<String, SimError> {
    let file = BudgetsOnly {
        budgets: budgets
            .iter()
            .map(|b| {
                let spec = BudgetSpec::from(b.clone());
                BudgetFile {
                    id: spec.id,
                    scope: spec.scope,
                    period: spec.period,
                    amount: spec.amount,
                    thresholds: spec.thresholds,
                    mode: spec.mode,
                    owner: spec.owner,
                    floors: spec.floors,
                    protected: spec.protected,
                }
            })
            .collect(),
    };
    toml::to_string(&file).map_err(|e| invalid("budgets", format!("cannot be written as TOML: {e}")))
}

/// Reads a budgets file (TOML `[[budgets]]` tables, the scenario's own format):
/// every rejection names the budget's position and the field.
pub fn budgets_from_toml(text: &str, file: &str) -> Result<Vec<Budget>, SimError> {
    let raw: BudgetsOnly = toml::from_str(text).map_err(|e| SimError::Syntax {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let budgets = parse_budgets(&raw.budgets)?;
    if budgets.is_empty() {
        return Err(invalid("budgets", "the file holds no [[budgets]] table"));
    }
    Ok(budgets)
}

fn parse_budgets(raw: &[BudgetFile]) -> Result<Vec<Budget>, SimError> {
    raw.iter()
        .enumerate()
        .map(|(i, b)| {
            Budget::parse(BudgetSpec {
                id: b.id.clone(),
                scope: b.scope.clone(),
                period: b.period.clone(),
                amount: b.amount.clone(),
                thresholds: b.thresholds.clone(),
                mode: b.mode.clone(),
                owner: b.owner.clone(),
                topic: None,
                floors: b.floors,
                protected: b.protected,
            })
            .map_err(|e| invalid(format!("budgets[{i}]"), format!("budget `{}`: {e}", b.id)))
        })
        .collect()
}

fn default_mode() -> String {
    "enforce".into()
}

fn default_owner() -> String {
    "finance@example.com".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrafficFile {
    target: String,
    role: Role,
    shape: String,
    #[serde(default)]
    rpm: Option<u64>,
    #[serde(default)]
    peak_rpm: Option<u64>,
    #[serde(default)]
    peak_hour: Option<u32>,
    #[serde(default)]
    on: Option<DurationText>,
    #[serde(default)]
    off: Option<DurationText>,
    #[serde(default)]
    every: Option<DurationText>,
    #[serde(default)]
    daily_growth_percent: Option<String>,
    #[serde(default)]
    from: Option<DurationText>,
    #[serde(default)]
    until: Option<DurationText>,
    #[serde(default)]
    clients: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectFile {
    class: ScenarioClass,
    #[serde(default)]
    floor_ratio_max: Option<String>,
    #[serde(default)]
    exposure_ratio_max: Option<String>,
    #[serde(default)]
    exposure_attributed_ratio_max: Option<String>,
    #[serde(default)]
    budgets_ratio_max: Option<String>,
    #[serde(default)]
    legit_refused_max: Option<String>,
}

fn millionths(field: &str, text: &str) -> Result<i64, SimError> {
    let value: Decimal = text
        .trim()
        .parse()
        .map_err(|_| invalid(field, format!("`{text}` is not a decimal number")))?;
    if value.is_sign_negative() {
        return Err(invalid(field, "must not be negative"));
    }
    let scaled = (value * Decimal::from(1_000_000)).trunc();
    i64::try_from(scaled.mantissa() / 10_i128.pow(scaled.scale()))
        .map_err(|_| invalid(field, format!("`{text}` is too large")))
}

impl Scenario {
    /// Reads a scenario file; a `csv` trace is resolved next to the file.
    pub fn from_path(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Scenario::from_toml(&text, &path.display().to_string(), |csv| {
            let csv_path = dir.join(csv);
            std::fs::read_to_string(&csv_path)
                .map(|text| (csv_path.display().to_string(), text))
                .map_err(|source| SimError::Io {
                    path: csv_path.display().to_string(),
                    source,
                })
        })
    }

    /// Parses a scenario. `read_csv` is asked for the text of a `csv` trace named by
    /// the file and returns (name for messages, text).
    pub fn from_toml(
        text: &str,
        file: &str,
        read_csv: impl FnOnce(&str) -> Result<(String, String), SimError>,
    ) -> Result<Scenario, SimError> {
        let raw: File = toml::from_str(text).map_err(|e| SimError::Syntax {
            file: file.to_string(),
            message: e.to_string(),
        })?;
        if raw.name.trim().is_empty() {
            return Err(invalid("name", "must not be empty"));
        }
        let start = match &raw.start {
            None => Utc
                .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
                .single()
                .ok_or_else(|| invalid("start", "default start is not a time"))?,
            Some(text) => DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| {
                    invalid(
                        "start",
                        format!("`{text}` is not a time like 2026-01-01T00:00:00Z"),
                    )
                })?,
        };
        if start.timestamp() % 60 != 0 {
            return Err(invalid("start", "must fall on a whole minute"));
        }
        let prices = PriceBook::bundled()?.prices(&raw.region, raw.free_tier)?;
        let account_concurrency = raw.account_concurrency.unwrap_or(DEFAULT_ACCOUNT_CONCURRENCY);
        let guard = guard_config(&raw.guard)?;
        let baselines = baselines(&raw.baselines)?;
        let targets = targets(&raw.targets, account_concurrency)?;
        let budgets = parse_budgets(&raw.budgets)?;
        if budgets.is_empty() {
            return Err(invalid(
                "budgets",
                "give at least one budget: the figures are measured against it",
            ));
        }
        let duration = raw.duration.as_ref().map(|d| d.minutes("duration")).transpose()?;
        let (traffic, minutes) = match (&raw.csv, raw.traffic.is_empty()) {
            (Some(_), false) => {
                return Err(invalid(
                    "traffic",
                    "give either `csv` or [[traffic]] entries, not both",
                ));
            }
            (None, true) => return Err(invalid("traffic", "give [[traffic]] entries or a `csv` trace")),
            (Some(csv), true) => {
                let (name, text) = read_csv(csv)?;
                let trace = CsvTrace::parse(&text, &name, &targets, duration)?;
                let minutes = duration.unwrap_or(trace.last_minute().map_or(1, |m| m + 1));
                (Traffic::Csv(trace), minutes)
            }
            (None, false) => {
                let minutes =
                    duration.ok_or_else(|| invalid("duration", "required with [[traffic]] entries"))?;
                let components = raw
                    .traffic
                    .iter()
                    .enumerate()
                    .map(|(i, t)| component(i, t, &targets, minutes))
                    .collect::<Result<Vec<_>, _>>()?;
                (Traffic::Shapes(components), minutes)
            }
        };
        if minutes == 0 || minutes > 2 * 527_040 {
            return Err(invalid("duration", "must be between one minute and two years"));
        }
        let expect = raw
            .expect
            .map(|e| -> Result<Expectations, SimError> {
                Ok(Expectations {
                    class: e.class,
                    floor_ratio_max_millionths: e
                        .floor_ratio_max
                        .as_deref()
                        .map(|t| millionths("expect.floor_ratio_max", t))
                        .transpose()?,
                    exposure_ratio_max_millionths: e
                        .exposure_ratio_max
                        .as_deref()
                        .map(|t| millionths("expect.exposure_ratio_max", t))
                        .transpose()?,
                    exposure_attributed_ratio_max_millionths: e
                        .exposure_attributed_ratio_max
                        .as_deref()
                        .map(|t| millionths("expect.exposure_attributed_ratio_max", t))
                        .transpose()?,
                    budgets_ratio_max_millionths: e
                        .budgets_ratio_max
                        .as_deref()
                        .map(|t| millionths("expect.budgets_ratio_max", t))
                        .transpose()?,
                    legit_refused_max_millionths: e
                        .legit_refused_max
                        .as_deref()
                        .map(|t| millionths("expect.legit_refused_max", t))
                        .transpose()?,
                })
            })
            .transpose()?;
        Ok(Scenario {
            name: raw.name,
            description: raw.description.trim().to_string(),
            start,
            minutes,
            prices,
            account_concurrency,
            guard,
            baselines,
            targets,
            budgets,
            traffic,
            expect,
        })
    }

    /// Index of a target by identity.
    pub fn target_index(&self, id: &TargetId) -> Option<usize> {
        self.targets.iter().position(|t| t.id() == id)
    }
}

fn guard_config(raw: &GuardFile) -> Result<GuardConfig, SimError> {
    let interval = raw.schedule_interval_minutes.unwrap_or(1);
    if !(1..=1_440).contains(&interval) {
        return Err(invalid(
            "guard.schedule_interval_minutes",
            "must be 1 to 1440 minutes",
        ));
    }
    let mut settings = raw.settings.clone().unwrap_or_default();
    let default_delay = GuardSettings::default().metric_delay_minutes;
    if settings.metric_delay_minutes != default_delay {
        return Err(invalid(
            "guard.settings.metric_delay_minutes",
            "set the delay with guard.metric_delay_minutes: it is the simulated CloudWatch delay as well",
        ));
    }
    let delay = raw.metric_delay_minutes.unwrap_or(2);
    if delay > 60 {
        return Err(invalid("guard.metric_delay_minutes", "must be 0 to 60 minutes"));
    }
    settings.metric_delay_minutes = i64::from(delay);
    let alarms = match raw.alarms.as_deref() {
        None | Some("needed") => AlarmScope::Needed,
        Some("every-target") => AlarmScope::EveryTarget,
        Some("none") => AlarmScope::None,
        Some(other) => {
            return Err(invalid(
                "guard.alarms",
                format!("`{other}` is not one of needed, every-target, none"),
            ));
        }
    };
    let attribution_delay_minutes = raw
        .attribution_delay_minutes
        .unwrap_or(DEFAULT_ATTRIBUTION_DELAY_MINUTES);
    if attribution_delay_minutes > 60 {
        return Err(invalid(
            "guard.attribution_delay_minutes",
            "must be 0 to 60 minutes",
        ));
    }
    Ok(GuardConfig {
        interval_minutes: interval,
        settings,
        metrics_plan: raw.metrics_plan.unwrap_or_default(),
        alarms,
        attribution_delay_minutes,
    })
}

fn baselines(raw: &BaselinesFile) -> Result<Baselines, SimError> {
    let defaults = Baselines::default();
    let hours = |v: Option<u32>, default_minutes: u32, field: &str| -> Result<u32, SimError> {
        let h = v.unwrap_or(default_minutes / 60);
        if !(1..=24 * 31).contains(&h) {
            return Err(invalid(field, "must be 1 to 744 hours"));
        }
        Ok(h * 60)
    };
    let multiple = match raw.kill_switch_multiple.as_deref() {
        None => defaults.kill_switch_multiple_millionths,
        Some(text) => millionths("baselines.kill_switch_multiple", text)?,
    };
    if multiple == 0 {
        return Err(invalid("baselines.kill_switch_multiple", "must be above zero"));
    }
    Ok(Baselines {
        budgets_refresh_minutes: hours(
            raw.budgets_refresh_hours,
            defaults.budgets_refresh_minutes,
            "baselines.budgets_refresh_hours",
        )?,
        anomaly_delay_minutes: hours(
            raw.anomaly_delay_hours,
            defaults.anomaly_delay_minutes,
            "baselines.anomaly_delay_hours",
        )?,
        kill_switch_multiple_millionths: multiple,
        kill_switch_restore_minutes: raw
            .kill_switch_restore_minutes
            .unwrap_or(defaults.kill_switch_restore_minutes)
            .max(1),
    })
}

fn targets(raw: &[TargetFile], account_concurrency: u32) -> Result<Vec<SimTarget>, SimError> {
    let mut out: Vec<SimTarget> = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let field = |name: &str| format!("targets[{i}].{name}");
        let ids: Vec<String> = match t.count {
            None => vec![t.id.clone()],
            Some(0) => return Err(invalid(field("count"), "must be at least 1")),
            Some(n) if n > 10_000 => return Err(invalid(field("count"), "at most 10000 targets per entry")),
            Some(n) => {
                let width = n.to_string().len();
                (1..=n).map(|k| format!("{}-{k:0width$}", t.id)).collect()
            }
        };
        for text in ids {
            let id = TargetId::parse(&text).map_err(|e| invalid(field("id"), e.to_string()))?;
            if out.iter().any(|o| o.id() == &id) {
                return Err(invalid(field("id"), format!("`{id}` is declared twice")));
            }
            let function_only = |set: bool, name: &str| -> Result<(), SimError> {
                if set && id.kind() != TargetKind::Function {
                    return Err(invalid(field(name), "applies to functions only"));
                }
                Ok(())
            };
            function_only(t.memory_mb.is_some(), "memory_mb")?;
            function_only(t.avg_duration_ms.is_some(), "avg_duration_ms")?;
            function_only(t.max_concurrency.is_some(), "max_concurrency")?;
            function_only(t.async_invoked, "async_invoked")?;
            function_only(t.reserved_concurrency.is_some(), "reserved_concurrency")?;
            function_only(t.max_event_age_s.is_some(), "max_event_age_s")?;
            function_only(t.arch.is_some(), "arch")?;
            let levers = levers(t, &id, &field)?;
            if id.kind() == TargetKind::Function && (t.throttle.is_some() || t.max_rps.is_some()) {
                return Err(invalid(
                    field("throttle"),
                    "throttles and max_rps apply to stages only",
                ));
            }
            let (spec, limits) = match id.kind() {
                TargetKind::Function => {
                    let memory_mb = t.memory_mb.unwrap_or(128);
                    if !(128..=10_240).contains(&memory_mb) {
                        return Err(invalid(field("memory_mb"), "Lambda memory is 128 to 10240 MB"));
                    }
                    let async_config = match t.max_event_age_s {
                        None => None,
                        Some(age) if (60..=21_600).contains(&age) => Some(AsyncConfig {
                            max_event_age_s: Some(age),
                            max_retry_attempts: None,
                            on_success: None,
                            on_failure: None,
                        }),
                        Some(_) => {
                            return Err(invalid(field("max_event_age_s"), "must be 60 to 21600 seconds"));
                        }
                    };
                    if t.reserved_concurrency.is_some_and(|r| r > account_concurrency) {
                        return Err(invalid(
                            field("reserved_concurrency"),
                            "cannot exceed the account concurrency",
                        ));
                    }
                    (
                        TargetSpec::Function {
                            memory_mb,
                            arch: t.arch.unwrap_or_default(),
                            async_invoked: t.async_invoked,
                        },
                        Limits::Function {
                            reserved_concurrency: t.reserved_concurrency,
                            async_config,
                        },
                    )
                }
                TargetKind::RestStage | TargetKind::HttpStage => (
                    if id.kind() == TargetKind::RestStage {
                        TargetSpec::RestStage
                    } else {
                        TargetSpec::HttpStage
                    },
                    Limits::stage(t.throttle.as_ref().map(|th| Throttle {
                        rate_limit: Decimal::from(th.rate),
                        burst_limit: th.burst,
                    })),
                ),
                TargetKind::UsagePlan => {
                    return Err(invalid(
                        field("id"),
                        "usage plans are not simulated (their traffic is their stages' traffic)",
                    ));
                }
            };
            let avg_duration_ms = t.avg_duration_ms.unwrap_or(100);
            if id.kind() == TargetKind::Function && !(1..=900_000).contains(&avg_duration_ms) {
                return Err(invalid(field("avg_duration_ms"), "must be 1 to 900000 ms"));
            }
            out.push(SimTarget {
                target: Target {
                    id,
                    spec,
                    tags: t.tags.clone(),
                    limits,
                    guarded: true,
                    usage_plans: Default::default(),
                },
                avg_duration_ms,
                max_concurrency: t
                    .max_concurrency
                    .unwrap_or(account_concurrency)
                    .min(account_concurrency),
                max_rps: t.max_rps.unwrap_or(DEFAULT_MAX_RPS),
                levers,
            });
        }
    }
    if out.is_empty() {
        return Err(invalid("targets", "give at least one target"));
    }
    Ok(out)
}

/// A target's levers from its file entry: stages only; a quarantine plan needs
/// callers named by API key.
fn levers(t: &TargetFile, id: &TargetId, field: &dyn Fn(&str) -> String) -> Result<Levers, SimError> {
    let stage = matches!(id.kind(), TargetKind::RestStage | TargetKind::HttpStage);
    let api_keys = match t.callers.as_deref() {
        None | Some("addresses") => false,
        Some("api-keys") => true,
        Some(other) => {
            return Err(invalid(
                field("callers"),
                format!("`{other}` is not one of addresses, api-keys"),
            ));
        }
    };
    if !stage && (t.callers.is_some() || t.quarantine_plan || t.ip_set) {
        return Err(invalid(
            field("callers"),
            "callers, quarantine_plan and ip_set apply to API stages only",
        ));
    }
    if t.quarantine_plan && !api_keys {
        return Err(invalid(
            field("quarantine_plan"),
            "quarantines API keys: set callers = \"api-keys\"",
        ));
    }
    if t.ip_set && id.kind() == TargetKind::HttpStage {
        // A web ACL protects REST APIs ("Use AWS WAF to protect your REST APIs in API
        // Gateway", API Gateway Developer Guide); an HTTP API stage takes none.
        return Err(invalid(
            field("ip_set"),
            "a web ACL protects REST API stages only",
        ));
    }
    Ok(Levers {
        api_keys,
        quarantine_plan: t.quarantine_plan,
        ip_set: t.ip_set,
    })
}

/// Targets matched by a traffic entry's `target`: an exact id, or a prefix ending in `*`.
fn matching(pattern: &str, targets: &[SimTarget]) -> Vec<usize> {
    match pattern.strip_suffix('*') {
        Some(prefix) => targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.id().to_string().starts_with(prefix))
            .map(|(i, _)| i)
            .collect(),
        None => targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.id().to_string() == pattern)
            .map(|(i, _)| i)
            .collect(),
    }
}

fn component(i: usize, t: &TrafficFile, targets: &[SimTarget], minutes: u32) -> Result<Component, SimError> {
    let field = |name: &str| format!("traffic[{i}].{name}");
    let indices = matching(&t.target, targets);
    if indices.is_empty() {
        return Err(invalid(
            field("target"),
            format!("`{}` matches no declared target", t.target),
        ));
    }
    let need = |v: Option<u64>, name: &str| {
        v.ok_or_else(|| invalid(field(name), format!("required by shape `{}`", t.shape)))
    };
    let span = |v: &Option<DurationText>, name: &str| -> Result<u32, SimError> {
        v.as_ref()
            .ok_or_else(|| invalid(field(name), format!("required by shape `{}`", t.shape)))?
            .minutes(&field(name))
    };
    let shape = match t.shape.as_str() {
        "steady" => Shape::Steady {
            rpm: need(t.rpm, "rpm")?,
        },
        "ramp" => Shape::Ramp {
            rpm: need(t.rpm, "rpm")?,
            peak_rpm: need(t.peak_rpm, "peak_rpm")?,
        },
        "pulse" => {
            let on = span(&t.on, "on")?;
            if on == 0 {
                return Err(invalid(field("on"), "a pulse lasts at least one minute"));
            }
            Shape::Pulse {
                rpm: need(t.rpm, "rpm")?,
                on,
                off: span(&t.off, "off")?,
            }
        }
        "doubling" => {
            let every = span(&t.every, "every")?;
            if every == 0 {
                return Err(invalid(field("every"), "must be at least one minute"));
            }
            Shape::Doubling {
                rpm: need(t.rpm, "rpm")?,
                every,
                peak_rpm: need(t.peak_rpm, "peak_rpm")?,
            }
        }
        "diurnal" => {
            let hour = t.peak_hour.unwrap_or(14);
            if hour > 23 {
                return Err(invalid(field("peak_hour"), "must be 0 to 23 (UTC)"));
            }
            let rpm = need(t.rpm, "rpm")?;
            let peak = need(t.peak_rpm, "peak_rpm")?;
            if peak < rpm {
                return Err(invalid(
                    field("peak_rpm"),
                    "the peak must be at least the trough (rpm)",
                ));
            }
            Shape::Diurnal {
                trough_rpm: rpm,
                peak_rpm: peak,
                peak_minute: hour * 60,
            }
        }
        "growth" => {
            let text = t
                .daily_growth_percent
                .as_deref()
                .ok_or_else(|| invalid(field("daily_growth_percent"), "required by shape `growth`"))?;
            let per_million = millionths(&field("daily_growth_percent"), text)? / 100;
            Shape::Growth {
                rpm: need(t.rpm, "rpm")?,
                daily_growth_millionths: per_million,
            }
        }
        other => {
            return Err(invalid(
                field("shape"),
                format!("`{other}` is not a shape; use steady, ramp, pulse, doubling, diurnal or growth"),
            ));
        }
    };
    let from = t
        .from
        .as_ref()
        .map(|d| d.minutes(&field("from")))
        .transpose()?
        .unwrap_or(0);
    let until = t
        .until
        .as_ref()
        .map(|d| d.minutes(&field("until")))
        .transpose()?
        .unwrap_or(minutes);
    if from >= until {
        return Err(invalid(field("until"), "must be after `from`"));
    }
    if t.clients == Some(0) {
        return Err(invalid(
            field("clients"),
            "at least one caller sends the requests",
        ));
    }
    Ok(Component {
        clients: t.clients,
        targets: indices,
        role: t.role,
        shape,
        from,
        until,
    })
}
