//! CloudWatch `GetMetricData` answered by the proxy ([`crate::proxy::Proxy::start_answering`])
//! with a full series for every metric asked for, at a scale the local server cannot
//! hold: a month of hourly points and an hour of one-minute points for ten thousand
//! functions. Every other request goes on to the local server.
//!
//! The answers keep the API's shape and its limits ("GetMetricData", Amazon
//! CloudWatch API Reference): the SDK's `rpc-v2-cbor` protocol, one point per
//! `Period` from `StartTime` (inclusive) to `EndTime` (exclusive), at most 100,800
//! data points a call with a `NextToken` for the rest, and `PartialData` for a
//! metric whose points continue on the next page. A query without dimensions (the
//! tripwire's account-wide aggregate) gets no points and `PartialData` on the last
//! page: an incomplete aggregate, after which the evaluator measures every function
//! in full, its dearest pass.

use std::sync::Arc;

use ciborium::Value as Cbor;

use crate::proxy::{Operation, Responder, Synthetic};

/// The most data points one `GetMetricData` call returns ("GetMetricData", Amazon
/// CloudWatch API Reference: "a total of as many as 100,800 data points").
pub const MAX_DATAPOINTS: usize = 100_800;

/// A metric's value (a whole sum) for one period of `period_s` seconds, by metric
/// name.
pub type Series = fn(metric: &str, period_s: i64) -> u64;

/// The steady traffic the synthetic series describe: every function serves 10
/// requests a second of 200 ms each, and nothing is throttled.
#[must_use]
pub fn steady(metric: &str, period_s: i64) -> u64 {
    let minutes = u64::try_from(period_s / 60).unwrap_or(0);
    match metric {
        "Invocations" | "Count" => 600 * minutes,
        "Duration" => 600 * 200 * minutes,
        _ => 0,
    }
}

/// A [`Responder`] that answers every `GetMetricData` with `series`.
#[must_use]
pub fn responder(series: Series) -> Responder {
    Arc::new(move |operation: &Operation, body: &[u8]| {
        if operation.api != "cloudwatch" || operation.name != "GetMetricData" {
            return None;
        }
        let request: Cbor = ciborium::de::from_reader(body).ok()?;
        let body = answer(&request, series)?;
        Some(Synthetic {
            status: "200 OK",
            headers: vec![
                ("Content-Type", "application/cbor".to_string()),
                ("smithy-protocol", "rpc-v2-cbor".to_string()),
                ("x-amzn-RequestId", "synthetic-metrics".to_string()),
            ],
            body,
        })
    })
}

fn field<'a>(map: &'a Cbor, key: &str) -> Option<&'a Cbor> {
    map.as_map()?
        .iter()
        .find(|(k, _)| k.as_text() == Some(key))
        .map(|(_, v)| v)
}

fn text(value: Option<&Cbor>) -> Option<&str> {
    value?.as_text()
}

fn integer(value: Option<&Cbor>) -> Option<i64> {
    value?.as_integer().and_then(|i| i64::try_from(i).ok())
}

/// Epoch seconds of a `tag 1` timestamp (an integer or a float).
fn seconds(value: Option<&Cbor>) -> Option<i64> {
    match value? {
        Cbor::Tag(1, inner) => match inner.as_ref() {
            Cbor::Integer(i) => i64::try_from(*i).ok(),
            Cbor::Float(f) => Some(f.floor() as i64),
            _ => None,
        },
        _ => None,
    }
}

/// One query of the request.
struct Query<'a> {
    id: &'a str,
    metric: &'a str,
    period: i64,
    aggregate: bool,
}

