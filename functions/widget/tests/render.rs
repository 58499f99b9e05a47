//! The widgets' HTML from plain data: well-formed (parsed as XML), every stored
//! string shown as text, the expected elements present.

use chrono::{DateTime, TimeZone, Utc};
use dowguard_domain::Money;
use dowguard_widget::render::{self, AuditLine, BudgetLine, Endpoint, FormValues, TargetLine, escape};

const HOSTILE: &str = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>&amp;";

fn at(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 20, h, m, 0)
        .single()
        .unwrap_or_default()
}

fn line(text: &str) -> BudgetLine {
    BudgetLine {
        id: text.into(),
        version: 3,
        scope: text.into(),
        period: "day".into(),
        period_bounds: (at(0, 0), at(0, 0) + chrono::Duration::days(1)),
        amount: Money::parse("240").unwrap_or_default(),
        thresholds: "1,4,8,14.4".into(),
        mode: text.into(),
        owner: text.into(),
        spent: Money::parse("30.5").ok(),
        projected: Money::parse("310").ok(),
        burn: ("4.2x".into(), text.into()),
        level: "throttle(1)".into(),
        targets: vec![TargetLine {
            target: text.into(),
            state: text.into(),
            holds: text.into(),
            releasable: true,
        }],
    }
}

fn record(text: &str) -> AuditLine {
    AuditLine {
        at: at(9, 30),
        subject: text.into(),
        actor: text.into(),
        what: text.into(),
        outcome: text.into(),
        why: text.into(),
    }
}

fn endpoint() -> Endpoint {
    Endpoint("arn:aws:lambda:us-east-1:123456789012:function:dowguard-widget".into())
}

/// Every widget, each with `text` in every stored field.
fn all_widgets(text: &str) -> Vec<(&'static str, String)> {
    let lines = vec![line(text)];
    let audit = vec![record(text)];
    let values = FormValues {
        amount: text.into(),
        period: "day".into(),
        thresholds: text.into(),
        mode: "enforce".into(),
        owner: text.into(),
    };
    vec![
        ("budgets", render::budgets(&lines, at(10, 0), Some(&endpoint()))),
        ("charts", render::charts(&lines, &audit, at(10, 0))),
        ("audit", render::audit(&audit)),
        (
            "form",
            render::form(
                text,
                3,
                &values,
                &[("amount".into(), text.into())],
                Some(text),
                &endpoint(),
            ),
        ),
        ("done", render::done(text, true, &endpoint())),
        ("failure", render::failure(text)),
    ]
}

#[test]
fn escape_turns_every_markup_character_into_an_entity() {
    assert_eq!(escape("a<b>c&d\"e'f"), "a&lt;b&gt;c&amp;d&quot;e&#39;f");
    assert_eq!(escape("plain text, $240"), "plain text, $240");
    assert_eq!(escape(""), "");
}

#[test]
fn every_widget_is_well_formed_xhtml() {
    for (name, html) in all_widgets("checkout-daily") {
        let doc = roxmltree::Document::parse(&html);
        assert!(doc.is_ok(), "{name} is not well-formed: {doc:?}\n{html}");
    }
}

#[test]
fn hostile_strings_in_every_stored_field_render_as_text() {
    for (name, html) in all_widgets(HOSTILE) {
        let doc = roxmltree::Document::parse(&html).unwrap_or_else(|e| panic!("{name}: {e}\n{html}"));
        let elements: Vec<&str> = doc
            .descendants()
            .filter(|n| n.is_element())
            .map(|n| n.tag_name().name())
            .collect();
        assert!(
            !elements.contains(&"script") && !elements.contains(&"img"),
            "{name}: {elements:?}"
        );
        assert!(
            doc.descendants()
                .all(|n| n.attributes().iter().all(|a| !a.name().starts_with("on"))),
            "{name}: an event handler attribute got through"
        );
        let text: String = doc.descendants().filter_map(|n| n.text()).collect();
        let shown = text.contains(HOSTILE)
            || doc
                .descendants()
                .any(|n| n.attributes().iter().any(|a| a.value() == HOSTILE));
        assert!(shown, "{name}: the stored string is not shown as it is");
    }
}

#[test]
fn the_budgets_table_colours_rows_by_level_and_offers_changes_only_with_writes_on() {
    let lines = vec![line("checkout-daily")];
    let with = render::budgets(&lines, at(10, 0), Some(&endpoint()));
    assert!(with.contains("<tr class=\"throttle\">"), "{with}");
    assert!(
        with.contains("<cwdb-action action=\"call\" display=\"widget\""),
        "{with}"
    );
    let without = render::budgets(&lines, at(10, 0), None);
    assert!(!without.contains("cwdb-action"), "{without}");
}

#[test]
fn the_chart_marks_the_actions_of_the_period_on_the_time_axis() {
    let b = line("checkout-daily");
    let inside = record("checkout-daily");
    let mut outside = record("checkout-daily");
    outside.at = at(0, 0) - chrono::Duration::hours(2);
    let svg = render::chart(&b, &[inside, outside], at(10, 0));
    let doc = roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{e}\n{svg}"));
    let class = |c: &str| {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(c))
            .count()
    };
    assert_eq!(class("action"), 1, "{svg}");
    assert_eq!(
        (class("budget"), class("spent"), class("projection")),
        (1, 1, 1),
        "{svg}"
    );
}

#[test]
fn the_save_button_asks_for_confirmation_and_sends_the_version() {
    let html = render::form(
        "checkout-daily",
        7,
        &FormValues::default(),
        &[],
        None,
        &endpoint(),
    );
    let doc = roxmltree::Document::parse(&html).unwrap_or_else(|e| panic!("{e}\n{html}"));
    let action = doc
        .descendants()
        .find(|n| n.tag_name().name() == "cwdb-action" && n.attribute("confirmation").is_some())
        .unwrap_or_else(|| panic!("no confirmed action: {html}"));
    let params: serde_json::Value =
        serde_json::from_str(action.text().unwrap_or_default()).unwrap_or_default();
    assert_eq!(
        params,
        serde_json::json!({"action": "save", "budget": "checkout-daily", "version": 7})
    );
    for field in ["amount", "period", "thresholds", "mode", "owner"] {
        assert!(
            doc.descendants().any(|n| n.attribute("name") == Some(field)),
            "{field}: {html}"
        );
    }
}
