//! The callers of the simulated API stages, for the targeted levels: which callers
//! the guard holds, what each stage's access log shows, and the ranking the guard
//! reads (a Contributor Insights report, [`dowguard_domain::source::StageSources`]).
//!
//! A traffic group's callers share its requests evenly and are numbered; the guard
//! always holds the first ones (the ranking lists a group's callers in order, held
//! ones first for keys, not at all for blocked addresses), so a held count per group
//! is the whole state. A caller is named `k<group>.<n>` (an API key) or
//! `g<group>.<n>` (an address).
//!
//! - A blocked address's requests are refused by the web ACL before the stage: they
//!   are neither served, billed nor logged.
//! - A quarantined key's requests meet the quarantine plan's throttle,
//!   [`QUARANTINE_RPM`] a key; the rest are refused with 429, and all of them are
//!   still logged.
//! - The ranking the guard reads at the end of minute `m` is the access log of
//!   minute `m - attribution_delay`, its top [`TOP_CALLERS`] callers.

use std::collections::{BTreeMap, VecDeque};

use dowguard_domain::source::{Attribution, IpSetRef, Levers as DomainLevers, Source, StageSources};
use dowguard_domain::{Change, GuardCost, Money, TargetId, UsagePlanId};

use crate::scenario::Levers;
use crate::traffic::{Group, Role};

/// Requests a minute a quarantined key may still send: the quarantine plan's
/// throttle of one request a second.
pub const QUARANTINE_RPM: u64 = 60;
/// Callers a ranking lists (GetInsightRuleReport returns at most 100 contributors:
/// `MaxContributorCount`, CloudWatch API reference).
pub const TOP_CALLERS: usize = 100;
/// The quarantine plan's id in the simulation.
pub const QUARANTINE_PLAN: &str = "quarantine";
/// The plan every key is in otherwise.
const DEFAULT_PLAN: &str = "default";

/// One group's callers as one minute's access log shows them.
#[derive(Debug, Clone, Copy)]
struct Logged {
    id: u32,
    /// Callers in the log.
    callers: u64,
    /// Number of the first of them.
    first: u64,
    /// Requests each sent.
    each: u64,
}

/// Requests the guard's holds refused this minute.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Refused {
    pub(crate) legit: u64,
    pub(crate) attack: u64,
}

/// The callers' side of one simulated account (the dowguard strategy's).
#[derive(Debug, Clone)]
pub(crate) struct Callers {
    /// Per target: its levers.
    levers: Vec<Levers>,
    /// Per target, per group: callers held.
    held: Vec<BTreeMap<u32, u64>>,
    /// Per target: its access log of the recent minutes, newest last.
    logs: Vec<VecDeque<Vec<Logged>>>,
    /// Minutes from a request to the ranking.
    delay: usize,
    /// Callers newly held over the run.
    pub(crate) sources_held: u64,
    /// Rule-minutes and matched events, for the bill.
    rule_minutes: u64,
    events: u64,
    /// Reports read.
    pub(crate) reports: u64,
}

impl Callers {
    pub(crate) fn new(levers: Vec<Levers>, delay_minutes: u32) -> Callers {
        let n = levers.len();
        Callers {
            levers,
            held: vec![BTreeMap::new(); n],
            logs: vec![VecDeque::new(); n],
            delay: usize::try_from(delay_minutes).unwrap_or(0),
            sources_held: 0,
            rule_minutes: 0,
            events: 0,
            reports: 0,
        }
    }

    /// Takes the held callers' requests out of target `i`'s demand, returning
    /// what the holds refused.
    pub(crate) fn hold_back(&self, i: usize, groups: &[Group], legit: &mut u64, attack: &mut u64) -> Refused {
        let mut refused = Refused::default();
        let Some(held) = self.held.get(i) else {
            return refused;
        };
        for g in groups {
            let b = held.get(&g.id).copied().unwrap_or(0).min(g.clients);
            if b == 0 {
                continue;
            }
            let blocked = g.requests.saturating_mul(b) / g.clients.max(1);
            let let_through = if self.levers[i].api_keys {
                blocked.min(QUARANTINE_RPM.saturating_mul(b))
            } else {
                0
            };
            let r = blocked - let_through;
            match g.role {
                Role::Legit => {
                    *legit -= r.min(*legit);
                    refused.legit += r;
                }
                Role::Attack => {
                    *attack -= r.min(*attack);
                    refused.attack += r;
                }
            }
        }
        refused
    }

