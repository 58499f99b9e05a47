//! Targeted levels: the sources behind a stage's spend are held before the stage is
//! tightened whole, and let go exactly on restore.

mod support;

use chrono::Duration;
use dowguard_domain::source::{Attribution, HeldSource, IpSetRef, Levers, Source, StageSources};
use dowguard_domain::targeted::{Ladder, Plan, Wait, plan};
use dowguard_domain::{BurnRate, Change, Money, TargetSpec, UsagePlanId, epoch_minute};
use support::{Demand, World, id, rest_stage, restores, spec, tightens};

fn ip_set() -> IpSetRef {
    IpSetRef {
        name: "dowguard-blocked".into(),
        id: "a1b2".into(),
        scope: "REGIONAL".into(),
    }
}

fn plan_id(text: &str) -> UsagePlanId {
    UsagePlanId::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

/// `hot` sources sending `each` requests, then `legit` sources sending one each.
fn ranking(hot: &[Source], each: u64, legit: u64, shown: usize) -> StageSources {
    let mut top: Vec<(Source, u64)> = hot.iter().map(|s| (s.clone(), each)).collect();
    top.extend((0..legit).map(|i| (Source::Address(format!("10.0.{}.{}", i / 250, i % 250)), 1)));
    top.truncate(shown);
    StageSources {
        through_minute: 0,
        window_minutes: 1,
        total_requests: each * hot.len() as u64 + legit,
        distinct: hot.len() as u64 + legit,
        top,
    }
}

const LADDER: Ladder = Ladder {
    burn_short: BurnRate(50_000_000),
    first_throttle: BurnRate(4_000_000),
};

/// A pass at 06:03 whose holds get eight minutes to show.
fn wait() -> Wait {
    Wait {
        now: support::t0() + Duration::minutes(3),
        grace: Duration::minutes(8),
    }
}

#[test]
fn one_stolen_key_is_quarantined_and_the_stage_left_open() {
    let key = Source::ApiKey("stolen".into());
    let sources = ranking(&[key], 100_000, 500, 100);
    let levers = Levers {
        quarantine_plan: Some(plan_id("quarantine")),
        key_plans: [("stolen".to_string(), plan_id("gold"))].into(),
        ip_set: None,
    };
    let Plan::Targeted { hold, .. } = plan(&sources, &levers, &[], LADDER, wait()) else {
        panic!("not targeted");
    };
    assert_eq!(
        hold,
        [HeldSource::Quarantined {
            since: wait().now,
            key: "stolen".into(),
            original_plan: plan_id("gold"),
            quarantine_plan: plan_id("quarantine"),
        }]
    );
}

#[test]
fn three_hundred_addresses_are_blocked_a_ranking_at_a_time() {
    let attackers: Vec<Source> = (0..300)
        .map(|i| Source::Address(format!("198.51.{}.{}", i / 250, i % 250)))
        .collect();
    let levers = Levers {
        ip_set: Some(ip_set()),
        ..Levers::default()
    };
    // The report shows its top 100: all hot, so more may follow; block them, wait.
    let first = ranking(&attackers, 1_000, 10_000, 100);
    let Plan::Targeted { hold, why } = plan(&first, &levers, &[], LADDER, wait()) else {
        panic!("not targeted");
    };
    assert_eq!(hold.len(), 100, "{why}");
    assert!(why.contains("more are held"), "{why}");
    // Next pass, the held ones still in the window count as removed; the next 100 follow.
    let mut second = ranking(&attackers, 1_000, 10_000, 300);
    second.top.drain(..100);
    second.top.truncate(100);
    let Plan::Targeted { hold: more, .. } = plan(&second, &levers, &hold, LADDER, wait()) else {
        panic!("not targeted");
    };
    assert_eq!(more.len(), 100);
    assert!(more.iter().all(|h| !hold.contains(h)));
}

#[test]
fn a_botnet_beyond_an_ip_set_falls_back_to_the_stage_and_says_why() {
    let attackers: Vec<Source> = (0..100_000).map(|i| Source::Address(format!("a{i}"))).collect();
    let levers = Levers {
        ip_set: Some(ip_set()),
        ..Levers::default()
    };
    let sources = ranking(&attackers, 20, 10_000, 100);
    let Plan::Backstop { why } = plan(&sources, &levers, &[], LADDER, wait()) else {
        panic!("targeted a botnet");
    };
    assert!(why.contains("spread over about 110000 callers"), "{why}");
}

#[test]
fn hot_callers_without_a_lever_fall_back_to_the_stage() {
    let sources = ranking(&[Source::Address("198.51.100.1".into())], 100_000, 500, 100);
    let Plan::Backstop { why } = plan(&sources, &Levers::default(), &[], LADDER, wait()) else {
        panic!("targeted without a lever");
    };
    assert!(why.contains("no lever"), "{why}");
}

#[test]
fn even_traffic_has_no_hot_source_and_the_stage_is_tightened_whole() {
    let sources = ranking(&[], 0, 5_000, 100);
    let levers = Levers {
        ip_set: Some(ip_set()),
        ..Levers::default()
    };
    assert!(matches!(
        plan(&sources, &levers, &[], LADDER, wait()),
        Plan::Backstop { .. }
    ));
}

/// A REST stage with a $240 day budget and an hour of traffic at half its pace; the
/// stage and the pace in requests a minute.
fn calm_stage() -> (World, dowguard_domain::TargetId, u64) {
    let mut world = World::new()
        .with_target(rest_stage("a1b2c3d4e5", "prod", None))
        .with_budget(spec("api-daily", "rest-stage:a1b2c3d4e5/prod", "240"));
    let stage = id("rest-stage:a1b2c3d4e5/prod");
    let request = world.prices.list().of(&TargetSpec::RestStage).request();
    let pace = request.units_for(Money::from_dollars(240)) / 1_440;
    world.history(
        &stage,
        60,
        Demand {
            requests: pace / 2,
            ms_each: 0,
        },
    );
    (world, stage, pace)
}

/// A REST stage flooded by one address, with a day budget: the pass blocks the
/// address and leaves the stage's throttle alone; the address stays blocked through
/// the calm and is let go, exactly, when the budget's day ends.
#[test]
fn a_flooding_address_is_blocked_not_the_stage_and_let_go_exactly_when_the_day_ends() {
    let (mut world, stage, pace) = calm_stage();
    let calm = Demand {
        requests: pace / 2,
        ms_each: 0,
    };
    let flood = Demand {
        requests: pace * 100,
        ms_each: 0,
    };
    for m in 1..=3 {
        world.record(&stage, epoch_minute(world.now) - m, flood);
    }
    let attacker = Source::Address("198.51.100.7".into());
    let mut top = vec![(attacker.clone(), pace * 100 - pace / 2)];
    top.extend((0..99).map(|i| (Source::Address(format!("203.0.113.{i}")), 1)));
    world.attribution = Attribution {
        stages: [(
            stage.clone(),
            (
                StageSources {
                    through_minute: epoch_minute(world.now) - 2,
                    window_minutes: 1,
                    total_requests: pace * 100,
                    distinct: 2_000,
                    top,
                },
                Levers {
                    ip_set: Some(ip_set()),
                    ..Levers::default()
                },
            ),
        )]
        .into(),
    };
    let before = world.limits(&stage);
    let decision = world.decide();
    let tightened: Vec<&Change> = tightens(&decision).iter().map(|a| &a.change).collect();
    assert_eq!(
        tightened,
        [&Change::IpSetAddresses {
            stage: stage.clone(),
            ip_set: ip_set(),
            add: vec!["198.51.100.7/32".into()],
            remove: vec![],
        }],
        "{:#?}",
        decision.actions
    );
    world.commit(&decision);
    assert_eq!(world.limits(&stage), before, "the stage is left open");
    let held = &world
        .state(&stage)
        .unwrap_or_else(|| panic!("no state"))
        .held_sources;
    assert_eq!(held.len(), 1);
    // The attacker is gone: hours of calm; the address stays blocked until the
    // budget's day is over (it could come back the minute it is let go).
    world.attribution = Attribution::NONE;
    let mut released = Vec::new();
    let mut free_at = None;
    for _ in 0..24 * 60 {
        world.now += Duration::minutes(1);
        let minute = epoch_minute(world.now) - 1;
        world.record(&stage, minute, calm);
        let decision = world.decide();
        released.extend(restores(&decision).iter().map(|a| a.change.clone()));
        world.commit(&decision);
        if world.state(&stage).is_some_and(|s| s.held_sources.is_empty()) {
            free_at = Some(world.now);
            break;
        }
    }
    let midnight = (support::t0() + Duration::days(1))
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc());
    assert_eq!(free_at, midnight, "let go when the day ends");
    assert_eq!(
        released,
        [Change::IpSetAddresses {
            stage: stage.clone(),
            ip_set: ip_set(),
            add: vec![],
            remove: vec!["198.51.100.7/32".into()],
        }]
    );
    assert_eq!(world.limits(&stage), before);
}

