//! Amazon CloudWatch metrics: the query plan for all targets, `GetMetricData` in
//! calls of at most 500 queries, `NextToken` followed, partial data reported, and
//! the count of metrics requested (CloudWatch bills $0.01 per 1,000).
//!
//! What a pass asks for is [`dowguard_domain::metrics_plan`]: the account's
//! Lambda usage across all functions (two metrics, the tripwire), one-minute
//! detail for the urgent targets (the hot set, or every function when the
//! tripwire trips) and for API stages at their cadence, and hourly sums for each
//! target's spend-to-date at every sweep. GetMetricData bills per metric
//! requested, not per datapoint, so one query returns a whole hour of one-minute
//! points for the price of one. Lambda `Throttles` is only asked for urgent
//! functions. The core adds the fresh one-minute points to the
//! cached spend-to-date.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatch::Client;
use aws_sdk_cloudwatch::primitives::DateTime as AwsDateTime;
use aws_sdk_cloudwatch::types::{Dimension, Metric, MetricDataQuery, MetricStat, ScanBy, StatusCode};
use chrono::{DateTime, Duration, DurationRound, Utc};
use dowguard_domain::{
    MetricsPlan, MinuteUsage, Period, PeriodUsage, Target, TargetId, TargetKind, TargetMetrics, Usage,
    epoch_minute,
};
use dowguard_guard::PortResult;
use dowguard_guard::ports::{FetchedMetrics, MetricsRequest};

use crate::apigateway::RestCatalog;
use crate::error::port_error;

/// Most queries GetMetricData takes in one call.
pub const MAX_QUERIES_PER_CALL: usize = 500;

/// Which usage field a metric feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Served requests.
    Requests,
    /// Throttled requests.
    Throttled,
    /// Duration sum in milliseconds.
    DurationMs,
}

/// One CloudWatch metric (namespace, name, dimensions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MetricKey {
    /// Namespace, e.g. `AWS/Lambda`.
    pub namespace: &'static str,
    /// Metric name, e.g. `Invocations`.
    pub name: &'static str,
    /// Dimensions as (name, value).
    pub dimensions: Vec<(&'static str, String)>,
}

/// The metrics that measure one target, each with the field it feeds.
pub fn metrics_of(target: &Target, catalog: &RestCatalog, full: bool) -> Vec<(MetricKey, Field)> {
    let lambda = |name: &'static str, function: &str| MetricKey {
        namespace: "AWS/Lambda",
        name,
        dimensions: vec![("FunctionName", function.to_string())],
    };
    let rest = |api: &dowguard_domain::ApiId, stage: &str| MetricKey {
        namespace: "AWS/ApiGateway",
        name: "Count",
        // REST API metrics are named by the API's name, not its id.
        dimensions: vec![
            (
                "ApiName",
                catalog
                    .api_names
                    .get(api)
                    .cloned()
                    .unwrap_or_else(|| api.to_string()),
            ),
            ("Stage", stage.to_string()),
        ],
    };
    match (&target.id, &target.spec) {
        (TargetId::Function(f), _) => {
            let mut out = vec![
                (lambda("Invocations", f.as_str()), Field::Requests),
                (lambda("Duration", f.as_str()), Field::DurationMs),
            ];
            if full {
                out.push((lambda("Throttles", f.as_str()), Field::Throttled));
            }
            out
        }
        (TargetId::RestStage(api, stage), _) => vec![(rest(api, stage.as_str()), Field::Requests)],
        (TargetId::HttpStage(api, stage), _) => vec![(
            MetricKey {
                namespace: "AWS/ApiGateway",
                name: "Count",
                dimensions: vec![("ApiId", api.to_string()), ("Stage", stage.to_string())],
            },
            Field::Requests,
        )],
        // A usage plan has no request metric of its own: its money is its stages',
        // which a plan's budget covers, so measuring it again would count it twice.
        (TargetId::UsagePlan(_), _) => vec![],
    }
}

