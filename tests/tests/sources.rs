//! The source actuators against the local server, through the executor and the
//! real adapters, each hold written to the stage's guard state first: an API key
//! quarantined and released, addresses blocked and unblocked, each exactly; a
//! retried pass; dry-run.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

use std::collections::{BTreeSet, HashMap};

use aws_sdk_wafv2::types::{IpAddressVersion, Scope, Tag};
use chrono::Utc;
use dowguard_adapters::dynamodb::{DynamoStore, create_table};
use dowguard_adapters::stack::{AwsStack, StackConfig};
use dowguard_domain::source::{HeldSource, IpSetRef, cidr_of};
use dowguard_domain::{
    Action, BurnRate, GuardState, Intent, Level, Limits, Mode, Money, Phase, Reason, RestorePoint, Rule,
    Target, TargetId, TargetSpec, UsagePlanId, targeted,
};
use dowguard_guard::ports::{CallerRanking, StateStore};
use dowguard_guard::{Executor, Outcome};
use dowguard_tests::LocalAws;
use dowguard_tests::fixtures::{create_rest_api, create_usage_plan, insight_rules};

const TABLE: &str = "dowguard-sources";

fn action(stage: &TargetId, change: dowguard_domain::Change, intent: Intent, apply: bool) -> Action {
    Action {
        target: stage.clone(),
        change,
        intent,
        mode: if apply { Mode::Enforce } else { Mode::DryRun },
        apply,
        priority: Money::ZERO,
        reason: Reason {
            budget: None,
            rule: Rule::MultiWindow,
            level: Level::Throttle(1),
            spent: Money::ZERO,
            amount: Money::ZERO,
            projected: Money::ZERO,
            burn_short: BurnRate(0),
            burn_long: BurnRate(0),
        },
    }
}

/// A REST API stage with a usage plan holding two keys, a quarantine plan holding
/// one, and the guard's table and adapters.
struct World {
    aws: LocalAws,
    stack: AwsStack,
    store: DynamoStore,
    stage: TargetId,
    gold: UsagePlanId,
    quarantine: UsagePlanId,
    stolen: String,
}

impl World {
    async fn new() -> Self {
        let aws = LocalAws::start().await.unwrap();
        let sdk = aws.sdk_config();
        let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
        create_table(&dynamo, TABLE).await.unwrap();
        let store = DynamoStore::new(dynamo, TABLE, chrono::Duration::days(90));
        let api = create_rest_api(&aws, "shop", "prod").await.unwrap();
        let gold = create_usage_plan(&aws, &api, "prod").await.unwrap();
        let quarantine = create_usage_plan(&aws, &api, "prod").await.unwrap();
        let gateway = aws_sdk_apigateway::Client::new(&sdk);
        let mut keys = Vec::new();
        for (name, plan) in [("stolen", &gold), ("customer", &gold), ("earlier", &quarantine)] {
            let key = gateway
                .create_api_key()
                .name(name)
                .enabled(true)
                .send()
                .await
                .unwrap();
            let id = key.id().unwrap().to_string();
            gateway
                .create_usage_plan_key()
                .usage_plan_id(plan)
                .key_id(&id)
                .key_type("API_KEY")
                .send()
                .await
                .unwrap();
            keys.push(id);
        }
        let stack = AwsStack::new(&sdk, &StackConfig::new(TABLE));
        World {
            stage: TargetId::parse(&format!("rest-stage:{api}/prod")).unwrap(),
            gold: UsagePlanId::parse(&gold).unwrap(),
            quarantine: UsagePlanId::parse(&quarantine).unwrap(),
            stolen: keys[0].clone(),
            aws,
            stack,
            store,
        }
    }

    async fn keys(&self, plan: &UsagePlanId) -> BTreeSet<String> {
        aws_sdk_apigateway::Client::new(&self.aws.sdk_config())
            .get_usage_plan_keys()
            .usage_plan_id(plan.as_str())
            .send()
            .await
            .unwrap()
            .items()
            .iter()
            .filter_map(|k| k.id().map(str::to_string))
            .collect()
    }

