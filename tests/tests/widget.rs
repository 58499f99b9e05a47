//! The console's widgets against the demo's example account in the local AWS
//! server: every widget rendered after a flood the guard throttled, opened in
//! headless Chromium (screenshots, the browser's errors), and the budget form's
//! writes through the same validation and optimistic lock as `dowguard budgets set`.

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{Duration, DurationRound, Utc};
use dowguard_domain::BudgetId;
use dowguard_guard::inventory::Slices;
use dowguard_guard::ports::BudgetStore;
use dowguard_runtime::{App, Config, Role};
use dowguard_tests::LocalAws;
use dowguard_tests::account::ExampleAccount;
use dowguard_widget::{ACTOR, WidgetSettings, handle_at};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

type Error = Box<dyn std::error::Error + Send + Sync>;

const ENDPOINT: &str = "arn:aws:lambda:us-east-1:123456789012:function:dowguard-widget";

/// Where Debian's `chromium` package puts the browser (`make setup` installs it).
const CHROMIUM: &str = "/usr/bin/chromium";

fn config() -> Result<Config, Error> {
    Ok(dowguard_tests::account::local_config(&[])?)
}

const WRITES: WidgetSettings = WidgetSettings { writes: true };

/// The widget function's answer to `event` now.
async fn call(app: &App, settings: WidgetSettings, event: &Value) -> Value {
    handle_at(app, settings, ENDPOINT, event, Utc::now()).await
}

fn html(out: &Value) -> String {
    out.as_str().unwrap_or_default().to_string()
}

/// A click on "save" with the form's values.
fn save(budget: &str, version: u64, fields: &[(&str, &str)]) -> Value {
    let all: serde_json::Map<String, Value> =
        fields.iter().map(|(k, v)| ((*k).to_string(), json!(v))).collect();
    json!({
        "action": "save", "budget": budget, "version": version,
        "widgetContext": {"dashboardName": "dowguard", "forms": {"all": all}, "width": 800, "height": 400}
    })
}

async fn seeded() -> Result<(LocalAws, App, ExampleAccount), Error> {
    let aws = LocalAws::start().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let example = ExampleAccount::seed(&aws, now).await?;
    let app = App::new(config()?, &aws.sdk_config(), Role::Cli)?;
    app.guard("inventory")
        .keeper()
        .reconcile(Utc::now(), Slices::All)
        .await?;
    Ok((aws, app, example))
}

async fn version_of(app: &App, id: &str) -> Result<Option<(u64, String)>, Error> {
    let id = BudgetId::parse(id)?;
    let listed = app.stack.store.list_budgets().await?;
    Ok(listed
        .items
        .into_iter()
        .find(|b| b.value.id == id)
        .map(|b| (b.version, b.value.amount.to_string())))
}

async fn history_len(app: &App, id: &str) -> Result<usize, Error> {
    Ok(app.stack.store.budget_history(&BudgetId::parse(id)?).await?.len())
}

#[tokio::test]
async fn a_valid_change_from_the_form_is_stored_with_a_new_version_and_audited_as_the_console()
-> Result<(), Error> {
    let (aws, app, _) = seeded().await?;
    let fields = [
        ("amount", "300"),
        ("period", "day"),
        ("thresholds", "1,4,8,14.4"),
        ("mode", "enforce"),
        ("owner", "finance@example.com"),
    ];
    let out = call(&app, WRITES, &save("checkout-daily", 1, &fields)).await;
    assert!(html(&out).contains("saved (version 2)"), "{out}");
    assert_eq!(
        version_of(&app, "checkout-daily").await?,
        Some((2, "$300.00".into()))
    );
    let history = app
        .stack
        .store
        .budget_history(&BudgetId::parse("checkout-daily")?)
        .await?;
    assert_eq!(history.last().map(|c| c.actor.as_str()), Some(ACTOR));
    // The audit widget shows the change and says who could not be known.
    let audit = call(&app, WRITES, &json!({"widget": "audit"})).await;
    assert!(html(&audit).contains(ACTOR), "{audit}");
    drop(aws);
    Ok(())
}

