//! The widgets' HTML, from plain data: no I/O, no clock (the time is passed in).
//!
//! Every string that comes from the guard's table (budget names, owners, scopes,
//! audit reasons, actors) goes through [`escape`] before it reaches the markup, so a
//! stored value is always shown as text. The markup is XHTML-compatible (every
//! element closed, attributes quoted) so the tests can parse it as XML.
//!
//! The CloudWatch console shows the HTML a custom widget returns, with CSS and SVG
//! and without JavaScript; a `<cwdb-action>` element right after an element makes a
//! click on it call a Lambda function, with an optional confirmation, passing the
//! JSON in the element's body as parameters ("Details about custom widgets in
//! CloudWatch", "Interactivity in the custom widget in CloudWatch", Amazon
//! CloudWatch user guide).

use chrono::{DateTime, Utc};
use dowguard_domain::Money;
use rust_decimal::Decimal;
use serde_json::json;

/// Escapes text for an HTML element's content or a quoted attribute value.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Where a `<cwdb-action>` calls: the widget function itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint(pub String);

impl Endpoint {
    /// A `<cwdb-action>` that calls the widget function with `params` and shows
    /// the answer in the widget, after `confirmation` if given.
    fn action(&self, params: &serde_json::Value, confirmation: Option<&str>) -> String {
        let confirm = confirmation
            .map(|c| format!(" confirmation=\"{}\"", escape(c)))
            .unwrap_or_default();
        format!(
            "<cwdb-action action=\"call\" display=\"widget\" endpoint=\"{}\"{confirm}>{}</cwdb-action>",
            escape(&self.0),
            escape(&params.to_string())
        )
    }
}

/// A target a budget covers, as a row shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetLine {
    /// The target's id.
    pub target: String,
    /// The guard's state for it.
    pub state: String,
    /// What the guard holds: its limits now against the originals, or `-`.
    pub holds: String,
    /// Whether the guard holds a restore point for it (a release can put the
    /// originals back).
    pub releasable: bool,
}

/// One budget with where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BudgetLine {
    /// The budget's name.
    pub id: String,
    /// Its stored version.
    pub version: u64,
    /// Its scope.
    pub scope: String,
    /// `day` or `month`.
    pub period: String,
    /// The period's start and end.
    pub period_bounds: (DateTime<Utc>, DateTime<Utc>),
    /// The amount.
    pub amount: Money,
    /// Its thresholds, comma-separated.
    pub thresholds: String,
    /// `enforce` or `dry-run`.
    pub mode: String,
    /// Its owner.
    pub owner: String,
    /// Spent so far, when the assessment measured it.
    pub spent: Option<Money>,
    /// Projected at the end of the period.
    pub projected: Option<Money>,
    /// Burn rates, short and long window.
    pub burn: (String, String),
    /// The level the core judges: `normal`, `watch`, `throttle(n)`, `stop`.
    pub level: String,
    /// The targets it covers.
    pub targets: Vec<TargetLine>,
}

/// One audit record, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditLine {
    /// When.
    pub at: DateTime<Utc>,
    /// The target or budget.
    pub subject: String,
    /// Who: the guard's function, a person, or the console.
    pub actor: String,
    /// What changed, from what to what.
    pub what: String,
    /// ok, skipped or failed.
    pub outcome: String,
    /// Why: the rule and the figures.
    pub why: String,
}

const STYLE: &str = "<style>\
table.dg{border-collapse:collapse;width:100%;font-size:13px}\
table.dg th,table.dg td{border-bottom:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}\
tr.normal td.level{color:#1d8102}tr.watch td.level{color:#8a6d00;font-weight:bold}\
tr.throttle td.level,tr.stop td.level{color:#d13212;font-weight:bold}\
tr.throttle,tr.stop{background:#fdf3f1}tr.watch{background:#fffbe6}\
p.err{color:#d13212;margin:2px 0}p.ok{color:#1d8102}\
form.dg label{display:inline-block;width:8em}form.dg div{margin:3px 0}\
a.btn{cursor:pointer}\
</style>";