/// Holding the hot caller does not bring the burn down (the flood goes on through
/// the metrics): once the grace is over, the stage is tightened whole, and the
/// notice says why.
#[test]
fn when_holding_callers_does_not_bring_the_burn_down_the_stage_is_the_backstop() {
    let (mut world, stage, pace) = calm_stage();
    let flood = Demand {
        requests: pace * 100,
        ms_each: 0,
    };
    let ranking = |through: i64| {
        let mut top = vec![(Source::Address("198.51.100.7".into()), pace * 60)];
        top.extend((0..99).map(|i| (Source::Address(format!("203.0.113.{i}")), pace * 40 / 2_000)));
        StageSources {
            through_minute: through,
            window_minutes: 1,
            total_requests: pace * 100,
            distinct: 2_000,
            top,
        }
    };
    let levers = Levers {
        ip_set: Some(ip_set()),
        ..Levers::default()
    };
    let mut whole = None;
    for minute in 0..20 {
        world.record(&stage, epoch_minute(world.now) - 1, flood);
        world.attribution = Attribution {
            stages: [(
                stage.clone(),
                (ranking(epoch_minute(world.now) - 2), levers.clone()),
            )]
            .into(),
        };
        let decision = world.decide();
        if tightens(&decision)
            .iter()
            .any(|a| matches!(a.change, Change::StageThrottle { .. }))
        {
            let notices: Vec<String> = decision
                .actions
                .iter()
                .filter_map(|a| match &a.change {
                    Change::Notify { message, .. } => Some(message.clone()),
                    _ => None,
                })
                .collect();
            whole = Some((minute, notices));
            break;
        }
        world.commit(&decision);
        world.now += Duration::minutes(1);
    }
    let (minute, notices) = whole.unwrap_or_else(|| panic!("the stage was never tightened"));
    // The hold's grace is the metric delay and the short window (7 minutes).
    assert!(minute >= 7, "tightened at minute {minute}, inside the grace");
    assert!(
        notices.iter().any(|n| n.contains("the whole stage is tightened")),
        "{notices:?}"
    );
    let held = world.state(&stage).map_or(0, |s| s.held_sources.len());
    assert_eq!(held, 1, "the hot caller stays held under the backstop");
}

