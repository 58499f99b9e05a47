//! Step 1 of a pass: **pricing a target's windows.** A target's one-minute metrics
//! become money over the windows a pass reads: the short and long burn-rate windows
//! (what was served, and the demand, throttled requests included), the UTC day and
//! the UTC month so far.
//!
//! [`Frame`] fixes those windows for one pass from its time and the settings: the
//! newest minute read is `now − 1 − metric delay`, since CloudWatch's newest minutes
//! are still filling. [`Pricing::figures`] sums a target's minutes over them in one
//! walk ([`crate::TargetMetrics::windows`]) and prices each sum with the one
//! per-target price of the price book ([`crate::UnitPrices::of`]), giving the
//! target's [`Figures`]. A budget's figures are the sum of its members'.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use dowguard_domain::window::{Frame, Pricing};
//! use dowguard_domain::{
//!     AccountUsage, Limits, MinuteUsage, PriceBook, Target, TargetId, TargetMetrics, TargetSpec,
//!     GuardSettings, Money, Usage, epoch_minute,
//! };
//!
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).unwrap();
//! let frame = Frame::new(now, &GuardSettings::default());
//! assert_eq!(frame.end, epoch_minute(now) - 3); // 05:57: the newest complete minute
//! let prices = PriceBook::bundled()?.prices("us-east-1", false)?;
//! let pricing = Pricing::new(frame, prices.at(&AccountUsage::default()), 1_000);
//!
//! let id = TargetId::parse("rest-stage:a1b2c3/prod")?;
//! let stage = Target::new(id.clone(), TargetSpec::RestStage, Default::default(), Limits::unset(id.kind()));
//! // 1,000 requests served and 500 refused in each of the last ten minutes.
//! let minutes = (frame.end - 9..=frame.end)
//!     .map(|minute| MinuteUsage { minute, usage: Usage { requests: 1_000, throttled: 500, duration_ms: 0 } })
//!     .collect();
//! let metrics = TargetMetrics { minutes, to_date: vec![] };
//! let figures = pricing.figures(&stage, &metrics, 0);
//! let request = prices.list().of(&TargetSpec::RestStage).request();
//! assert_eq!(figures.short, request.cost(5 * 1_000)); // five minutes served
//! assert_eq!(figures.short_demand, request.cost(5 * 1_500)); // and what was refused
//! assert_eq!(figures.long, request.cost(10 * 1_000)); // the long window holds all ten
//! assert_eq!(figures.day, figures.long);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ops::AddAssign;

use chrono::{DateTime, Utc};

use crate::budget::Period;
use crate::money::Money;
use crate::pricebook::UnitPrices;
use crate::settings::GuardSettings;
use crate::target::{Target, TargetSpec};
use crate::usage::{TargetMetrics, Usage, epoch_minute};

/// The minutes and periods one pass reads, fixed by its time and the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// The time of the pass.
    pub now: DateTime<Utc>,
    /// The newest complete minute (epoch minute): `now − 1 − metric delay`.
    pub end: i64,
    /// The first minute of the short window.
    pub short_from: i64,
    /// The first minute of the long window.
    pub long_from: i64,
    /// The short window's length in seconds.
    pub short_s: i64,
    /// The long window's length in seconds.
    pub long_s: i64,
    /// The UTC day containing `now` (start inclusive, end exclusive).
    pub day: (DateTime<Utc>, DateTime<Utc>),
    /// The UTC month containing `now`.
    pub month: (DateTime<Utc>, DateTime<Utc>),
}

impl Frame {
    /// The windows of a pass at `now`.
    pub fn new(now: DateTime<Utc>, settings: &GuardSettings) -> Self {
        let end = epoch_minute(now) - 1 - settings.metric_delay_minutes;
        Frame {
            now,
            end,
            short_from: end - settings.short_window_minutes + 1,
            long_from: end - settings.long_window_minutes + 1,
            short_s: settings.short_window_minutes * 60,
            long_s: settings.long_window_minutes * 60,
            day: Period::Day.bounds(now),
            month: Period::Month.bounds(now),
        }
    }

    /// The bounds of the `period` containing the pass.
    #[inline]
    pub fn period(&self, period: Period) -> (DateTime<Utc>, DateTime<Utc>) {
        match period {
            Period::Day => self.day,
            Period::Month => self.month,
        }
    }
}