/// Why a target's metrics cannot be read or attributed to it, if they cannot: a
/// REST API the catalogue does not name (its `ApiName` dimension is unknown), or
/// one whose name it shares with another REST API (CloudWatch then holds one
/// series for both). Such a target is not measured; the pass reports the gap and
/// holds the budgets that cover it.
pub fn unmeasurable(target: &Target, catalog: &RestCatalog) -> Option<String> {
    let TargetId::RestStage(api, _) = &target.id else {
        return None;
    };
    let Some(name) = catalog.api_names.get(api) else {
        return Some(format!(
            "REST API {api} was not listed, so the name CloudWatch keys its metrics by is unknown: not measured"
        ));
    };
    let others = catalog.sharing_name(api);
    if others.is_empty() {
        return None;
    }
    let others: Vec<String> = others.iter().map(ToString::to_string).collect();
    Some(format!(
        "REST API {api} shares its CloudWatch ApiName \"{name}\" with {}: their requests are one series and cannot be told apart, so it is not measured; give each REST API its own name",
        others.join(", ")
    ))
}

/// What the cache keeps of a target: its latest figures, shared with the passes
/// that read them ([`FetchedMetrics::by_target`]) rather than copied.
#[derive(Debug, Clone, Default)]
struct Cached {
    /// One-minute points (`minutes`) and spend-to-date (`to_date`).
    metrics: Arc<TargetMetrics>,
    detail_at: Option<i64>,
    totals_at: Option<i64>,
}