/// The CSS class of a level: its name without the throttle level's number.
fn class_of(level: &str) -> &'static str {
    if level.starts_with("throttle") {
        "throttle"
    } else if level == "stop" {
        "stop"
    } else if level == "watch" {
        "watch"
    } else {
        "normal"
    }
}

fn money(m: Option<Money>) -> String {
    m.map_or_else(|| "-".into(), |m| m.to_string())
}

fn page(id: &str, body: &str) -> String {
    format!("<div class=\"dowguard\" id=\"{id}\">{STYLE}{body}</div>")
}

/// The budgets widget: one row per budget, coloured by its level, with a change
/// link per budget when `edit` is given (writes on).
pub fn budgets(lines: &[BudgetLine], now: DateTime<Utc>, edit: Option<&Endpoint>) -> String {
    let mut body = String::from(
        "<table class=\"dg\" id=\"budgets\"><thead><tr><th>budget</th><th>scope</th><th>spent</th>\
<th>projected</th><th>amount</th><th>burn short / long</th><th>level</th><th>mode</th><th>owner</th>\
<th>targets: state, what the guard holds</th>",
    );
    if edit.is_some() {
        body.push_str("<th></th>");
    }
    body.push_str("</tr></thead><tbody>");
    for b in lines {
        let targets: String = b
            .targets
            .iter()
            .map(|t| {
                let release = match edit {
                    Some(endpoint) if t.releasable => format!(
                        " <a class=\"btn release\">Release</a>{}",
                        endpoint.action(
                            &json!({"action": "release", "target": t.target}),
                            Some(&format!(
                                "Put {}'s original limits back now? The guard holds off tightening it for an hour.",
                                t.target
                            ))
                        )
                    ),
                    _ => String::new(),
                };
                format!(
                    "<div class=\"target\">{}: {}; {}{release}</div>",
                    escape(&t.target),
                    escape(&t.state),
                    escape(&t.holds)
                )
            })
            .collect();
        body.push_str(&format!(
            "<tr class=\"{}\"><td class=\"id\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} a {}</td>\
<td>{} / {}</td><td class=\"level\">{}</td><td>{}</td><td>{}</td><td>{}</td>",
            class_of(&b.level),
            escape(&b.id),
            escape(&b.scope),
            money(b.spent),
            money(b.projected),
            b.amount,
            escape(&b.period),
            escape(&b.burn.0),
            escape(&b.burn.1),
            escape(&b.level),
            escape(&b.mode),
            escape(&b.owner),
            if targets.is_empty() { "-".into() } else { targets }
        ));
        if let Some(endpoint) = edit {
            body.push_str(&format!(
                "<td><a class=\"btn\">Change</a>{}</td>",
                endpoint.action(&json!({"action": "edit", "budget": b.id}), None)
            ));
        }
        body.push_str("</tr>");
    }
    body.push_str("</tbody></table>");
    if lines.is_empty() {
        body.push_str("<p class=\"empty\">No budgets yet.</p>");
    }
    body.push_str(&format!(
        "<p class=\"at\">As of {}</p>",
        now.format("%Y-%m-%d %H:%M UTC")
    ));
    page("dowguard-budgets", &body)
}

const W: i64 = 480;
const H: i64 = 160;
const PAD: i64 = 30;

/// `value / max` of `span` pixels, in whole pixels (no float).
fn scale(value: Decimal, max: Decimal, span: i64) -> i64 {
    if max <= Decimal::ZERO {
        return 0;
    }
    let px = (value * Decimal::from(span) / max).round();
    i64::try_from(px).unwrap_or(span).clamp(0, span)
}

fn x_of(t: DateTime<Utc>, (start, end): (DateTime<Utc>, DateTime<Utc>)) -> i64 {
    let total = (end - start).num_seconds();
    let at = (t - start).num_seconds();
    PAD + scale(Decimal::from(at), Decimal::from(total), W - 2 * PAD)
}