    /// Writes the stage's state holding `held` (its restore point: the stage's
    /// limits, which targeted levels leave as they are), as a pass does before it
    /// acts; returns the stored state.
    async fn save_held(&self, held: Vec<HeldSource>) -> GuardState {
        let now = Utc::now();
        let stored = self.store.load_states().await.unwrap();
        let mut state = stored
            .get(&self.stage)
            .cloned()
            .unwrap_or_else(|| GuardState::new(now, Mode::Enforce));
        state.held_sources = held;
        if state.held_sources.is_empty() {
            state.phase = Phase::Normal;
            state.restore_point = None;
        } else {
            state.phase = Phase::Throttled { level: 1 };
            state.restore_point.get_or_insert(RestorePoint {
                limits: Limits::stage(None),
                captured_at: now,
            });
        }
        state.version = self.store.save_state(&self.stage, &state).await.unwrap();
        state
    }

    async fn run(&self, actions: &[Action]) -> Vec<Outcome> {
        let executor = Executor {
            account: &self.stack.account,
            notifier: &self.stack.notifier,
        };
        executor.run(actions, &HashMap::new()).await
    }

    fn stolen_key(&self) -> HeldSource {
        HeldSource::Quarantined {
            since: since(),
            key: self.stolen.clone(),
            original_plan: self.gold.clone(),
            quarantine_plan: self.quarantine.clone(),
        }
    }
}

#[tokio::test]
async fn a_key_is_quarantined_and_released_back_to_its_own_plan_exactly() {
    let w = World::new().await;
    let (gold, quarantine) = (w.keys(&w.gold).await, w.keys(&w.quarantine).await);

    let state = w.save_held(vec![w.stolen_key()]).await;
    let hold: Vec<Action> = targeted::hold(&w.stage, &state.held_sources)
        .into_iter()
        .map(|c| action(&w.stage, c, Intent::Tighten, true))
        .collect();
    assert_eq!(w.run(&hold).await, vec![Outcome::Applied]);
    let mut expected_gold = gold.clone();
    expected_gold.remove(&w.stolen);
    let mut expected_quarantine = quarantine.clone();
    expected_quarantine.insert(w.stolen.clone());
    assert_eq!(w.keys(&w.gold).await, expected_gold);
    assert_eq!(w.keys(&w.quarantine).await, expected_quarantine);

    // A retried pass (the answer was lost): success, and nothing moves again.
    assert_eq!(w.run(&hold).await, vec![Outcome::Applied]);
    assert_eq!(w.keys(&w.gold).await, expected_gold);
    assert_eq!(w.keys(&w.quarantine).await, expected_quarantine);

    // The release is what the stored state says, read back from the table.
    let stored = w.store.load_states().await.unwrap()[&w.stage].clone();
    assert_eq!(stored.held_sources, vec![w.stolen_key()]);
    let release: Vec<Action> = targeted::release(&w.stage, &stored.held_sources)
        .into_iter()
        .map(|c| action(&w.stage, c, Intent::Restore, true))
        .collect();
    assert_eq!(w.run(&release).await, vec![Outcome::Applied]);
    w.save_held(Vec::new()).await;
    assert_eq!(w.keys(&w.gold).await, gold);
    assert_eq!(w.keys(&w.quarantine).await, quarantine);
}

#[tokio::test]
async fn a_key_cut_off_between_leaving_and_joining_is_put_in_its_new_plan_by_the_next_pass() {
    let w = World::new().await;
    // The first pass removed the key from its plan and ended before it added it to
    // the quarantine plan.
    aws_sdk_apigateway::Client::new(&w.aws.sdk_config())
        .delete_usage_plan_key()
        .usage_plan_id(w.gold.as_str())
        .key_id(&w.stolen)
        .send()
        .await
        .unwrap();
    let state = w.save_held(vec![w.stolen_key()]).await;
    let hold: Vec<Action> = targeted::hold(&w.stage, &state.held_sources)
        .into_iter()
        .map(|c| action(&w.stage, c, Intent::Tighten, true))
        .collect();
    assert_eq!(w.run(&hold).await, vec![Outcome::Applied]);
    assert!(w.keys(&w.quarantine).await.contains(&w.stolen));
    assert!(!w.keys(&w.gold).await.contains(&w.stolen));
}