/// Of a stage's rankings by address and by API key, the one whose first caller
/// sends the largest share of the requests is used: a stolen key used from many
/// addresses is ranked by key.
#[test]
fn the_sharpest_of_a_stages_rankings_names_its_callers() {
    let by_address = ranking(&[Source::Address("198.51.100.7".into())], 2_000, 98_000, 100);
    let by_key = ranking(&[Source::ApiKey("stolen".into())], 90_000, 10_000, 100);
    let picked = StageSources::sharpest(vec![by_address.clone(), by_key.clone()]);
    assert_eq!(picked, Some(by_key.clone()));
    assert_eq!(
        StageSources::sharpest(vec![by_key, by_address.clone()]).map(|s| s.top[0].0.clone()),
        Some(Source::ApiKey("stolen".into()))
    );
    assert_eq!(StageSources::sharpest(vec![by_address.clone()]), Some(by_address));
    assert_eq!(StageSources::sharpest(Vec::new()), None);
}

/// A note that holds callers prices each one at its share of the stage's spend an
/// hour, naming the first three.
#[test]
fn held_callers_are_priced_at_their_share_of_the_stages_spend() {
    let key = Source::ApiKey("stolen".into());
    let sources = ranking(&[key], 90_000, 10_000, 100);
    let hold = vec![HeldSource::Quarantined {
        since: support::t0(),
        key: "stolen".into(),
        original_plan: plan_id("gold"),
        quarantine_plan: plan_id("quarantine"),
    }];
    assert_eq!(
        dowguard_domain::targeted::priced(&hold, &sources, Money::from_dollars(100)),
        "held now: API key stolen ($90.00/h)"
    );
    let many: Vec<HeldSource> = (0..5)
        .map(|i| HeldSource::Blocked {
            since: support::t0(),
            address: format!("10.0.0.{i}/32"),
            ip_set: ip_set(),
        })
        .collect();
    let text = dowguard_domain::targeted::priced(&many, &sources, Money::from_dollars(100));
    // 10.0.0.0 sent one request of 100,000: $100/h × 1/100,000.
    assert!(
        text.starts_with("held now: address 10.0.0.0 ($0.001000/h)"),
        "{text}"
    );
    assert!(text.ends_with("and 2 more"), "{text}");
}