/// CloudWatch metrics through the SDK, with the plan's cache of recent figures.
#[derive(Debug)]
pub struct CloudWatchMetrics {
    client: Client,
    plan: MetricsPlan,
    cache: Mutex<HashMap<TargetId, Cached>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn aws_time(t: DateTime<Utc>) -> AwsDateTime {
    AwsDateTime::from_secs(t.timestamp())
}

/// One planned query: the metric, its period, and who reads it (a target, or `()`
/// for the account's aggregate).
struct Planned<K> {
    key: MetricKey,
    period_s: i32,
    readers: Vec<(K, Field)>,
}

/// The account's Lambda usage across all functions: the metrics without dimensions.
fn aggregate_plan() -> Vec<Planned<()>> {
    [("Invocations", Field::Requests), ("Duration", Field::DurationMs)]
        .into_iter()
        .map(|(name, field)| Planned {
            key: MetricKey {
                namespace: "AWS/Lambda",
                name,
                dimensions: Vec::new(),
            },
            period_s: 60,
            readers: vec![((), field)],
        })
        .collect()
}

impl CloudWatchMetrics {
    /// A metrics source measuring at the plan's cadence.
    pub fn new(client: Client, plan: MetricsPlan) -> Self {
        CloudWatchMetrics {
            client,
            plan,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// Fetches a pass's metrics. `catalog` names REST APIs and usage plans' stages.
    pub async fn fetch_with(
        &self,
        request: &MetricsRequest<'_>,
        catalog: &RestCatalog,
    ) -> PortResult<FetchedMetrics> {
        let now = request.now;
        let minute = epoch_minute(now);
        let mut gaps: BTreeMap<TargetId, String> = BTreeMap::new();
        let measured: Vec<&Target> = request
            .targets
            .iter()
            .filter(|t| request.detailed.contains(&t.id))
            .filter(|t| match unmeasurable(t, catalog) {
                Some(why) => {
                    gaps.insert(t.id.clone(), why);
                    false
                }
                None => true,
            })
            .collect();
        let (detail_due, totals_due): (Vec<&Target>, Vec<&Target>) = {
            let cache = lock(&self.cache);
            let detail = measured
                .iter()
                .copied()
                .filter(|t| {
                    let last = cache.get(&t.id).and_then(|c| c.detail_at);
                    request.urgent.contains(&t.id)
                        || request.every.get(&t.id).is_some_and(|every| {
                            last.is_none_or(|l| minute - l >= i64::try_from(*every).unwrap_or(i64::MAX))
                        })
                })
                .collect();
            let totals = measured
                .iter()
                .copied()
                .filter(|t| {
                    self.plan
                        .sweep_due(minute, cache.get(&t.id).and_then(|c| c.totals_at))
                })
                .collect();
            (detail, totals)
        };
        let mut fetched = FetchedMetrics {
            gaps,
            ..FetchedMetrics::default()
        };

        // One-minute detail for the last `window_minutes`, and further back if a
        // target's cached spend-to-date ends earlier: minutes between the two would
        // otherwise count as no spend at all. (Datapoints are free; only metrics
        // requested are billed, so the longer window costs nothing.)
        let window_start = {
            let cache = lock(&self.cache);
            detail_due
                .iter()
                .filter(|t| !totals_due.iter().any(|d| d.id == t.id))
                .filter_map(|t| cache.get(&t.id))
                .filter_map(|c| c.metrics.to_date.iter().map(|p| p.through_minute).min())
                .filter_map(|through| DateTime::<Utc>::from_timestamp((through + 1) * 60, 0))
                .fold(now - Duration::minutes(request.window_minutes), DateTime::min)
        };
        // The points about to be fetched again are let go first: at ten thousand
        // targets an old and a new copy would not fit the evaluator's memory.
        {
            let mut cache = lock(&self.cache);
            for t in &detail_due {
                if let Some(c) = cache.get_mut(&t.id) {
                    c.metrics = Arc::new(TargetMetrics {
                        minutes: Vec::new(),
                        to_date: c.metrics.to_date.clone(),
                    });
                    // Should this fetch fail, the target is due again at once.
                    c.detail_at = None;
                }
            }
        }
        // Each target's points in one allocation of the window's length: grown
        // point by point, ten thousand targets' vectors leave megabytes of holes.
        let mut detail = Minutes::with_points(
            usize::try_from((now - window_start).num_minutes().clamp(0, MAX_WINDOW_POINTS)).unwrap_or(0),
        );
        let (requested, partial) = self
            .run_targets(
                &detail_due,
                catalog,
                request.urgent,
                60,
                (window_start, now),
                |t, minute, field, amount| {
                    detail.add(t, minute, field, amount);
                },
            )
            .await?;
        let mut detail = detail.into_points();
        fetched.metrics_requested += requested;
        fetched.note_partial(&partial);
        fetched.fresh = detail_due.iter().map(|t| t.id.clone()).collect();

        // The tripwire: all functions together, back to the oldest spend-to-date of
        // a function this pass does not measure (what they served since is bounded
        // by it), one-minute points, two metrics whatever the account's size.
        if request.aggregate {
            let since = {
                let cache = lock(&self.cache);
                measured
                    .iter()
                    .filter(|t| t.id.kind() == TargetKind::Function && !fetched.fresh.contains(&t.id))
                    .filter(|t| !totals_due.iter().any(|d| d.id == t.id))
                    .filter_map(|t| cache.get(&t.id))
                    .filter_map(|c| c.metrics.to_date.iter().map(|p| p.through_minute).min())
                    .filter_map(|through| DateTime::<Utc>::from_timestamp((through + 1) * 60, 0))
                    .fold(now - Duration::minutes(request.window_minutes), DateTime::min)
            };
            let mut points = Minutes::default();
            let (requested, partial) = self
                .run(&aggregate_plan(), since, now, |k, minute, field, amount| {
                    points.add(k, minute, field, amount);
                })
                .await?;
            fetched.metrics_requested += requested;
            fetched.aggregate = if partial.is_empty() {
                Some(points.into_points().remove(&()).unwrap_or_default())
            } else {
                fetched.partial = true;
                None
            };
        }

        // Hourly sums from the month's start to the current hour, for spend-to-date.
        let hour = now.duration_trunc(Duration::hours(1)).unwrap_or(now);
        let (month_start, _) = Period::Month.bounds(now);
        let (day_start, _) = Period::Day.bounds(now);
        // Summed as the points arrive: a month of hourly points for every target
        // would otherwise be held at once (10,000 targets × 744 hours).
        let (day_from, month_from) = (epoch_minute(day_start), epoch_minute(month_start));
        let mut sums: HashMap<TargetId, (Usage, Usage)> = HashMap::new();
        let none = HashSet::new();
        let (requested, partial) = if month_start < hour {
            self.run_targets(
                &totals_due,
                catalog,
                &none,
                3_600,
                (month_start, hour),
                |t, minute, field, amount| {
                    if !sums.contains_key(t) {
                        sums.insert(t.clone(), Default::default());
                    }
                    if let Some((day, month)) = sums.get_mut(t) {
                        if minute >= month_from {
                            add(month, field, amount);
                        }
                        if minute >= day_from {
                            add(day, field, amount);
                        }
                    }
                },
            )
            .await?
        } else {
            (0, Vec::new())
        };
        fetched.metrics_requested += requested;
        fetched.note_partial(&partial);

        let mut cache = lock(&self.cache);
        for t in &detail_due {
            let entry = cache.entry(t.id.clone()).or_default();
            entry.metrics = Arc::new(TargetMetrics {
                minutes: detail.remove(&t.id).unwrap_or_default(),
                to_date: entry.metrics.to_date.clone(),
            });
            entry.detail_at = Some(minute);
        }
        for t in &totals_due {
            let entry = cache.entry(t.id.clone()).or_default();
            let through = epoch_minute(hour) - 1;
            let (day, month) = sums.remove(&t.id).unwrap_or_default();
            let to_date = vec![
                PeriodUsage {
                    period: Period::Day,
                    start: day_start,
                    through_minute: through,
                    usage: day,
                },
                PeriodUsage {
                    period: Period::Month,
                    start: month_start,
                    through_minute: through,
                    usage: month,
                },
            ];
            match Arc::get_mut(&mut entry.metrics) {
                Some(metrics) => metrics.to_date = to_date,
                None => {
                    entry.metrics = Arc::new(TargetMetrics {
                        minutes: entry.metrics.minutes.clone(),
                        to_date,
                    });
                }
            }
            entry.totals_at = Some(minute);
        }
        for t in &measured {
            if let Some(c) = cache.get(&t.id) {
                fetched.by_target.insert(t.id.clone(), Arc::clone(&c.metrics));
            }
        }
        Ok(fetched)
    }

    /// A backtest's history of `targets`: Lambda `Invocations` and `Duration` and
    /// API Gateway `Count`, summed at `period_s` over `[start, end)`, each point
    /// handed to `sink` as (target, epoch minute, field, amount) as it arrives.
    /// Returns the metrics requested (once per call; a call of many points is
    /// followed through its `NextToken` pages) and the series CloudWatch marked
    /// partial.
    pub async fn history(
        &self,
        targets: &[&Target],
        catalog: &RestCatalog,
        period_s: i32,
        range: (DateTime<Utc>, DateTime<Utc>),
        sink: impl FnMut(&TargetId, i64, Field, u64),
    ) -> PortResult<(u64, Vec<(TargetId, String)>)> {
        self.run_targets(targets, catalog, &HashSet::new(), period_s, range, sink)
            .await
    }

    /// Plans and runs the metrics of `targets` (in full for those in `full`) at
    /// `period_s` over `[start, end)`, handing each point to `sink` as
    /// [`CloudWatchMetrics::run`] does. Functions share no metric, so they are
    /// planned a call's worth at a time; the other targets (whose stages may share
    /// one) together: the plan of ten thousand functions is never held at once.
    async fn run_targets(
        &self,
        targets: &[&Target],
        catalog: &RestCatalog,
        full: &HashSet<TargetId>,
        period_s: i32,
        (start, end): (DateTime<Utc>, DateTime<Utc>),
        mut sink: impl FnMut(&TargetId, i64, Field, u64),
    ) -> PortResult<(u64, Vec<(TargetId, String)>)> {
        let (functions, others): (Vec<&Target>, Vec<&Target>) =
            targets.iter().partition(|t| t.id.kind() == TargetKind::Function);
        // Whole calls of functions: as many as fit MAX_QUERIES_PER_CALL queries.
        let mut chunks: Vec<&[&Target]> = vec![others.as_slice()];
        let (mut from, mut queries) = (0, 0);
        for (i, t) in functions.iter().enumerate() {
            let n = usize::try_from(MetricsPlan::metrics_per_measurement(
                TargetKind::Function,
                full.contains(&t.id),
            ))
            .unwrap_or(MAX_QUERIES_PER_CALL);
            if queries + n > MAX_QUERIES_PER_CALL {
                chunks.push(&functions[from..i]);
                (from, queries) = (i, 0);
            }
            queries += n;
        }
        chunks.push(&functions[from..]);
        let mut requested = 0;
        let mut partial = Vec::new();
        for chunk in chunks.into_iter().filter(|c| !c.is_empty()) {
            let planned = plan(chunk, catalog, full, period_s);
            let (n, p) = self.run(&planned, start, end, &mut sink).await?;
            requested += n;
            partial.extend(p);
        }
        Ok((requested, partial))
    }

    /// Runs a plan over `[start, end)`, handing each point to `sink` as
    /// `(reader, epoch minute, field, amount)` as it arrives; returns the number of
    /// metrics requested and the targets a partial result concerns, with the metric.
    async fn run<K: Clone + Eq + std::hash::Hash>(
        &self,
        planned: &[Planned<K>],
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        mut sink: impl FnMut(&K, i64, Field, u64),
    ) -> PortResult<(u64, Vec<(K, String)>)> {
        let mut partial: Vec<(K, String)> = Vec::new();
        let mut requested = 0u64;
        for (chunk_index, chunk) in planned.chunks(MAX_QUERIES_PER_CALL).enumerate() {
            let queries: Vec<MetricDataQuery> = chunk
                .iter()
                .enumerate()
                .map(|(i, p)| query(&format!("q{chunk_index}x{i}"), p))
                .collect();
            requested += queries.len() as u64;
            let mut token: Option<String> = None;
            loop {
                let out = self
                    .client
                    .get_metric_data()
                    .start_time(aws_time(start))
                    .end_time(aws_time(end))
                    .scan_by(ScanBy::TimestampAscending)
                    .set_metric_data_queries(Some(queries.clone()))
                    .set_next_token(token.clone())
                    .send()
                    .await
                    .map_err(|e| port_error("GetMetricData", format!("{} queries", queries.len()), e))?;
                let last_page = out.next_token().is_none();
                for result in out.metric_data_results() {
                    let Some(index) = result
                        .id()
                        .and_then(|id| id.rsplit('x').next())
                        .and_then(|i| i.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    let Some(p) = chunk.get(index) else { continue };
                    // PartialData with a NextToken only means "more on the next page".
                    if last_page && result.status_code() == Some(&StatusCode::PartialData) {
                        for (target, _) in &p.readers {
                            partial.push((target.clone(), p.key.name.to_string()));
                        }
                    }
                    for (ts, value) in result.timestamps().iter().zip(result.values()) {
                        let minute = ts.secs().div_euclid(60);
                        let amount = count_of(*value);
                        for (target, field) in &p.readers {
                            sink(target, minute, *field, amount);
                        }
                    }
                }
                token = out.next_token().map(str::to_string);
                if token.is_none() {
                    break;
                }
            }
        }
        Ok((requested, partial))
    }
}

/// Adds `amount` to `usage`'s `field`.
fn add(usage: &mut Usage, field: Field, amount: u64) {
    match field {
        Field::Requests => usage.requests = usage.requests.saturating_add(amount),
        Field::Throttled => usage.throttled = usage.throttled.saturating_add(amount),
        Field::DurationMs => usage.duration_ms = usage.duration_ms.saturating_add(amount),
    }
}

/// The most one-minute points a reader's vector is sized for up front (a day).
const MAX_WINDOW_POINTS: i64 = 1_440;

/// One-minute points per reader, gathered as they arrive: each reader's points in
/// minute order (a series comes oldest first, so a point is nearly always appended
/// or found at the end), without a map per reader.
struct Minutes<K> {
    by_reader: HashMap<K, Vec<MinuteUsage>>,
    /// The points a reader is expected to get: its vector's first capacity.
    points: usize,
}

impl<K> Default for Minutes<K> {
    fn default() -> Self {
        Minutes::with_points(0)
    }
}

impl<K> Minutes<K> {
    fn with_points(points: usize) -> Self {
        Minutes {
            by_reader: HashMap::new(),
            points,
        }
    }
}

impl<K: Clone + Eq + std::hash::Hash> Minutes<K> {
    fn add(&mut self, reader: &K, minute: i64, field: Field, amount: u64) {
        if !self.by_reader.contains_key(reader) {
            self.by_reader
                .insert(reader.clone(), Vec::with_capacity(self.points));
        }
        let Some(points) = self.by_reader.get_mut(reader) else {
            return;
        };
        let at = match points.last() {
            Some(last) if last.minute < minute => Err(points.len()),
            _ => points.binary_search_by_key(&minute, |p| p.minute),
        };
        let i = at.unwrap_or_else(|i| {
            points.insert(
                i,
                MinuteUsage {
                    minute,
                    usage: Usage::default(),
                },
            );
            i
        });
        if let Some(point) = points.get_mut(i) {
            add(&mut point.usage, field, amount);
        }
    }

    /// Each reader's points, oldest first.
    fn into_points(self) -> HashMap<K, Vec<MinuteUsage>> {
        self.by_reader
            .into_iter()
            .map(|(reader, mut points)| {
                // A quiet target has few points: give back what it was sized for.
                if points.len() < points.capacity() / 2 {
                    points.shrink_to_fit();
                }
                (reader, points)
            })
            .collect()
    }
}
/// A CloudWatch sum as a whole count, rounded up (a partial millisecond is billed).
fn count_of(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        // Saturating float-to-int conversion; sums are whole counts or milliseconds.
        value.ceil() as u64
    } else {
        0
    }
}

fn plan(
    targets: &[&Target],
    catalog: &RestCatalog,
    full: &HashSet<TargetId>,
    period_s: i32,
) -> Vec<Planned<TargetId>> {
    let mut by_key: HashMap<MetricKey, usize> = HashMap::new();
    let mut out: Vec<Planned<TargetId>> = Vec::new();
    for t in targets {
        for (key, field) in metrics_of(t, catalog, full.contains(&t.id)) {
            let i = *by_key.entry(key.clone()).or_insert_with(|| {
                out.push(Planned {
                    key,
                    period_s,
                    readers: Vec::new(),
                });
                out.len() - 1
            });
            out[i].readers.push((t.id.clone(), field));
        }
    }
    out
}

fn query<K>(id: &str, p: &Planned<K>) -> MetricDataQuery {
    let mut metric = Metric::builder()
        .namespace(p.key.namespace)
        .metric_name(p.key.name);
    for (name, value) in &p.key.dimensions {
        metric = metric.dimensions(Dimension::builder().name(*name).value(value).build());
    }
    MetricDataQuery::builder()
        .id(id)
        .metric_stat(
            MetricStat::builder()
                .metric(metric.build())
                .period(p.period_s)
                .stat("Sum")
                .build(),
        )
        .return_data(true)
        .build()
}

#[cfg(test)]
mod tests {
    use dowguard_domain::{ApiId, Limits, TargetKind, TargetSpec};

    use super::*;
    use crate::apigateway::metric_api_name;

    fn rest_stage(api: &str) -> Target {
        Target::new(
            TargetId::parse(&format!("rest-stage:{api}/prod")).unwrap_or_else(|e| panic!("{e}")),
            TargetSpec::RestStage,
            Default::default(),
            Limits::unset(TargetKind::RestStage),
        )
    }

    fn api(id: &str) -> ApiId {
        ApiId::parse(id).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn rest_apis_that_share_a_metric_name_or_have_none_known_are_not_measured() {
        let mut catalog = RestCatalog::default();
        catalog
            .api_names
            .insert(api("aaa"), metric_api_name("shop", &api("aaa")));
        catalog
            .api_names
            .insert(api("bbb"), metric_api_name("shop", &api("bbb")));
        // API Gateway drops non-ASCII characters from ApiName: "shop✓" is "shop" too.
        catalog
            .api_names
            .insert(api("ccc"), metric_api_name("shop\u{2713}", &api("ccc")));
        catalog
            .api_names
            .insert(api("ddd"), metric_api_name("orders", &api("ddd")));
        // A name with no ASCII at all is replaced by the API id.
        catalog.api_names.insert(
            api("eee"),
            metric_api_name("\u{30b7}\u{30e7}\u{30c3}\u{30d7}", &api("eee")),
        );
        let shared = unmeasurable(&rest_stage("aaa"), &catalog).expect("ambiguous");
        assert!(shared.contains("bbb") && shared.contains("ccc"), "{shared}");
        assert_eq!(unmeasurable(&rest_stage("ddd"), &catalog), None);
        assert_eq!(catalog.api_names[&api("eee")], "eee");
        assert_eq!(unmeasurable(&rest_stage("eee"), &catalog), None);
        let unknown = unmeasurable(&rest_stage("fff"), &catalog).expect("unknown");
        assert!(unknown.contains("not listed"), "{unknown}");
    }

    #[test]
    fn counts_round_up_and_ignore_nonsense() {
        assert_eq!(count_of(3.0), 3);
        assert_eq!(count_of(2.2), 3);
        assert_eq!(count_of(-1.0), 0);
        assert_eq!(count_of(f64::NAN), 0);
    }

    #[test]
    fn the_plan_asks_for_as_many_metrics_as_the_cost_model_counts() {
        let function = Target {
            id: TargetId::parse("function:f").unwrap_or_else(|e| panic!("{e}")),
            spec: TargetSpec::Function {
                memory_mb: 128,
                arch: dowguard_domain::Arch::X86_64,
                async_invoked: false,
            },
            tags: Default::default(),
            limits: dowguard_domain::Limits::unset(dowguard_domain::TargetKind::Function),
            guarded: true,
            usage_plans: Default::default(),
        };
        let stage = Target {
            id: TargetId::parse("http-stage:abc/live").unwrap_or_else(|e| panic!("{e}")),
            spec: TargetSpec::HttpStage,
            tags: Default::default(),
            limits: dowguard_domain::Limits::unset(dowguard_domain::TargetKind::HttpStage),
            guarded: true,
            usage_plans: Default::default(),
        };
        let plan = Target::new(
            TargetId::parse("usage-plan:p1").unwrap_or_else(|e| panic!("{e}")),
            TargetSpec::UsagePlan,
            Default::default(),
            dowguard_domain::Limits::unset(dowguard_domain::TargetKind::UsagePlan),
        );
        for (target, held) in [
            (&function, false),
            (&function, true),
            (&stage, false),
            (&plan, false),
        ] {
            let planned = metrics_of(target, &RestCatalog::default(), held).len() as u64;
            assert_eq!(
                planned,
                MetricsPlan::metrics_per_measurement(target.id.kind(), held)
            );
        }
    }

    #[test]
    fn points_are_gathered_in_minute_order_whatever_order_the_series_come_in() {
        let mut m: Minutes<&str> = Minutes::with_points(3);
        for (minute, field, amount) in [
            (12, Field::Requests, 3),
            (10, Field::Requests, 1),
            (11, Field::Requests, 2),
            (10, Field::DurationMs, 100),
            (12, Field::DurationMs, 300),
            (12, Field::Requests, 4),
        ] {
            m.add(&"f", minute, field, amount);
        }
        let points = m.into_points().remove("f").unwrap_or_default();
        let got: Vec<(i64, u64, u64)> = points
            .iter()
            .map(|p| (p.minute, p.usage.requests, p.usage.duration_ms))
            .collect();
        assert_eq!(got, [(10, 1, 100), (11, 2, 0), (12, 7, 300)]);
    }
}