/// One budget's chart (SVG): spend so far from the start of the period to now,
/// the projection from now to the end of the period, the budget line, and the
/// guard's actions marked on the time axis (`marks`).
pub fn chart(b: &BudgetLine, marks: &[AuditLine], now: DateTime<Utc>) -> String {
    let amount = b.amount.to_decimal();
    let spent = b.spent.map_or(Decimal::ZERO, Money::to_decimal);
    let projected = b.projected.map_or(spent, Money::to_decimal);
    let top = amount.max(projected).max(spent) * Decimal::new(11, 1);
    let y = |v: Decimal| H - PAD - scale(v, top, H - 2 * PAD);
    let (x0, x1) = (PAD, W - PAD);
    let xn = x_of(now.clamp(b.period_bounds.0, b.period_bounds.1), b.period_bounds);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\">\
<title>{} spend against its budget</title>\
<line class=\"axis\" x1=\"{x0}\" y1=\"{}\" x2=\"{x1}\" y2=\"{}\" stroke=\"#888\"/>\
<line class=\"budget\" x1=\"{x0}\" y1=\"{ya}\" x2=\"{x1}\" y2=\"{ya}\" stroke=\"#d13212\" stroke-dasharray=\"4 3\"/>\
<text x=\"{x1}\" y=\"{label}\" font-size=\"10\" text-anchor=\"end\">budget {}</text>\
<polyline class=\"spent\" fill=\"none\" stroke=\"#0073bb\" stroke-width=\"2\" points=\"{x0},{} {xn},{}\"/>\
<polyline class=\"projection\" fill=\"none\" stroke=\"#0073bb\" stroke-dasharray=\"2 3\" points=\"{xn},{} {x1},{}\"/>",
        escape(&b.id),
        H - PAD,
        H - PAD,
        b.amount,
        y(Decimal::ZERO),
        y(spent),
        y(spent),
        y(projected),
        ya = y(amount),
        label = y(amount) - 3,
    );
    for m in marks {
        if m.at < b.period_bounds.0 || m.at > b.period_bounds.1 {
            continue;
        }
        let x = x_of(m.at, b.period_bounds);
        svg.push_str(&format!(
            "<line class=\"action\" x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"#8a6d00\"><title>{} {}: {}</title></line>",
            PAD,
            H - PAD,
            m.at.format("%H:%M"),
            escape(&m.subject),
            escape(&m.what)
        ));
    }
    svg.push_str(&format!(
        "<text x=\"{x0}\" y=\"{}\" font-size=\"10\">{}</text><text x=\"{x1}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\">{}</text></svg>",
        H - PAD + 14,
        b.period_bounds.0.format("%Y-%m-%d %H:%M"),
        H - PAD + 14,
        b.period_bounds.1.format("%Y-%m-%d %H:%M")
    ));
    svg
}

/// The charts widget: one chart per budget, with the actions on its targets.
pub fn charts(lines: &[BudgetLine], audit: &[AuditLine], now: DateTime<Utc>) -> String {
    let mut body = String::new();
    for b in lines {
        let marks: Vec<AuditLine> = audit
            .iter()
            .filter(|a| a.subject == b.id || b.targets.iter().any(|t| t.target == a.subject))
            .cloned()
            .collect();
        body.push_str(&format!(
            "<div class=\"budget-chart\"><h4>{}: spent {} of {}, projected {}</h4>{}</div>",
            escape(&b.id),
            money(b.spent),
            b.amount,
            money(b.projected),
            chart(b, &marks, now)
        ));
    }
    if lines.is_empty() {
        body.push_str("<p class=\"empty\">No budgets yet.</p>");
    }
    page("dowguard-charts", &body)
}

/// The audit widget: every record of the time range, newest first.
pub fn audit(lines: &[AuditLine]) -> String {
    let mut body = String::from(
        "<table class=\"dg\" id=\"audit\"><thead><tr><th>at</th><th>target or budget</th><th>who</th>\
<th>what</th><th>outcome</th><th>why</th></tr></thead><tbody>",
    );
    for a in lines {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            a.at.format("%Y-%m-%d %H:%M:%S"),
            escape(&a.subject),
            escape(&a.actor),
            escape(&a.what),
            escape(&a.outcome),
            escape(&a.why)
        ));
    }
    body.push_str("</tbody></table>");
    if lines.is_empty() {
        body.push_str("<p class=\"empty\">Nothing recorded in this time range.</p>");
    }
    page("dowguard-audit", &body)
}

