//! The guard's own figures as CloudWatch embedded metric format (EMF): one JSON
//! document per budget (dimension `Budget`) and one per pass (dimension
//! `Function`), printed on stdout, where Lambda's log pipeline turns them into
//! metrics without any `PutMetricData` call.
//!
//! Money goes out in whole cents and burn rates in percent (1.0× = 100), as
//! integers: no figure becomes a float on the way.

use dowguard_domain::{BudgetReport, Level, Money};
use dowguard_guard::{Outcome, PassReport};
use serde_json::{Map, Value, json};

/// Pico-dollars in one cent.
const PICOS_PER_CENT: i128 = 10_000_000_000;

/// Money in whole cents, rounded down (saturating).
pub fn cents(money: Money) -> i64 {
    i64::try_from(money.picos() / PICOS_PER_CENT).unwrap_or(if money.picos() < 0 {
        i64::MIN
    } else {
        i64::MAX
    })
}

/// A level as a number: 0 normal, 1 watch, 1 + n for throttle level n, 10 stop.
pub fn level_number(level: Level) -> u8 {
    match level {
        Level::Normal => 0,
        Level::Watch => 1,
        Level::Throttle(n) => n.saturating_add(1).min(9),
        Level::Stop => 10,
    }
}

fn document(
    namespace: &str,
    timestamp_ms: i64,
    dimension: (&str, &str),
    metrics: &[(&str, &str, Value)],
) -> Value {
    let definitions: Vec<Value> = metrics
        .iter()
        .map(|(name, unit, _)| json!({ "Name": name, "Unit": unit }))
        .collect();
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": timestamp_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [[dimension.0]],
                "Metrics": definitions,
            }],
        }),
    );
    doc.insert(dimension.0.into(), Value::from(dimension.1));
    for (name, _, value) in metrics {
        doc.insert((*name).into(), value.clone());
    }
    Value::Object(doc)
}

/// The EMF document of one budget report.
pub fn budget_document(namespace: &str, timestamp_ms: i64, r: &BudgetReport) -> Value {
    let burn_percent = |b: dowguard_domain::BurnRate| b.0 / 10_000;
    document(
        namespace,
        timestamp_ms,
        ("Budget", r.budget.as_str()),
        &[
            ("SpentCents", "Count", json!(cents(r.spent))),
            ("BudgetCents", "Count", json!(cents(r.amount))),
            ("ProjectedCents", "Count", json!(cents(r.projected))),
            ("BurnShortPercent", "Percent", json!(burn_percent(r.burn_short))),
            ("BurnLongPercent", "Percent", json!(burn_percent(r.burn_long))),
            (
                "DemandShortPercent",
                "Percent",
                json!(burn_percent(r.demand_short)),
            ),
            ("Level", "None", json!(level_number(r.level))),
            ("Gaps", "Count", json!(r.gaps.len())),
        ],
    )
}

/// The EMF documents of one pass: each budget's figures, then the pass's own
/// (targets, actions applied / skipped / failed, metrics requested, conflicts,
/// and what could not be read: services not listed, unreadable stored items,
/// targets with partial or ambiguous metrics).
pub fn pass_documents(namespace: &str, function: &str, report: &PassReport) -> Vec<Value> {
    let ts = report.now.timestamp_millis();
    let mut out: Vec<Value> = report
        .reports()
        .iter()
        .map(|r| budget_document(namespace, ts, r))
        .collect();
    let count = |word: &str| report.outcomes.iter().filter(|o| o.word() == word).count();
    let failed = report
        .outcomes
        .iter()
        .filter(|o| matches!(o, Outcome::Failed { .. }))
        .count();
    out.push(document(
        namespace,
        ts,
        ("Function", function),
        &[
            ("Targets", "Count", json!(report.targets)),
            ("ActionsApplied", "Count", json!(count("ok"))),
            ("ActionsSkipped", "Count", json!(count("skipped"))),
            ("ActionsFailed", "Count", json!(failed)),
            ("MetricsRequested", "Count", json!(report.metrics_requested)),
            ("Conflicts", "Count", json!(report.conflicts.len())),
            ("ServicesUnlisted", "Count", json!(report.gaps.kinds.len())),
            (
                "ItemsUnreadable",
                "Count",
                json!(report.gaps.states.len() + report.gaps.stored.len()),
            ),
            ("TargetsPartial", "Count", json!(report.gaps.figures.len())),
        ],
    ));
    out
}

