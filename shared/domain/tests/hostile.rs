//! Hostile input to budget parsing: arbitrary JSON, huge and deeply nested payloads,
//! wrong types, and injection strings in every field. Parsing never panics; a
//! rejection names the field that is wrong and says why; what is accepted is clean.

#![allow(clippy::unwrap_used, clippy::expect_used, reason = "tests fail loudly")]

use dowguard_domain::{Budget, BudgetSpec, Floors};
use proptest::prelude::*;
use proptest::test_runner::TestRunner;
use serde_json::{Map, Value, json};

const FIELDS: [&str; 9] = [
    "id",
    "scope",
    "period",
    "amount",
    "thresholds",
    "mode",
    "owner",
    "topic",
    "floors",
];

/// Strings that have hurt other systems.
const NASTY: &[&str] = &[
    "",
    " ",
    "\0",
    "\u{202e}gnp.exe",
    "'; DROP TABLE budgets; --",
    "\" OR \"1\"=\"1",
    "${jndi:ldap://example.invalid/a}",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "../../etc/passwd",
    "line\nbreak",
    "tab\there",
    "NaN",
    "inf",
    "-0",
    "1e309",
    "0x10",
    "99999999999999999999999999999999999999999",
    "-1",
    "0",
    "1,2",
    "$",
    "%s%s%s%n",
    "\u{feff}account",
    "function:",
    "function:a:b:c",
    "rest-stage:/",
    "tag:=",
    "arn:aws:sns:us-east-1:123:t",
    "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST:x",
];

fn valid() -> Value {
    json!({
        "id": "checkout-daily",
        "scope": "function:checkout",
        "period": "day",
        "amount": "240",
        "thresholds": ["1", "4", "8", "14.4"],
        "mode": "enforce",
        "owner": "finance@example.com",
        "topic": "arn:aws:sns:us-east-1:123456789012:finance",
        "floors": {"concurrency": 1, "rate": 1, "burst": 1},
        "protected": false
    })
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(NASTY).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
        (1_usize..200_000).prop_map(|n| Value::String("9".repeat(n))),
    ]
}

/// Arbitrary JSON; budget-shaped documents with fields replaced, removed or added;
/// and budgets with one text field replaced by hostile text (budget-shaped, so they
/// reach the parser, and mostly rejected by it).
fn json_doc() -> impl Strategy<Value = Value> {
    prop_oneof![
        json_value(),
        (
            prop::sample::select(&["id", "scope", "period", "amount", "mode", "owner", "topic"][..]),
            prop_oneof![prop::sample::select(NASTY).prop_map(str::to_string), ".{0,40}"],
        )
            .prop_map(|(field, text)| {
                let mut doc = valid();
                doc[field] = Value::String(text);
                doc
            }),
        prop::collection::vec(
            (
                prop::sample::select(FIELDS.as_slice()),
                prop::option::of(json_value())
            ),
            0..4
        )
        .prop_map(|edits| {
            let mut doc = valid();
            for (field, value) in edits {
                match (value, doc.as_object_mut()) {
                    (Some(v), Some(map)) => {
                        map.insert(field.to_string(), v);
                    }
                    (None, Some(map)) => {
                        map.remove(field);
                    }
                    _ => {}
                }
            }
            doc
        }),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    json_leaf().prop_recursive(8, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    prop::sample::select(FIELDS.as_slice()).prop_map(str::to_string),
                    ".{0,10}"
                ],
                inner,
                0..10
            )
            .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Checks one outcome; true if accepted.
fn check(result: Result<Budget, dowguard_domain::BudgetError>) -> bool {
    match result {
        Ok(b) => {
            let id = b.id.to_string();
            assert!(
                !id.is_empty()
                    && id.len() <= 64
                    && id
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c)),
                "accepted a bad id {id:?}"
            );
            assert!(b.amount.is_positive());
            assert!(
                !b.owner.chars().any(char::is_control),
                "accepted a control character in the owner"
            );
            true
        }
        Err(e) => {
            assert!(FIELDS.contains(&e.field), "unknown field {:?} in {e}", e.field);
            assert!(!e.reason.trim().is_empty(), "a rejection without a reason: {e}");
            assert!(
                e.to_string().contains(e.field),
                "the message does not name the field: {e}"
            );
            false
        }
    }
}

const CASES: u32 = 2_000;

fn runner() -> TestRunner {
    TestRunner::new(ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    })
}