/// One target's (or one budget's) priced windows for a pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Figures {
    /// Served spend in the short window.
    pub short: Money,
    /// Served spend in the long window.
    pub long: Money,
    /// Demand in the short window: served and throttled requests, priced.
    pub short_demand: Money,
    /// Demand in the long window.
    pub long_demand: Money,
    /// Served spend of the UTC day so far.
    pub day: Money,
    /// Served spend of the UTC month so far.
    pub month: Money,
    /// Average ms per served request in the long window (0 if none; not summed).
    pub avg_ms: u64,
}

impl Figures {
    /// What was spent in the `period` so far.
    #[inline]
    pub fn spent(&self, period: Period) -> Money {
        match period {
            Period::Day => self.day,
            Period::Month => self.month,
        }
    }

    /// The short window's demand as spend an hour: how much a change to this target
    /// addresses, so the most expensive is applied first.
    pub fn priority(&self, frame: &Frame) -> Money {
        self.short_demand
            .mul_div(3_600, i128::from(frame.short_s.max(60)))
            .unwrap_or(Money::ZERO)
    }
}

impl AddAssign<&Figures> for Figures {
    /// Adds a member's money to a budget's total (`avg_ms` is not a sum: untouched).
    #[inline]
    fn add_assign(&mut self, other: &Figures) {
        self.short += other.short;
        self.long += other.long;
        self.short_demand += other.short_demand;
        self.long_demand += other.long_demand;
        self.day += other.day;
        self.month += other.month;
    }
}

/// Prices targets' windows for one pass: the pass's [`Frame`], the unit prices
/// where the account stands this month, and the duration assumed for a function
/// with nothing served.
#[derive(Debug, Clone, Copy)]
pub struct Pricing {
    frame: Frame,
    units: UnitPrices,
    default_avg_ms: u64,
}

impl Pricing {
    /// Pricing for a pass in `frame` at `units` ([`crate::Prices::at`]).
    pub fn new(frame: Frame, units: UnitPrices, default_avg_ms: u64) -> Self {
        Pricing {
            frame,
            units,
            default_avg_ms,
        }
    }

    /// The unit prices the pass prices at.
    pub fn units(&self) -> &UnitPrices {
        &self.units
    }

    /// `target`'s figures from its `metrics`. Throttled requests of a function are
    /// priced at the average duration of the served ones in the long window, else at
    /// `remembered_ms` (the average kept in its state; 0 for none), else at the
    /// default.
    #[inline]
    pub fn figures(&self, target: &Target, metrics: &TargetMetrics, remembered_ms: u64) -> Figures {
        let f = &self.frame;
        let w = metrics.windows(f.end, f.short_from, f.long_from, f.day.0, f.month.0);
        let (short, long) = (w.short, w.long);
        let avg_ms = long.duration_ms.checked_div(long.requests).unwrap_or(0);
        let fallback = match target.spec {
            TargetSpec::Function { .. } if avg_ms > 0 => avg_ms,
            TargetSpec::Function { .. } if remembered_ms > 0 => remembered_ms,
            TargetSpec::Function { .. } => self.default_avg_ms,
            _ => 0,
        };
        let price = self.units.of(&target.spec);
        let short_cost = price.cost(&short);
        let long_cost = price.cost(&long);
        // Demand equals usage when nothing was throttled: price it once.
        let demand = |usage: &Usage, cost: Money| {
            if usage.throttled == 0 {
                cost
            } else {
                price.cost(&usage.demand(fallback))
            }
        };
        Figures {
            short: short_cost,
            long: long_cost,
            short_demand: demand(&short, short_cost),
            long_demand: demand(&long, long_cost),
            day: price.cost(&w.day),
            month: price.cost(&w.month),
            avg_ms,
        }
    }
}

/// The least any pass must do with its inputs: find each target's figures and read
/// every datapoint once (each window's requests, throttles and duration, and the
/// period-to-date totals), adding them up and nothing else. `make bench` measures
/// [`crate::decide()`] and the simulator's passes against it: a ratio holds across
/// machines where absolute times do not.
pub fn bare_walk<M>(targets: &[Target], metrics: &M) -> u128
where
    M: crate::decide::ByTarget<TargetMetrics> + ?Sized,
{
    let mut total = 0u128;
    for (i, target) in targets.iter().enumerate() {
        let Some(m) = metrics.for_target(i, &target.id) else {
            continue;
        };
        let points = m
            .minutes
            .iter()
            .map(|w| &w.usage)
            .chain(m.to_date.iter().map(|p| &p.usage));
        for point in points {
            total += u128::from(point.requests) + u128::from(point.throttled) + u128::from(point.duration_ms);
        }
    }
    total
}