#[tokio::test]
async fn an_invalid_amount_a_stale_version_and_an_unknown_budget_are_refused_and_nothing_is_written()
-> Result<(), Error> {
    let (aws, app, _) = seeded().await?;
    let before = (
        version_of(&app, "checkout-daily").await?,
        history_len(&app, "checkout-daily").await?,
    );

    let bad = call(&app, WRITES, &save("checkout-daily", 1, &[("amount", "lots")])).await;
    let bad = html(&bad);
    assert!(
        bad.contains("id=\"err-amount\"") && bad.contains("Nothing was written"),
        "{bad}"
    );
    assert!(
        bad.contains("value=\"lots\""),
        "the form keeps what was typed: {bad}"
    );

    let stale = call(&app, WRITES, &save("checkout-daily", 7, &[("amount", "300")])).await;
    assert!(
        html(&stale).contains("Someone changed budget checkout-daily"),
        "{stale}"
    );

    let unknown = call(&app, WRITES, &save("no-such-budget", 1, &[("amount", "300")])).await;
    assert!(html(&unknown).contains("No budget no-such-budget"), "{unknown}");
    assert_eq!(version_of(&app, "no-such-budget").await?, None);

    let after = (
        version_of(&app, "checkout-daily").await?,
        history_len(&app, "checkout-daily").await?,
    );
    assert_eq!(before, after, "nothing was written");
    drop(aws);
    Ok(())
}

#[tokio::test]
async fn with_writes_off_the_widgets_offer_no_change_and_refuse_a_forged_save() -> Result<(), Error> {
    let (aws, app, _) = seeded().await?;
    let read_only = WidgetSettings { writes: false };
    let budgets = call(&app, read_only, &json!({"widget": "budgets"})).await;
    assert!(
        html(&budgets).contains("checkout-daily") && !html(&budgets).contains("cwdb-action"),
        "{budgets}"
    );
    let forged = call(&app, read_only, &save("checkout-daily", 1, &[("amount", "1")])).await;
    assert!(html(&forged).contains("turned off"), "{forged}");
    assert_eq!(
        version_of(&app, "checkout-daily").await?,
        Some((1, "$240.00".into()))
    );
    drop(aws);
    Ok(())
}

/// The browser's complaints on stderr that mean the page is broken (its own
/// start-up noise about D-Bus, GPU or sandbox is not about the page).
fn page_errors(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("ERR_FILE_NOT_FOUND"))
        .collect()
}