async fn create_ip_set(aws: &LocalAws, addresses: &[&str]) -> IpSetRef {
    let set = aws_sdk_wafv2::Client::new(&aws.sdk_config())
        .create_ip_set()
        .name("dowguard-blocked")
        .scope(Scope::Regional)
        .ip_address_version(IpAddressVersion::Ipv4)
        .description("addresses the on-call team blocks")
        .set_addresses(Some(addresses.iter().map(|a| (*a).to_string()).collect()))
        .tags(
            Tag::builder()
                .key("dowguard-guarded")
                .value("true")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let summary = set.summary().unwrap();
    IpSetRef {
        name: summary.name().unwrap().to_string(),
        id: summary.id().unwrap().to_string(),
        scope: "REGIONAL".into(),
    }
}

async fn addresses(aws: &LocalAws, set: &IpSetRef) -> (BTreeSet<String>, Option<String>) {
    let read = aws_sdk_wafv2::Client::new(&aws.sdk_config())
        .get_ip_set()
        .name(&set.name)
        .scope(Scope::Regional)
        .id(&set.id)
        .send()
        .await
        .unwrap();
    let set = read.ip_set().unwrap();
    (
        set.addresses().iter().cloned().collect(),
        set.description().map(str::to_string),
    )
}

#[tokio::test]
async fn addresses_are_blocked_and_unblocked_exactly_and_the_sets_other_entries_are_kept() {
    let w = World::new().await;
    let set = create_ip_set(&w.aws, &["192.0.2.0/24", "198.51.100.1/32"]).await;
    let before = addresses(&w.aws, &set).await;
    let held: Vec<HeldSource> = ["203.0.113.7", "203.0.113.8"]
        .into_iter()
        .map(|ip| HeldSource::Blocked {
            since: since(),
            address: cidr_of(ip),
            ip_set: set.clone(),
        })
        .collect();

    let state = w.save_held(held.clone()).await;
    let hold: Vec<Action> = targeted::hold(&w.stage, &state.held_sources)
        .into_iter()
        .map(|c| action(&w.stage, c, Intent::Tighten, true))
        .collect();
    assert_eq!(w.run(&hold).await, vec![Outcome::Applied]);
    let mut expected = before.0.clone();
    expected.extend(["203.0.113.7/32".to_string(), "203.0.113.8/32".to_string()]);
    assert_eq!(
        addresses(&w.aws, &set).await,
        (expected.clone(), before.1.clone())
    );

    // A retried pass adds nothing twice.
    assert_eq!(w.run(&hold).await, vec![Outcome::Applied]);
    assert_eq!(addresses(&w.aws, &set).await.0, expected);

    // Someone else blocks an address while the guard holds its own.
    let client = aws_sdk_wafv2::Client::new(&w.aws.sdk_config());
    let read = client
        .get_ip_set()
        .name(&set.name)
        .scope(Scope::Regional)
        .id(&set.id)
        .send()
        .await
        .unwrap();
    let mut theirs: Vec<String> = read.ip_set().unwrap().addresses().to_vec();
    theirs.push("198.51.100.99/32".into());
    client
        .update_ip_set()
        .name(&set.name)
        .scope(Scope::Regional)
        .id(&set.id)
        .set_addresses(Some(theirs))
        .set_description(before.1.clone())
        .lock_token(read.lock_token().unwrap())
        .send()
        .await
        .unwrap();

    let stored = w.store.load_states().await.unwrap()[&w.stage].clone();
    let release: Vec<Action> = targeted::release(&w.stage, &stored.held_sources)
        .into_iter()
        .map(|c| action(&w.stage, c, Intent::Restore, true))
        .collect();
    assert_eq!(w.run(&release).await, vec![Outcome::Applied]);
    w.save_held(Vec::new()).await;
    let mut after = before.0.clone();
    after.insert("198.51.100.99/32".into());
    assert_eq!(
        addresses(&w.aws, &set).await,
        (after, before.1),
        "only the guard's own addresses left the set"
    );
}

#[tokio::test]
async fn dry_run_moves_no_key_and_blocks_no_address() {
    let w = World::new().await;
    let set = create_ip_set(&w.aws, &["192.0.2.0/24"]).await;
    let (gold, quarantine, before) = (
        w.keys(&w.gold).await,
        w.keys(&w.quarantine).await,
        addresses(&w.aws, &set).await,
    );
    let held = vec![
        w.stolen_key(),
        HeldSource::Blocked {
            since: since(),
            address: cidr_of("203.0.113.7"),
            ip_set: set.clone(),
        },
    ];
    let hold: Vec<Action> = targeted::hold(&w.stage, &held)
        .into_iter()
        .map(|c| action(&w.stage, c, Intent::Tighten, false))
        .collect();
    let outcomes = w.run(&hold).await;
    assert_eq!(outcomes.len(), 2);
    assert!(
        outcomes.iter().all(|o| matches!(o, Outcome::Skipped { .. })),
        "{outcomes:?}"
    );
    assert_eq!(w.keys(&w.gold).await, gold);
    assert_eq!(w.keys(&w.quarantine).await, quarantine);
    assert_eq!(addresses(&w.aws, &set).await, before);
}

/// When the guard took hold of the sources of these tests.
fn since() -> chrono::DateTime<Utc> {
    chrono::DateTime::from_timestamp(1_795_500_000, 0).unwrap_or_default()
}

#[tokio::test]
async fn a_stages_levers_are_its_plans_keys_and_the_ip_set_its_web_acl_blocks() {
    let w = World::new().await;
    // The keys of the stage's plan, as the quarantine needs them.
    let keys: BTreeSet<String> = w
        .stack
        .account
        .rest
        .plan_keys(&w.gold)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(keys, w.keys(&w.gold).await);
    assert!(keys.contains(&w.stolen));

    // A web ACL whose rule blocks an IP set, attached to the stage.
    let TargetId::RestStage(api, stage) = &w.stage else {
        panic!("a REST stage");
    };
    let stage_arn = format!("arn:aws:apigateway:us-east-1::/restapis/{api}/stages/{stage}");
    assert_eq!(
        w.stack.account.waf.blocking_ip_set(&stage_arn).await.unwrap(),
        None,
        "no web ACL yet"
    );
    let set = create_ip_set(&w.aws, &[]).await;
    attach_blocking_acl(&w.aws, &stage_arn, &set).await;
    assert_eq!(
        w.stack.account.waf.blocking_ip_set(&stage_arn).await.unwrap(),
        Some(set)
    );
}

/// A web ACL whose one rule blocks the addresses of `set`, attached to the stage
/// `stage_arn`.
async fn attach_blocking_acl(aws: &LocalAws, stage_arn: &str, set: &IpSetRef) {
    let waf = aws_sdk_wafv2::Client::new(&aws.sdk_config());
    let set_arn = waf
        .get_ip_set()
        .name(&set.name)
        .scope(Scope::Regional)
        .id(&set.id)
        .send()
        .await
        .unwrap()
        .ip_set()
        .unwrap()
        .arn()
        .to_string();
    let visibility = || {
        aws_sdk_wafv2::types::VisibilityConfig::builder()
            .sampled_requests_enabled(false)
            .cloud_watch_metrics_enabled(false)
            .metric_name("dowguard")
            .build()
            .unwrap()
    };
    let acl = waf
        .create_web_acl()
        .name("shop")
        .scope(Scope::Regional)
        .default_action(
            aws_sdk_wafv2::types::DefaultAction::builder()
                .allow(aws_sdk_wafv2::types::AllowAction::builder().build())
                .build(),
        )
        .rules(
            aws_sdk_wafv2::types::Rule::builder()
                .name("blocked-callers")
                .priority(0)
                .action(
                    aws_sdk_wafv2::types::RuleAction::builder()
                        .block(aws_sdk_wafv2::types::BlockAction::builder().build())
                        .build(),
                )
                .statement(
                    aws_sdk_wafv2::types::Statement::builder()
                        .ip_set_reference_statement(
                            aws_sdk_wafv2::types::IpSetReferenceStatement::builder()
                                .arn(&set_arn)
                                .build()
                                .unwrap(),
                        )
                        .build(),
                )
                .visibility_config(visibility())
                .build()
                .unwrap(),
        )
        .visibility_config(visibility())
        .send()
        .await
        .unwrap();
    waf.associate_web_acl()
        .web_acl_arn(acl.summary().unwrap().arn().unwrap())
        .resource_arn(stage_arn)
        .send()
        .await
        .unwrap();
}

/// The hourly sync keeps one ranking rule per caller kind that the stage's access
/// log names and a lever can hold: API keys once the deployment has a quarantine
/// plan and the stage is in a usage plan, addresses once a web ACL blocking an IP
/// set is attached; none without access logs; all deleted when ranking is off.
#[tokio::test]
async fn the_sync_keeps_a_ranking_rule_for_each_caller_kind_a_lever_can_hold() {
    let w = World::new().await;
    let sdk = w.aws.sdk_config();
    let mut config = StackConfig::new(TABLE);
    config.quarantine_plan = Some(w.quarantine.clone());
    let stack = AwsStack::new(&sdk, &config);
    let TargetId::RestStage(api, stage_name) = &w.stage else {
        panic!("a REST stage");
    };
    let mut target = Target::new(
        w.stage.clone(),
        TargetSpec::RestStage,
        Default::default(),
        Limits::unset(w.stage.kind()),
    );
    target.usage_plans = BTreeSet::from([w.gold.clone()]);
    let rules = || async {
        insight_rules(&w.aws)
            .await
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect::<Vec<_>>()
    };

    // No access logs yet: nothing to rank, and the answer says why.
    let synced = stack
        .account
        .sync_rankings(std::slice::from_ref(&target))
        .await
        .unwrap();
    assert_eq!(synced.kept, 0);
    assert_eq!(
        synced.unrankable,
        vec![(w.stage.clone(), "the stage has no access logs".to_string())]
    );

    // JSON access logs naming the address and the key, to a log group.
    let log_group =
        format!("arn:aws:logs:us-east-1:123456789012:log-group:API-Gateway-Access-Logs_{api}/{stage_name}");
    let format = r#"{"requestId":"$context.requestId","ip":"$context.identity.sourceIp","key":"$context.identity.apiKeyId"}"#;
    aws_sdk_apigateway::Client::new(&sdk)
        .update_stage()
        .rest_api_id(api.as_str())
        .stage_name(stage_name.as_str())
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/accessLogSettings/destinationArn")
                .value(&log_group)
                .build(),
        )
        .patch_operations(
            aws_sdk_apigateway::types::PatchOperation::builder()
                .op(aws_sdk_apigateway::types::Op::Replace)
                .path("/accessLogSettings/format")
                .value(format)
                .build(),
        )
        .send()
        .await
        .unwrap();
    let keys_rule = dowguard_adapters::insights::rule_name(
        api.as_str(),
        stage_name.as_str(),
        dowguard_adapters::insights::CallerKind::ApiKey,
    );
    let addresses_rule = dowguard_adapters::insights::rule_name(
        api.as_str(),
        stage_name.as_str(),
        dowguard_adapters::insights::CallerKind::Address,
    );
    let synced = stack
        .account
        .sync_rankings(std::slice::from_ref(&target))
        .await
        .unwrap();
    assert_eq!((synced.kept, synced.written), (1, 1), "{synced:?}");
    assert_eq!(
        rules().await,
        vec![keys_rule.clone()],
        "keys only: no web ACL yet"
    );

    // A web ACL that blocks an IP set: the addresses get their rule too.
    let set = create_ip_set(&w.aws, &[]).await;
    let stage_arn = format!("arn:aws:apigateway:us-east-1::/restapis/{api}/stages/{stage_name}");
    attach_blocking_acl(&w.aws, &stage_arn, &set).await;
    let synced = stack
        .account
        .sync_rankings(std::slice::from_ref(&target))
        .await
        .unwrap();
    assert_eq!((synced.kept, synced.written), (2, 1), "{synced:?}");
    let mut both = vec![addresses_rule, keys_rule];
    both.sort();
    assert_eq!(rules().await, both);

    // Ranking turned off: the deployment's rules go at the next sync.
    let mut off = config.clone();
    off.caller_ranking = false;
    let synced = AwsStack::new(&sdk, &off)
        .account
        .sync_rankings(std::slice::from_ref(&target))
        .await
        .unwrap();
    assert_eq!((synced.kept, synced.deleted), (0, 2), "{synced:?}");
    assert!(rules().await.is_empty());
}
