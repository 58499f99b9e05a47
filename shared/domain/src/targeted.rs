//! Targeted levels: before the guard tightens a whole API stage, it holds the few
//! sources that cause the spend (an API key moved to a quarantine usage plan, an
//! address added to a blocking IP set) and serves everyone else. The stage's limits
//! stay the backstop, used when the spend is spread over too many sources, when no
//! lever fits them, or when the budget is exhausted.
//!
//! The rule, for one stage the ladder asks to tighten, from its ranked sources
//! ([`StageSources`]) and the budget's short-window burn rate:
//!
//! 1. A source is **hot** when its requests in the window are at least
//!    [`HOT_FACTOR`] times the mean of all sources (`total / distinct`): one stolen
//!    key among a hundred customers' keys, three hundred addresses among ten
//!    thousand users. A customer sending a normal share never is.
//! 2. Hot sources not held yet are taken in rank order while a lever fits them (the
//!    quarantine plan for a key in one of the stage's plans; the IP set for an
//!    address), at most [`MAX_ADDRESSES_PER_PASS`] addresses and
//!    [`MAX_KEYS_PER_PASS`] keys a pass.
//! 3. The stage's burn without the held and the taken sources is the budget's short
//!    burn times their complement's share of the window's requests. Below the
//!    budget's first throttle level, the sources are enough: **targeted**, and the
//!    stage's own limits are left as they are.
//! 4. Otherwise, while this pass holds new sources, or the newest hold is younger
//!    than the grace (the metric delay and the short window: until then the burn
//!    still counts the held callers' requests), and every hot source ranked has a
//!    lever, and the hot sources there can be (`total / (HOT_FACTOR × mean)`) fit an
//!    IP set: still **targeted**, the stage waits. Else the **backstop**: the stage
//!    is tightened as a whole, and the reason says why.
//!
//! ```
//! use chrono::{Duration, TimeZone, Utc};
//! use dowguard_domain::source::{Levers, Source, StageSources, IpSetRef};
//! use dowguard_domain::targeted::{Ladder, Plan, Wait, plan};
//! use dowguard_domain::BurnRate;
//!
//! let mut top = vec![(Source::Address("198.51.100.9".into()), 98_000)];
//! top.extend((0..99).map(|i| (Source::Address(format!("203.0.113.{i}")), 20)));
//! let sources = StageSources { through_minute: 0, window_minutes: 1, total_requests: 100_000, distinct: 100, top };
//! let levers = Levers {
//!     ip_set: Some(IpSetRef { name: "blocked".into(), id: "a1".into(), scope: "REGIONAL".into() }),
//!     ..Levers::default()
//! };
//! // Burning 50x the budget's pace; the first throttle level is 4x.
//! let ladder = Ladder { burn_short: BurnRate(50_000_000), first_throttle: BurnRate(4_000_000) };
//! let wait = Wait { now: Utc.with_ymd_and_hms(2026, 11, 30, 6, 3, 0).unwrap(), grace: Duration::minutes(8) };
//! let planned = plan(&sources, &levers, &[], ladder, wait);
//! assert!(matches!(planned, Plan::Targeted { ref hold, .. } if hold.len() == 1));
//! ```

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::action::Change;
use crate::budget::BurnRate;
use crate::source::{HeldSource, IpSetRef, Levers, Source, StageSources, cidr_of};
use crate::target::TargetId;

/// A source is hot at this many times the mean source's requests.
pub const HOT_FACTOR: u64 = 10;
/// Most addresses added to the IP set in one pass.
pub const MAX_ADDRESSES_PER_PASS: usize = 1_000;
/// Most keys quarantined in one pass.
pub const MAX_KEYS_PER_PASS: usize = 50;
/// Most addresses an IP set holds ("AWS WAF quotas": 10,000 addresses per IP set).
pub const IP_SET_CAPACITY: u64 = 10_000;

/// What the stage gets this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Hold these sources (possibly none new) and leave the stage's limits alone.
    Targeted {
        /// Sources to hold now, in addition to those already held.
        hold: Vec<HeldSource>,
        /// Why, for the notice.
        why: String,
    },
    /// Tighten the whole stage.
    Backstop {
        /// Why the sources are not enough.
        why: String,
    },
}