fn chromium(args: &[&str]) -> Result<std::process::Output, Error> {
    Ok(Command::new(CHROMIUM)
        .args([
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--hide-scrollbars",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .args(args)
        .output()?)
}

fn out_dir() -> Result<PathBuf, Error> {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("widgets");
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// The demo's example account after a flood the evaluator has throttled: the
/// local server, the widget's app, and when the flood ended.
async fn throttled() -> Result<(LocalAws, App, chrono::DateTime<Utc>), Error> {
    let (aws, app, example) = seeded().await?;
    let now = Utc::now().duration_trunc(Duration::minutes(1))?;
    let attack_end = dowguard_tests::account::attack_end_before(now);
    example.flood(&aws, attack_end, 10).await?;
    let tick = {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/events/scheduled-event.json");
        let mut payload: Value = serde_json::from_slice(&std::fs::read(path)?)?;
        payload["time"] = Value::from((attack_end + Duration::minutes(1)).to_rfc3339());
        LambdaEvent::new(payload, Context::default())
    };
    let evaluator = App::new(config()?, &aws.sdk_config(), Role::Evaluator)?;
    dowguard_evaluator::handle(&evaluator, tick)
        .await
        .map_err(|d| d.error_message)?;
    Ok((aws, app, attack_end))
}

async fn reserved(aws: &LocalAws) -> Result<Option<i32>, Error> {
    Ok(aws_sdk_lambda::Client::new(&aws.sdk_config())
        .get_function_concurrency()
        .function_name("checkout")
        .send()
        .await?
        .reserved_concurrent_executions())
}

#[tokio::test]
async fn a_release_from_the_console_puts_the_originals_back_and_is_audited_as_the_console()
-> Result<(), Error> {
    let (aws, app, _) = throttled().await?;
    assert!(
        reserved(&aws).await?.is_some_and(|r| r < 50),
        "the flood was not throttled"
    );
    let budgets = call(&app, WRITES, &json!({"widget": "budgets"})).await;
    assert!(
        html(&budgets).contains("Release</a>"),
        "no release offered: {budgets}"
    );
    let release = json!({"action": "release", "target": "function:checkout"});
    let refused = call(&app, WidgetSettings { writes: false }, &release).await;
    assert!(html(&refused).contains("turned off"), "{refused}");
    assert!(
        reserved(&aws).await?.is_some_and(|r| r < 50),
        "a read-only widget released"
    );
    let out = call(&app, WRITES, &release).await;
    assert!(html(&out).contains("original limits restored"), "{out}");
    assert_eq!(reserved(&aws).await?, Some(50));
    let today = Utc::now().date_naive();
    let records = app.stack.store.audit_of_day(today).await?;
    assert!(
        records
            .iter()
            .any(|r| r.actor == ACTOR && r.target.to_string() == "function:checkout"),
        "no audit record of the release: {records:?}"
    );
    drop(aws);
    Ok(())
}

#[tokio::test]
async fn every_widget_of_the_demo_account_renders_in_chromium_with_its_expected_elements() -> Result<(), Error>
{
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: run `make setup`, which installs Debian's chromium package"
    );
    let (aws, app, attack_end) = throttled().await?;

    let range = json!({"start": (attack_end - Duration::hours(1)).timestamp_millis(), "end": (attack_end + Duration::minutes(2)).timestamp_millis()});
    let event = |params: Value| {
        let mut e = params;
        e["widgetContext"] = json!({"dashboardName": "dowguard", "timeRange": range, "width": 1000, "height": 400, "forms": {"all": {}}});
        e
    };
    let widgets = [
        (
            "budgets",
            event(json!({"widget": "budgets"})),
            vec!["table", "cwdb-action"],
            "throttle",
        ),
        (
            "charts",
            event(json!({"widget": "charts"})),
            vec!["svg", "polyline", "line"],
            "checkout-daily",
        ),
        (
            "audit",
            event(json!({"widget": "audit"})),
            vec!["table", "tr"],
            "reserved concurrency 50 -&gt; ",
        ),
        (
            "form",
            event(json!({"action": "edit", "budget": "checkout-daily"})),
            vec!["form", "input", "select", "cwdb-action"],
            "Change budget checkout-daily",
        ),
    ];
    let dir = out_dir()?;
    let keep = std::env::var_os("DOWGUARD_UPDATE_SCREENSHOTS").is_some();
    for (name, params, elements, text) in widgets {
        let body = html(&call(&app, WRITES, &params).await);
        let doc = roxmltree::Document::parse(&body)
            .map_err(|e| format!("{name} is not well-formed: {e}\n{body}"))?;
        for element in elements {
            assert!(
                doc.descendants().any(|n| n.tag_name().name() == element),
                "{name}: no <{element}>\n{body}"
            );
        }
        assert!(body.contains(text), "{name}: no `{text}`\n{body}");
        // The console shows the HTML inside its own page; the test wraps it in one.
        let file = dir.join(format!("{name}.html"));
        // The console shows a `<cwdb-action>` as a behaviour of the element before it, not as text.
        std::fs::write(
            &file,
            format!(
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"/><style>cwdb-action{{display:none}}</style></head><body>{body}</body></html>"
            ),
        )?;
        let url = format!("file://{}", file.display());
        let png = dir.join(format!("{name}.png"));
        let shot = chromium(&[
            &format!("--screenshot={}", png.display()),
            "--window-size=1000,720",
            &url,
        ])?;
        let stderr = String::from_utf8_lossy(&shot.stderr);
        assert!(shot.status.success(), "{name}: chromium failed: {stderr}");
        assert!(
            page_errors(&stderr).is_empty(),
            "{name}: the browser reported {:?}",
            page_errors(&stderr)
        );
        assert!(std::fs::metadata(&png)?.len() > 1000, "{name}: no screenshot");
        let dom = chromium(&["--dump-dom", &url])?;
        let dumped = String::from_utf8_lossy(&dom.stdout);
        assert!(dumped.contains(text), "{name}: the browser's DOM lacks `{text}`");
        if keep {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/widgets");
            std::fs::create_dir_all(&docs)?;
            std::fs::copy(&png, docs.join(format!("{name}.png")))?;
        }
    }
    drop(aws);
    Ok(())
}

#[tokio::test]
async fn a_hostile_owner_stored_in_the_table_renders_as_text_in_every_widget() -> Result<(), Error> {
    let (aws, app, _) = seeded().await?;
    let hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>";
    let fields = [("owner", hostile)];
    let saved = call(&app, WRITES, &save("checkout-daily", 1, &fields)).await;
    assert!(html(&saved).contains("saved (version 2)"), "{saved}");
    let range = json!({"start": (Utc::now() - Duration::hours(1)).timestamp_millis(), "end": (Utc::now() + Duration::hours(1)).timestamp_millis()});
    for params in [
        json!({"widget": "budgets"}),
        json!({"widget": "charts"}),
        json!({"widget": "audit"}),
        json!({"action": "edit", "budget": "checkout-daily"}),
    ] {
        let mut event = params.clone();
        event["widgetContext"] = json!({"timeRange": range});
        let body = html(&call(&app, WRITES, &event).await);
        let doc = roxmltree::Document::parse(&body).map_err(|e| format!("{params}: {e}\n{body}"))?;
        assert!(
            doc.descendants()
                .all(|n| !matches!(n.tag_name().name(), "script" | "img")),
            "{params}: markup got through\n{body}"
        );
        let shown = doc
            .descendants()
            .any(|n| n.text().is_some_and(|t| t.contains(hostile)))
            || doc.descendants().any(|n| n.attribute("value") == Some(hostile));
        assert!(shown, "{params}: the owner is not shown as text\n{body}");
    }
    drop(aws);
    Ok(())
}