/// Prints each document on its own stdout line, where Lambda picks EMF up.
pub fn emit(documents: &[Value]) {
    for doc in documents {
        println!("{doc}");
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use std::collections::BTreeMap;

    use dowguard_domain::{BudgetId, BurnRate, Decision, Gaps, Mode, Period, Rule, TargetId, TargetKind};

    use super::*;

    fn report() -> BudgetReport {
        BudgetReport {
            budget: BudgetId::parse("checkout-daily").expect("id"),
            period: Period::Day,
            mode: Mode::Enforce,
            amount: Money::from_dollars(240),
            spent: Money::from_cents(12_345),
            projected: Money::from_cents(1_000_099),
            burn_short: BurnRate(14_400_000),
            burn_long: BurnRate(1_500_000),
            demand_short: BurnRate(20_000_000),
            demand_long: BurnRate(1_000_000),
            level: Level::Throttle(3),
            rule: Rule::FastLane,
            targets: 1,
            missing_target: false,
            gaps: vec!["HTTP API stages could not be listed".into()],
        }
    }

    #[test]
    fn a_budget_document_is_valid_emf_with_integer_figures() {
        let doc = budget_document("Dowguard", 1_700_000_000_000, &report());
        assert_eq!(doc["Budget"], "checkout-daily");
        assert_eq!(doc["SpentCents"], 12_345);
        assert_eq!(doc["BudgetCents"], 24_000);
        assert_eq!(doc["ProjectedCents"], 1_000_099);
        assert_eq!(doc["BurnShortPercent"], 1_440);
        assert_eq!(doc["BurnLongPercent"], 150);
        assert_eq!(doc["Level"], 4);
        let meta = &doc["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(meta["Namespace"], "Dowguard");
        assert_eq!(meta["Dimensions"], json!([["Budget"]]));
        let names: Vec<&str> = meta["Metrics"]
            .as_array()
            .expect("metrics")
            .iter()
            .filter_map(|m| m["Name"].as_str())
            .collect();
        for name in &names {
            assert!(doc[*name].is_i64() || doc[*name].is_u64(), "{name} is an integer");
        }
        assert_eq!(doc["Gaps"], 1);
        assert_eq!(names.len(), 8);
    }

    #[test]
    fn a_pass_adds_its_own_document_after_the_budgets() {
        let pass = PassReport {
            now: Utc
                .with_ymd_and_hms(2026, 11, 22, 6, 0, 0)
                .single()
                .expect("time"),
            targets: 3,
            decision: Decision {
                reports: vec![report()],
                ..Decision::default()
            },
            outcomes: vec![
                Outcome::Applied,
                Outcome::Skipped {
                    why: "dry-run".into(),
                },
            ],
            conflicts: vec![],
            metrics_requested: 42,
            partial_metrics: true,
            tripwire: Vec::new(),
            ranked: Vec::new(),
            gaps: Gaps {
                kinds: BTreeMap::from([(TargetKind::HttpStage, "GetApis failed".into())]),
                figures: BTreeMap::from([(
                    TargetId::parse("rest-stage:abc/prod").expect("id"),
                    "partial".into(),
                )]),
                ..Gaps::default()
            },
            seen: Default::default(),
        };
        let docs = pass_documents("Dowguard", "evaluator", &pass);
        assert_eq!(docs.len(), 2);
        let own = &docs[1];
        assert_eq!(own["Function"], "evaluator");
        assert_eq!(own["Targets"], 3);
        assert_eq!(own["ActionsApplied"], 1);
        assert_eq!(own["ActionsSkipped"], 1);
        assert_eq!(own["ActionsFailed"], 0);
        assert_eq!(own["MetricsRequested"], 42);
        assert_eq!(own["ServicesUnlisted"], 1);
        assert_eq!(own["ItemsUnreadable"], 0);
        assert_eq!(own["TargetsPartial"], 1);
    }

    #[test]
    fn cents_round_down_and_saturate() {
        assert_eq!(cents(Money::from_picos(PICOS_PER_CENT * 3 - 1)), 2);
        assert_eq!(cents(Money::from_picos(i128::MAX)), i64::MAX);
    }
}