/// A form's field and what is wrong with it, if anything.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FormValues {
    /// Dollars.
    pub amount: String,
    /// `day` or `month`.
    pub period: String,
    /// Comma-separated multiples.
    pub thresholds: String,
    /// `enforce` or `dry-run`.
    pub mode: String,
    /// Who owns it.
    pub owner: String,
}

/// The form fields, in order: (name, label).
pub const FIELDS: [(&str, &str); 5] = [
    ("amount", "Amount ($)"),
    ("period", "Period"),
    ("thresholds", "Thresholds"),
    ("mode", "Mode"),
    ("owner", "Owner"),
];

impl FormValues {
    fn get(&self, field: &str) -> &str {
        match field {
            "amount" => &self.amount,
            "period" => &self.period,
            "thresholds" => &self.thresholds,
            "mode" => &self.mode,
            _ => &self.owner,
        }
    }
}

fn choice(name: &str, value: &str, options: &[&str]) -> String {
    let opts: String = options
        .iter()
        .map(|o| {
            let selected = if *o == value { " selected=\"selected\"" } else { "" };
            format!("<option value=\"{o}\"{selected}>{o}</option>")
        })
        .collect();
    format!("<select name=\"{name}\" id=\"f-{name}\">{opts}</select>")
}

/// The form to change a budget: its fields with their values, each field's
/// message (`errors`: field, message), a general message, and a save button that
/// asks for confirmation and sends the version the form was made from.
pub fn form(
    id: &str,
    version: u64,
    values: &FormValues,
    errors: &[(String, String)],
    message: Option<&str>,
    endpoint: &Endpoint,
) -> String {
    let mut body = format!("<h4>Change budget {} (version {version})</h4>", escape(id));
    if let Some(m) = message {
        body.push_str(&format!("<p class=\"err\" id=\"message\">{}</p>", escape(m)));
    }
    body.push_str("<form class=\"dg\">");
    for (name, label) in FIELDS {
        let value = values.get(name);
        let input = match name {
            "period" => choice(name, value, &["day", "month"]),
            "mode" => choice(name, value, &["dry-run", "enforce"]),
            _ => format!(
                "<input type=\"text\" name=\"{name}\" id=\"f-{name}\" value=\"{}\"/>",
                escape(value)
            ),
        };
        body.push_str(&format!(
            "<div><label for=\"f-{name}\">{label}</label>{input}</div>"
        ));
        for (_, e) in errors.iter().filter(|(f, _)| f == name) {
            body.push_str(&format!("<p class=\"err\" id=\"err-{name}\">{}</p>", escape(e)));
        }
    }
    body.push_str("</form>");
    body.push_str(&format!(
        "<a class=\"btn btn-primary\" id=\"save\">Save</a>{} <a class=\"btn\" id=\"cancel\">Cancel</a>{}",
        endpoint.action(
            &json!({"action": "save", "budget": id, "version": version}),
            Some(&format!(
                "Change budget {id}? The guard uses the new values from its next pass."
            ))
        ),
        endpoint.action(&json!({"widget": "budgets"}), None)
    ));
    page("dowguard-form", &body)
}

/// What a change did: a message, and a link back to the budgets.
pub fn done(message: &str, ok: bool, endpoint: &Endpoint) -> String {
    let class = if ok { "ok" } else { "err" };
    page(
        "dowguard-result",
        &format!(
            "<p class=\"{class}\" id=\"message\">{}</p><a class=\"btn\" id=\"back\">Back to the budgets</a>{}",
            escape(message),
            endpoint.action(&json!({"widget": "budgets"}), None)
        ),
    )
}

/// Why the widget could not answer, without internals.
pub fn failure(message: &str) -> String {
    page(
        "dowguard-error",
        &format!("<p class=\"err\" id=\"message\">{}</p>", escape(message)),
    )
}