/// Where the budget stands: its short-window burn and its first throttle level.
#[derive(Debug, Clone, Copy)]
pub struct Ladder {
    /// The budget's short-window burn rate.
    pub burn_short: BurnRate,
    /// Its first throttle level.
    pub first_throttle: BurnRate,
}

/// The time of the pass and how long new holds get to show in the metrics.
#[derive(Debug, Clone, Copy)]
pub struct Wait {
    /// The pass.
    pub now: DateTime<Utc>,
    /// The metric delay and the short window: until then the burn still counts the
    /// requests of the callers just held.
    pub grace: Duration,
}

/// Plans one stage's pass (see the module docs). `held` are the sources already
/// held.
pub fn plan(
    sources: &StageSources,
    levers: &Levers,
    held: &[HeldSource],
    ladder: Ladder,
    wait: Wait,
) -> Plan {
    let total = sources.total_requests;
    if total == 0 && !held.is_empty() {
        return Plan::Targeted {
            why: format!("{} caller(s) held; no other caller reaches the stage", held.len()),
            hold: Vec::new(),
        };
    }
    if total == 0 || sources.top.is_empty() {
        return Plan::Backstop {
            why: "no ranking of the stage's callers is available".into(),
        };
    }
    // A hot source sends at least `threshold`; there are at most `total / threshold`.
    let threshold = (total / sources.distinct.max(1))
        .saturating_mul(HOT_FACTOR)
        .max(1);
    let taken = take(sources, levers, held, threshold, wait.now);
    let rest = total.saturating_sub(taken.removed);
    let burn_left = BurnRate(
        i64::try_from(i128::from(ladder.burn_short.0) * i128::from(rest) / i128::from(total))
            .unwrap_or(i64::MAX),
    );
    let named = taken.hold.len() + held.len();
    let first = ladder.first_throttle;
    if burn_left < first && named > 0 {
        return Plan::Targeted {
            why: format!(
                "{named} caller(s) held; the stage's other callers burn {burn_left} of the budget's pace, below its first throttle level {first}"
            ),
            hold: taken.hold,
        };
    }
    let fits = total / threshold <= IP_SET_CAPACITY;
    let fresh = held
        .iter()
        .map(HeldSource::since)
        .max()
        .is_some_and(|newest| wait.now - newest <= wait.grace);
    if fits && taken.unfit == 0 && (!taken.hold.is_empty() || fresh) {
        return Plan::Targeted {
            why: format!(
                "{named} caller(s) held; the metrics show the holds within {} minutes, and more are held as the ranking names them",
                wait.grace.num_minutes()
            ),
            hold: taken.hold,
        };
    }
    let why = if named == 0 && taken.unfit == 0 {
        format!(
            "the spend is spread over about {} callers, none sending {HOT_FACTOR} times the mean",
            sources.distinct
        )
    } else if !fits {
        format!(
            "up to {} callers may be hot, more than an IP set holds ({IP_SET_CAPACITY})",
            total / threshold
        )
    } else if taken.unfit > 0 {
        "the hottest callers have no lever (no quarantine plan for their key, no IP set on the stage)".into()
    } else {
        format!(
            "the {named} caller(s) held leave the stage burning {burn_left}, above the first throttle level {first}"
        )
    };
    Plan::Backstop { why }
}

/// The sources `hold` names, each priced at its share of the stage's spend an hour
/// (`per_hour` times its share of the ranking's total), the first three named:
/// "held now: API key k1 ($12.60/h), address 203.0.113.7 ($0.42/h) and 298 more".
pub fn priced(hold: &[HeldSource], sources: &StageSources, per_hour: crate::Money) -> String {
    const NAMED: usize = 3;
    let total = i128::from(sources.total_requests.max(1));
    let named: Vec<String> = hold
        .iter()
        .take(NAMED)
        .map(|h| {
            let source = h.source();
            let sent = sources
                .top
                .iter()
                .find(|(s, _)| *s == source)
                .map_or(0, |(_, n)| *n);
            let price = per_hour
                .mul_div(i128::from(sent), total)
                .unwrap_or(crate::Money::ZERO);
            format!("{source} ({price}/h)")
        })
        .collect();
    let more = hold.len().saturating_sub(NAMED);
    if more > 0 {
        format!("held now: {} and {more} more", named.join(", "))
    } else {
        format!("held now: {}", named.join(", "))
    }
}