/// Any JSON document: either not a budget spec (a serde error, no panic), or a spec
/// that parses cleanly or is rejected naming a field. A good share of the documents
/// must be budget-shaped, and some of those accepted and some rejected: otherwise
/// the checks of either outcome never ran.
#[test]
fn arbitrary_json_never_panics_and_every_rejection_names_a_field() {
    let (specs, accepted) = (std::cell::Cell::new(0), std::cell::Cell::new(0));
    runner()
        .run(&json_doc(), |doc| {
            if let Ok(spec) = serde_json::from_value::<BudgetSpec>(doc) {
                specs.set(specs.get() + 1);
                accepted.set(accepted.get() + usize::from(check(Budget::parse(spec))));
            }
            Ok(())
        })
        .unwrap();
    let (specs, accepted) = (specs.get(), accepted.get());
    println!("hostile budgets: {CASES} arbitrary JSON documents, {specs} budget-shaped, {accepted} accepted");
    let at_least = CASES as usize / 20;
    assert!(
        specs >= at_least,
        "only {specs} of {CASES} documents were budget-shaped"
    );
    assert!(
        accepted >= at_least,
        "only {accepted} budget-shaped documents were accepted"
    );
    assert!(
        specs - accepted >= at_least,
        "only {} budget-shaped documents were rejected",
        specs - accepted
    );
}

/// A valid budget with one field replaced by something hostile: rejected naming
/// exactly that field, unless the value happens to be valid for it.
#[test]
fn one_hostile_field_is_rejected_by_name() {
    let strategy = (prop::sample::select(FIELDS.as_slice()), json_leaf());
    let rejected = std::cell::Cell::new(0);
    runner()
        .run(&strategy, |(field, bad)| {
            let mut doc = valid();
            doc[field] = match field {
                "thresholds" => json!([bad.clone(), "2"]),
                "floors" => json!({"concurrency": bad.clone()}),
                _ => bad.clone(),
            };
            match serde_json::from_value::<BudgetSpec>(doc) {
                Err(e) => prop_assert!(!e.to_string().is_empty()),
                Ok(spec) => {
                    if let Err(e) = Budget::parse(spec) {
                        rejected.set(rejected.get() + 1);
                        prop_assert_eq!(e.field, field, "{} for {:?}", e, bad);
                    }
                }
            }
            Ok(())
        })
        .unwrap();
    let rejected = rejected.get();
    println!("hostile budgets: {CASES} single-field cases, {rejected} rejected by the parser");
    assert!(
        rejected >= CASES as usize / 20,
        "only {rejected} hostile fields reached the parser and were rejected by it"
    );
}

#[test]
fn injection_strings_in_every_text_field_are_rejected_naming_it() {
    let mut cases = 0;
    for field in ["id", "scope", "period", "amount", "mode", "owner", "topic"] {
        for nasty in NASTY {
            let mut doc = valid();
            doc[field] = json!(nasty);
            let spec: BudgetSpec = serde_json::from_value(doc).unwrap();
            cases += 1;
            // Empty mode and topic mean "default" and "none"; an owner may be any
            // printable text (it is only ever shown, never interpreted).
            let id_like = !nasty.is_empty()
                && nasty
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_".contains(c));
            let may_pass = matches!((field, *nasty), ("mode" | "topic", "" | " "))
                || (field == "id" && id_like)
                || (field == "owner" && !nasty.trim().is_empty() && !nasty.chars().any(char::is_control));
            match Budget::parse(spec) {
                Ok(_) => assert!(may_pass, "{field} = {nasty:?} was accepted"),
                Err(e) => assert_eq!(e.field, field, "{field} = {nasty:?}: {e}"),
            }
        }
    }
    println!("hostile budget fields: {cases} injection cases");
}

#[test]
fn huge_and_deeply_nested_payloads_are_refused_without_panic() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(serde_json::from_str::<BudgetSpec>(&deep).is_err());
    let mut doc = valid();
    doc["owner"] = json!("x".repeat(1_000_000));
    let spec: BudgetSpec = serde_json::from_value(doc).unwrap();
    assert_eq!(Budget::parse(spec).unwrap_err().field, "owner");
    let mut doc = valid();
    doc["thresholds"] = Value::Array((0..100_000).map(|i| json!(i.to_string())).collect());
    let spec: BudgetSpec = serde_json::from_value(doc).unwrap();
    assert_eq!(Budget::parse(spec).unwrap_err().field, "thresholds");
    let floors: Floors = serde_json::from_value(json!({"concurrency": 1})).unwrap();
    assert_eq!(floors.concurrency, 1);
}
