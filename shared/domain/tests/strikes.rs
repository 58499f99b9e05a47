//! Strikes: a target that relapses soon after an episode waits longer before its
//! originals come back; one that stays calm long enough forgets its strikes.
//!
//! An episode runs from the first tightening to the return to `normal`. A surge
//! while `recovering` is a strike, and so is a new episode within
//! `strike_memory_minutes` of the last one's end; each strike doubles the cool-down
//! (up to `max_backoff_strikes` doublings). A target that stays out of throttling for
//! `strike_memory_minutes` after an episode forgets its strikes.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail loudly on bad fixtures"
)]

mod support;

use chrono::{DateTime, Duration, Utc};
use dowguard_domain::{GuardSettings, Phase, TargetId};
use proptest::prelude::*;
use support::*;

const DAILY: u64 = 240;
const MB: u32 = 512;
const MS: u64 = 100;

fn checkout() -> (World, TargetId) {
    let mut world = World::new()
        .with_target(function("checkout", MB, false, None))
        .with_budget(spec("checkout-daily", "function:checkout", "240"));
    let f = id("function:checkout");
    world.history(&f, 60, quiet());
    (world, f)
}

/// A flood: 40× the day's even pace, well past the fast lane.
fn flood() -> Demand {
    Demand {
        requests: lambda_rate(DAILY, 40, u64::from(MB), MS),
        ms_each: MS,
    }
}

/// Ordinary traffic: half the day's even pace.
fn quiet() -> Demand {
    Demand {
        requests: lambda_rate(DAILY, 1, u64::from(MB), MS) / 2,
        ms_each: MS,
    }
}

/// The time of the pass a `tick` just made.
fn last_pass(world: &World) -> DateTime<Utc> {
    world.now - Duration::minutes(1)
}

/// What one episode came to.
#[derive(Debug)]
struct Episode {
    /// The pass that tightened the target first.
    throttled_at: DateTime<Utc>,
    /// Its strikes on that pass.
    strikes: u32,
    /// How long calm lasted before the originals came back.
    cooldown: Duration,
    /// The pass that found it `normal` again.
    normal_at: DateTime<Utc>,
}

/// Floods the target until the guard tightens it.
fn flood_until_throttled(world: &mut World, f: &TargetId) -> (DateTime<Utc>, u32) {
    for _ in 0..30 {
        world.tick(&[(f.clone(), flood())]);
        if let Some(state) = world.state(f).filter(|s| s.phase.is_tightened()) {
            return (last_pass(world), state.strikes);
        }
    }
    panic!("the flood was never throttled");
}

/// Keeps traffic quiet until the guard restores the originals; returns how long
/// calm had lasted then.
fn quiet_until_restored(world: &mut World, f: &TargetId) -> Duration {
    for _ in 0..600 {
        let calm_since = world.state(f).and_then(|s| s.calm_since);
        let decision = world.tick(&[(f.clone(), quiet())]);
        if !restores(&decision).is_empty() {
            return last_pass(world) - calm_since.expect("calm before the restore");
        }
    }
    panic!("the originals never came back");
}

/// Keeps traffic quiet until the target is `normal` again.
fn quiet_until_normal(world: &mut World, f: &TargetId) -> DateTime<Utc> {
    for _ in 0..600 {
        world.tick(&[(f.clone(), quiet())]);
        if world.state(f).is_some_and(|s| s.phase == Phase::Normal) {
            return last_pass(world);
        }
    }
    panic!("never normal again");
}

fn quiet_for(world: &mut World, f: &TargetId, minutes: i64) {
    for _ in 0..minutes {
        world.tick(&[(f.clone(), quiet())]);
    }
}

fn episode(world: &mut World, f: &TargetId) -> Episode {
    let (throttled_at, strikes) = flood_until_throttled(world, f);
    let cooldown = quiet_until_restored(world, f);
    let normal_at = quiet_until_normal(world, f);
    Episode {
        throttled_at,
        strikes,
        cooldown,
        normal_at,
    }
}

#[test]
fn a_new_episode_within_the_strike_memory_is_a_strike_that_doubles_the_cooldown() {
    let (mut world, f) = checkout();
    let settings = GuardSettings::default();
    let first = episode(&mut world, &f);
    assert_eq!((first.strikes, first.cooldown), (0, settings.cooldown(0)));
    // An hour after the first episode ended, the flood is back.
    quiet_for(&mut world, &f, 60);
    let second = episode(&mut world, &f);
    assert!(second.throttled_at - first.normal_at < Duration::minutes(settings.strike_memory_minutes));
    assert_eq!(second.strikes, 1, "{second:?}");
    assert_eq!(second.cooldown, Duration::minutes(30), "the cool-down doubles");
    // And again: a second strike, the cool-down doubled once more.
    quiet_for(&mut world, &f, 60);
    let third = episode(&mut world, &f);
    assert_eq!(
        (third.strikes, third.cooldown),
        (2, Duration::minutes(60)),
        "{third:?}"
    );
}

#[test]
fn a_calm_longer_than_the_strike_memory_forgets_the_strikes() {
    let (mut world, f) = checkout();
    let settings = GuardSettings::default();
    let memory = Duration::minutes(settings.strike_memory_minutes);
    // A surge while recovering: a strike.
    flood_until_throttled(&mut world, &f);
    quiet_until_restored(&mut world, &f);
    assert_eq!(world.state(&f).map(|s| s.phase), Some(Phase::Recovering));
    let (_, strikes) = flood_until_throttled(&mut world, &f);
    assert_eq!(strikes, 1, "a relapse while recovering is a strike");
    assert_eq!(quiet_until_restored(&mut world, &f), settings.cooldown(1));
    let ended = quiet_until_normal(&mut world, &f);
    // Quiet just short of the memory: still remembered.
    quiet_for(&mut world, &f, settings.strike_memory_minutes - 2);
    assert!(last_pass(&world) - ended < memory);
    assert_eq!(world.state(&f).map(|s| s.strikes), Some(1));
    // Quiet past it: forgotten, and the next episode starts from none.
    quiet_for(&mut world, &f, 2);
    assert!(last_pass(&world) - ended >= memory);
    assert_eq!(world.state(&f).map(|s| s.strikes), Some(0), "strikes forgotten");
    let next = episode(&mut world, &f);
    assert_eq!(
        (next.strikes, next.cooldown),
        (0, settings.cooldown(0)),
        "{next:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Over several episodes with quiet stretches of any length between them, each
    /// new episode's strikes are the last one's plus one when it comes within the
    /// strike memory of the last one's end, and none otherwise; and its cool-down
    /// is doubled once per strike, up to the cap.
    #[test]
    fn strikes_count_relapses_within_the_memory_and_reset_after_it(
        gaps in prop::collection::vec(prop_oneof![0i64..330, 330i64..400, 400i64..600], 1..4),
    ) {
        let (mut world, f) = checkout();
        let settings = GuardSettings::default();
        let memory = Duration::minutes(settings.strike_memory_minutes);
        let mut last = episode(&mut world, &f);
        for gap in gaps {
            quiet_for(&mut world, &f, gap);
            let next = episode(&mut world, &f);
            let expected = if next.throttled_at - last.normal_at < memory {
                last.strikes + 1
            } else {
                0
            };
            prop_assert_eq!(next.strikes, expected, "{:?} after {:?}", next, last);
            prop_assert_eq!(next.cooldown, settings.cooldown(expected));
            last = next;
        }
    }
}