/// The hot sources of a ranking taken in order, as far as levers and the per-pass
/// caps allow.
#[derive(Debug, Default)]
struct Taken {
    /// New sources to hold.
    hold: Vec<HeldSource>,
    /// Requests of the held and the newly taken sources.
    removed: u64,
    /// Requests of hot sources no lever fits.
    unfit: u64,
    /// The ranking holds only hot sources (more may follow past its end).
    all_hot: bool,
}

fn take(
    sources: &StageSources,
    levers: &Levers,
    held: &[HeldSource],
    threshold: u64,
    now: DateTime<Utc>,
) -> Taken {
    let held: Vec<Source> = held.iter().map(HeldSource::source).collect();
    let mut taken = Taken {
        all_hot: true,
        ..Taken::default()
    };
    let (mut addresses, mut keys) = (0, 0);
    for (source, requests) in &sources.top {
        if *requests < threshold {
            taken.all_hot = false;
            break;
        }
        if held.contains(source) {
            taken.removed += requests;
            continue;
        }
        let lever = match source {
            Source::Address(_) if addresses < MAX_ADDRESSES_PER_PASS => lever_for(source, levers, now),
            Source::ApiKey(_) if keys < MAX_KEYS_PER_PASS => lever_for(source, levers, now),
            _ => None,
        };
        match lever {
            Some(h) => {
                match h {
                    HeldSource::Blocked { .. } => addresses += 1,
                    HeldSource::Quarantined { .. } => keys += 1,
                }
                taken.removed += requests;
                taken.hold.push(h);
            }
            None => taken.unfit += requests,
        }
    }
    taken
}

/// How `source` can be held on this stage, if a lever fits it: an address into the
/// IP set; a key of one of the stage's plans into the quarantine plan.
fn lever_for(source: &Source, levers: &Levers, since: DateTime<Utc>) -> Option<HeldSource> {
    match source {
        Source::Address(ip) => levers.ip_set.as_ref().map(|set| HeldSource::Blocked {
            since,
            address: cidr_of(ip),
            ip_set: set.clone(),
        }),
        Source::ApiKey(key) => {
            let quarantine = levers.quarantine_plan.as_ref()?;
            let original = levers.key_plans.get(key).filter(|p| *p != quarantine)?;
            Some(HeldSource::Quarantined {
                since,
                key: key.clone(),
                original_plan: original.clone(),
                quarantine_plan: quarantine.clone(),
            })
        }
    }
}

/// The changes that hold `new` sources: keys into quarantine, addresses into their
/// IP sets (one change per set).
pub fn hold(stage: &TargetId, new: &[HeldSource]) -> Vec<Change> {
    changes(stage, new, true)
}

/// The changes that let `held` go exactly: keys back to their plans, addresses out
/// of their IP sets (one change per set).
pub fn release(stage: &TargetId, held: &[HeldSource]) -> Vec<Change> {
    changes(stage, held, false)
}

fn changes(stage: &TargetId, sources: &[HeldSource], holding: bool) -> Vec<Change> {
    let mut out = Vec::new();
    let mut by_set: BTreeMap<&IpSetRef, Vec<String>> = BTreeMap::new();
    for h in sources {
        match h {
            HeldSource::Quarantined {
                key,
                original_plan,
                quarantine_plan,
                ..
            } => {
                let (from, to) = if holding {
                    (original_plan, quarantine_plan)
                } else {
                    (quarantine_plan, original_plan)
                };
                out.push(Change::MoveApiKey {
                    stage: stage.clone(),
                    key: key.clone(),
                    from_plan: from.clone(),
                    to_plan: to.clone(),
                });
            }
            HeldSource::Blocked { address, ip_set, .. } => {
                by_set.entry(ip_set).or_default().push(address.clone())
            }
        }
    }
    for (set, addresses) in by_set {
        let (add, remove) = if holding {
            (addresses, Vec::new())
        } else {
            (Vec::new(), addresses)
        };
        out.push(Change::IpSetAddresses {
            stage: stage.clone(),
            ip_set: set.clone(),
            add,
            remove,
        });
    }
    out
}
