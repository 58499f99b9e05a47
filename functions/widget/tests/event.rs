//! The console's event as the widget function reads it: the writes switch, the
//! dashboard's time range, the form's values.

use chrono::{Duration, TimeZone, Utc};
use dowguard_widget::{MAX_AUDIT_DAYS, WidgetEvent, WidgetSettings, edit_of, range_of};
use serde_json::json;

#[test]
fn the_writes_switch_accepts_true_or_false_and_defaults_to_read_only() {
    assert!(WidgetSettings::parse(Some("true")).is_ok_and(|s| s.writes));
    assert!(WidgetSettings::parse(Some("false")).is_ok_and(|s| !s.writes));
    assert!(WidgetSettings::parse(None).is_ok_and(|s| !s.writes));
    let refused = WidgetSettings::parse(Some("yes"));
    assert!(refused.is_err_and(|e| e.to_string().contains("DOWGUARD_WIDGET_WRITES")));
}

#[test]
fn the_time_range_comes_from_the_console_and_is_capped() {
    let now = Utc
        .with_ymd_and_hms(2026, 11, 20, 12, 0, 0)
        .single()
        .unwrap_or_default();
    let event = |start: chrono::DateTime<Utc>, end: chrono::DateTime<Utc>| -> WidgetEvent {
        serde_json::from_value(json!({
            "widget": "audit",
            "widgetContext": {"dashboardName": "d", "timeRange": {"mode": "relative", "start": start.timestamp_millis(), "end": end.timestamp_millis(), "zoom": {"start": 1, "end": 2}}}
        }))
        .unwrap_or_default()
    };
    let hour = event(now - Duration::hours(1), now);
    assert_eq!(range_of(&hour, now), (now - Duration::hours(1), now));
    let year = event(now - Duration::days(365), now);
    assert_eq!(range_of(&year, now), (now - Duration::days(MAX_AUDIT_DAYS), now));
    let backwards = event(now, now - Duration::hours(1));
    assert_eq!(range_of(&backwards, now), (now - Duration::days(1), now));
    assert_eq!(
        range_of(&WidgetEvent::default(), now),
        (now - Duration::days(1), now)
    );
}

#[test]
fn the_form_values_become_an_edit_from_the_forms_version() {
    let event: WidgetEvent = serde_json::from_value(json!({
        "action": "save", "budget": "checkout-daily", "version": 4,
        "widgetContext": {"forms": {"all": {"amount": " 300 ", "thresholds": "1, 4,8 ,14.4", "mode": "enforce"}}}
    }))
    .unwrap_or_default();
    let (edit, values) = edit_of("checkout-daily", 4, &event.context.forms);
    assert_eq!(edit.amount.as_deref(), Some("300"));
    assert_eq!(
        edit.thresholds,
        Some(vec!["1".into(), "4".into(), "8".into(), "14.4".into()])
    );
    assert_eq!(edit.mode.as_deref(), Some("enforce"));
    assert_eq!((edit.owner, edit.period, edit.if_version), (None, None, Some(4)));
    assert_eq!(values.amount, "300");
}