/// The answer to `request`: its page of points, CBOR-encoded.
fn answer(request: &Cbor, series: Series) -> Option<Vec<u8>> {
    let start = seconds(field(request, "StartTime"))?;
    let end = seconds(field(request, "EndTime"))?;
    let page: usize = text(field(request, "NextToken")).map_or(Some(0), |t| t.parse().ok())?;
    let queries: Vec<Query<'_>> = field(request, "MetricDataQueries")?
        .as_array()?
        .iter()
        .filter_map(|q| {
            let stat = field(q, "MetricStat")?;
            let metric = field(stat, "Metric")?;
            let dimensions = field(metric, "Dimensions").and_then(Cbor::as_array);
            Some(Query {
                id: text(field(q, "Id"))?,
                metric: text(field(metric, "MetricName"))?,
                period: integer(field(stat, "Period"))?.max(1),
                aggregate: dimensions.is_none_or(Vec::is_empty),
            })
        })
        .collect();
    // Every query's timestamps, in order; this page is one window of them.
    let first =
        |period: i64| start.div_euclid(period) * period + if start % period == 0 { 0 } else { period };
    let counts: Vec<usize> = queries
        .iter()
        .map(|q| {
            if q.aggregate || end <= first(q.period) {
                0
            } else {
                usize::try_from((end - first(q.period) + q.period - 1) / q.period).unwrap_or(0)
            }
        })
        .collect();
    let total: usize = counts.iter().sum();
    let (from, to) = (page * MAX_DATAPOINTS, ((page + 1) * MAX_DATAPOINTS).min(total));
    let last_page = to >= total;
    let mut results = Vec::new();
    let mut offset = 0;
    for (q, count) in queries.iter().zip(&counts) {
        let (lo, hi) = (from.max(offset), to.min(offset + count));
        let mut timestamps = Vec::new();
        let mut values = Vec::new();
        if lo < hi {
            let value = series(q.metric, q.period);
            for i in (lo - offset)..(hi - offset) {
                let at = first(q.period) + i64::try_from(i).unwrap_or(0) * q.period;
                timestamps.push(Cbor::Tag(1, Box::new(Cbor::Integer(at.into()))));
                values.push(Cbor::Float(value as f64));
            }
        }
        offset += count;
        if timestamps.is_empty() && !last_page {
            continue;
        }
        let complete = last_page && !q.aggregate;
        results.push(Cbor::Map(vec![
            (Cbor::Text("Id".into()), Cbor::Text(q.id.into())),
            (Cbor::Text("Label".into()), Cbor::Text(q.metric.into())),
            (Cbor::Text("Timestamps".into()), Cbor::Array(timestamps)),
            (Cbor::Text("Values".into()), Cbor::Array(values)),
            (
                Cbor::Text("StatusCode".into()),
                Cbor::Text(if complete { "Complete" } else { "PartialData" }.into()),
            ),
        ]));
    }
    let mut out = vec![
        (Cbor::Text("MetricDataResults".into()), Cbor::Array(results)),
        (Cbor::Text("Messages".into()), Cbor::Array(Vec::new())),
    ];
    if !last_page {
        out.push((Cbor::Text("NextToken".into()), Cbor::Text((page + 1).to_string())));
    }
    let mut bytes = Vec::new();
    ciborium::ser::into_writer(&Cbor::Map(out), &mut bytes).ok()?;
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(start: i64, end: i64, queries: &[(&str, &str, i64, bool)], token: Option<&str>) -> Cbor {
        let queries = queries
            .iter()
            .map(|(id, metric, period, dimensioned)| {
                let mut m = vec![
                    (Cbor::Text("Namespace".into()), Cbor::Text("AWS/Lambda".into())),
                    (Cbor::Text("MetricName".into()), Cbor::Text((*metric).into())),
                ];
                if *dimensioned {
                    m.push((
                        Cbor::Text("Dimensions".into()),
                        Cbor::Array(vec![Cbor::Map(vec![
                            (Cbor::Text("Name".into()), Cbor::Text("FunctionName".into())),
                            (Cbor::Text("Value".into()), Cbor::Text("f".into())),
                        ])]),
                    ));
                }
                Cbor::Map(vec![
                    (Cbor::Text("Id".into()), Cbor::Text((*id).into())),
                    (
                        Cbor::Text("MetricStat".into()),
                        Cbor::Map(vec![
                            (Cbor::Text("Metric".into()), Cbor::Map(m)),
                            (Cbor::Text("Period".into()), Cbor::Integer((*period).into())),
                            (Cbor::Text("Stat".into()), Cbor::Text("Sum".into())),
                        ]),
                    ),
                ])
            })
            .collect();
        let mut map = vec![
            (
                Cbor::Text("StartTime".into()),
                Cbor::Tag(1, Box::new(Cbor::Float(start as f64))),
            ),
            (
                Cbor::Text("EndTime".into()),
                Cbor::Tag(1, Box::new(Cbor::Integer(end.into()))),
            ),
            (Cbor::Text("MetricDataQueries".into()), Cbor::Array(queries)),
        ];
        if let Some(t) = token {
            map.push((Cbor::Text("NextToken".into()), Cbor::Text(t.into())));
        }
        Cbor::Map(map)
    }

    fn decode(bytes: &[u8]) -> Cbor {
        ciborium::de::from_reader(bytes).expect("CBOR")
    }

    #[test]
    fn one_point_per_period_from_start_to_end_and_the_aggregate_is_partial() {
        let req = request(
            3_600,
            7_200,
            &[("a", "Invocations", 60, true), ("b", "Invocations", 60, false)],
            None,
        );
        let out = decode(&answer(&req, steady).expect("answer"));
        let results = field(&out, "MetricDataResults")
            .and_then(Cbor::as_array)
            .expect("results");
        assert_eq!(results.len(), 2);
        let points = field(&results[0], "Timestamps")
            .and_then(Cbor::as_array)
            .expect("ts");
        assert_eq!(points.len(), 60);
        assert_eq!(seconds(points.first()), Some(3_600));
        assert_eq!(seconds(points.last()), Some(7_140));
        assert_eq!(text(field(&results[0], "StatusCode")), Some("Complete"));
        assert_eq!(text(field(&results[1], "StatusCode")), Some("PartialData"));
        assert!(field(&out, "NextToken").is_none());
    }

    #[test]
    fn more_than_100800_points_come_in_pages() {
        // 200 metrics × 744 hourly points = 148,800 points: two pages.
        let queries: Vec<(String, i64)> = (0..200).map(|i| (format!("q{i}"), 3_600)).collect();
        let spec: Vec<(&str, &str, i64, bool)> = queries
            .iter()
            .map(|(id, p)| (id.as_str(), "Duration", *p, true))
            .collect();
        let month = 744 * 3_600;
        let mut seen = 0;
        let mut token: Option<String> = None;
        for page in 0.. {
            let out = decode(&answer(&request(0, month, &spec, token.as_deref()), steady).expect("answer"));
            for r in field(&out, "MetricDataResults")
                .and_then(Cbor::as_array)
                .expect("results")
            {
                seen += field(r, "Values").and_then(Cbor::as_array).map_or(0, Vec::len);
            }
            token = text(field(&out, "NextToken")).map(str::to_string);
            if token.is_none() {
                assert_eq!(page, 1);
                break;
            }
        }
        assert_eq!(seen, 200 * 744);
    }
}