    /// Writes minute's access log of target `i` (attributed stages only).
    pub(crate) fn log(&mut self, i: usize, groups: &[Group]) {
        let levers = self.levers[i];
        if !levers.attributed() {
            return;
        }
        self.rule_minutes += 1;
        let held = &self.held[i];
        let mut entries = Vec::with_capacity(groups.len());
        for g in groups {
            let b = held.get(&g.id).copied().unwrap_or(0).min(g.clients);
            // Blocked addresses never reach the stage; quarantined keys are logged.
            let (first, callers) = if levers.api_keys {
                (0, g.clients)
            } else {
                (b, g.clients - b)
            };
            if callers == 0 {
                continue;
            }
            let logged = g.requests.saturating_mul(callers) / g.clients.max(1);
            self.events += logged;
            // The first `extra` callers send one request more than the others.
            let (each, extra) = (logged / callers, logged % callers);
            for (first, callers, each) in [(first, extra, each + 1), (first + extra, callers - extra, each)] {
                if callers > 0 && each > 0 {
                    entries.push(Logged {
                        id: g.id,
                        callers,
                        first,
                        each,
                    });
                }
            }
        }
        let log = &mut self.logs[i];
        log.push_back(entries);
        while log.len() > self.delay + 1 {
            log.pop_front();
        }
    }

    /// The attribution a pass at the end of epoch minute `minute` reads: for each
    /// attributed stage, the ranking of the minute `delay` minutes back.
    pub(crate) fn attribution(&mut self, targets: &[TargetId], minute: i64) -> Attribution {
        let mut out = Attribution::default();
        for (i, id) in targets.iter().enumerate() {
            let levers = self.levers[i];
            if !levers.attributed() {
                continue;
            }
            let log = &self.logs[i];
            if log.len() <= self.delay {
                continue;
            }
            let Some(entries) = log.front() else { continue };
            self.reports += 1;
            let sources = ranking(
                entries,
                levers.api_keys,
                minute - i64::try_from(self.delay).unwrap_or(0),
            );
            out.stages
                .insert(id.clone(), (sources.clone(), domain_levers(levers, &sources)));
        }
        out
    }

    /// Applies a change to the held callers of target `i`.
    pub(crate) fn apply(&mut self, i: usize, change: &Change) {
        let Some(held) = self.held.get_mut(i) else { return };
        let mut step = |name: &str, by: i64| {
            let Some(id) = name
                .trim_start_matches(['k', 'g'])
                .split('.')
                .next()
                .and_then(|g| g.parse::<u32>().ok())
            else {
                return;
            };
            let count = held.entry(id).or_default();
            *count = count.saturating_add_signed(by);
        };
        match change {
            Change::MoveApiKey { key, to_plan, .. } => {
                let into = to_plan.as_str() == QUARANTINE_PLAN;
                step(key, if into { 1 } else { -1 });
                self.sources_held += u64::from(into);
            }
            Change::IpSetAddresses { add, remove, .. } => {
                for a in add {
                    step(a, 1);
                }
                for r in remove {
                    step(r, -1);
                }
                self.sources_held += add.len() as u64;
            }
            _ => {}
        }
    }

    /// What attribution cost: the rules, the matched log events (the domain's
    /// prices, [`GuardCost`]) and the reports.
    pub(crate) fn cost(&self) -> Money {
        GuardCost::of_rules(1, self.rule_minutes)
            + GuardCost::of_matched_events(self.events)
            + GuardCost::of_metrics(self.reports)
    }
}

/// The ranking of one minute's access log: its top callers, most requests first.
fn ranking(entries: &[Logged], api_keys: bool, minute: i64) -> StageSources {
    let mut sorted: Vec<&Logged> = entries.iter().filter(|e| e.callers > 0 && e.each > 0).collect();
    sorted.sort_by(|a, b| b.each.cmp(&a.each).then(a.id.cmp(&b.id)));
    let mut top = Vec::with_capacity(TOP_CALLERS);
    'fill: for e in &sorted {
        for n in e.first..e.first + e.callers {
            if top.len() >= TOP_CALLERS {
                break 'fill;
            }
            let source = if api_keys {
                Source::ApiKey(format!("k{}.{n}", e.id))
            } else {
                Source::Address(format!("g{}.{n}", e.id))
            };
            top.push((source, e.each));
        }
    }
    StageSources {
        through_minute: minute,
        window_minutes: 1,
        total_requests: entries.iter().map(|e| e.each * e.callers).sum(),
        distinct: entries.iter().map(|e| e.callers).sum(),
        top,
    }
}

/// The domain's levers for a stage: the quarantine plan and the plan of every key
/// the ranking names, the IP set.
fn domain_levers(levers: Levers, sources: &StageSources) -> DomainLevers {
    let plan = |id: &str| UsagePlanId::parse(id).ok();
    DomainLevers {
        quarantine_plan: if levers.quarantine_plan {
            plan(QUARANTINE_PLAN)
        } else {
            None
        },
        key_plans: if levers.quarantine_plan {
            sources
                .top
                .iter()
                .filter_map(|(s, _)| match s {
                    Source::ApiKey(k) => plan(DEFAULT_PLAN).map(|p| (k.clone(), p)),
                    Source::Address(_) => None,
                })
                .collect()
        } else {
            BTreeMap::new()
        },
        ip_set: levers.ip_set.then(|| IpSetRef {
            name: "dowguard-blocked".into(),
            id: "simulated".into(),
            scope: "REGIONAL".into(),
        }),
    }
}
