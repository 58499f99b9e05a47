//! Usage as the metrics report it: one-minute windows per target, and optional
//! period-to-date totals, before any pricing.
//!
//! CloudWatch omits minutes with no data, so a missing minute means zero. Minutes are
//! whole minutes since the Unix epoch ([`epoch_minute`]).
//!
//! ```
//! use dowguard_domain::{MinuteUsage, TargetMetrics, Usage};
//!
//! let minute = |minute, requests| MinuteUsage { minute, usage: Usage { requests, throttled: 0, duration_ms: requests * 100 } };
//! // Minute 101 is missing: no data, so no requests.
//! let metrics = TargetMetrics { minutes: vec![minute(100, 10), minute(102, 30)], to_date: vec![] };
//! assert_eq!(metrics.sum(100, 102).requests, 40);
//! assert_eq!(metrics.sum(101, 101), Usage::default());
//! // Demand counts refused requests as if they had run as long as the served ones.
//! let refused = Usage { requests: 10, throttled: 30, duration_ms: 1_000 };
//! assert_eq!(refused.demand(0), Usage { requests: 40, throttled: 0, duration_ms: 4_000 });
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::budget::Period;

/// The minute (since the Unix epoch) containing `t`.
pub fn epoch_minute(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(60)
}

/// Counts for a stretch of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Requests served (and billed): Lambda `Invocations`, API Gateway `Count`.
    pub requests: u64,
    /// Requests refused by a limit (Lambda `Throttles`, API Gateway 429s): not billed,
    /// but part of the demand the guard must judge.
    pub throttled: u64,
    /// Sum of Lambda execution time in milliseconds (zero for API stages).
    pub duration_ms: u64,
}

impl Usage {
    /// Adds another stretch.
    pub fn add(&mut self, other: &Usage) {
        self.requests = self.requests.saturating_add(other.requests);
        self.throttled = self.throttled.saturating_add(other.throttled);
        self.duration_ms = self.duration_ms.saturating_add(other.duration_ms);
    }

    /// The usage that would have been billed had nothing been throttled: throttled
    /// requests are assumed to run as long as served ones on average, or
    /// `fallback_avg_ms` each when none was served.
    pub fn demand(&self, fallback_avg_ms: u64) -> Usage {
        let extra_ms = if self.requests == 0 {
            self.throttled.saturating_mul(fallback_avg_ms)
        } else {
            ((u128::from(self.duration_ms) * u128::from(self.throttled)) / u128::from(self.requests)) as u64
        };
        Usage {
            requests: self.requests.saturating_add(self.throttled),
            throttled: 0,
            duration_ms: self.duration_ms.saturating_add(extra_ms),
        }
    }
}

/// One minute of one target's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinuteUsage {
    /// Minute since the Unix epoch.
    pub minute: i64,
    /// The counts.
    #[serde(flatten)]
    pub usage: Usage,
}

/// A period-to-date total fetched cheaply (e.g. one long-period datapoint), covering
/// the period from `start` through the end of minute `through_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodUsage {
    /// Which kind of period.
    pub period: Period,
    /// The period's start; a total for another period (before roll-over) is ignored.
    pub start: DateTime<Utc>,
    /// Last minute (since epoch) included.
    pub through_minute: i64,
    /// The counts.
    pub usage: Usage,
}

/// Everything measured for one target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetMetrics {
    /// One-minute datapoints in ascending minute order; gaps mean zero.
    pub minutes: Vec<MinuteUsage>,
    /// Period-to-date totals, if fetched.
    #[serde(default)]
    pub to_date: Vec<PeriodUsage>,
}

impl TargetMetrics {
    /// Sums the minutes in `from..=to` (both epoch minutes). Out-of-order input is
    /// tolerated by a linear scan; the sorted case uses a binary search.
    pub fn sum(&self, from: i64, to: i64) -> Usage {
        let mut total = Usage::default();
        if from > to {
            return total;
        }
        let sorted = self.minutes.windows(2).all(|w| w[0].minute <= w[1].minute);
        if sorted {
            let start = self.minutes.partition_point(|m| m.minute < from);
            for m in self.minutes[start..].iter().take_while(|m| m.minute <= to) {
                total.add(&m.usage);
            }
        } else {
            for m in self.minutes.iter().filter(|m| (from..=to).contains(&m.minute)) {
                total.add(&m.usage);
            }
        }
        total
    }

    /// Usage from `period_start` through minute `to`: the matching period-to-date
    /// total plus any newer minutes, or the minutes alone when no total matches
    /// (after a roll-over, yesterday's total is ignored).
    pub fn to_date(&self, period: Period, period_start: DateTime<Utc>, to: i64) -> Usage {
        let first = epoch_minute(period_start);
        let best = self
            .to_date
            .iter()
            .filter(|p| p.period == period && p.start == period_start && p.through_minute <= to)
            .max_by_key(|p| p.through_minute);
        match best {
            Some(total) => {
                let mut usage = total.usage;
                usage.add(&self.sum(total.through_minute + 1, to));
                usage
            }
            None => self.sum(first, to),
        }
    }
}

/// The usage of one target over the windows a decision needs, from one pass.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Windows {
    /// The short burn-rate window.
    pub short: Usage,
    /// The long burn-rate window.
    pub long: Usage,
    /// The UTC day so far.
    pub day: Usage,
    /// The UTC month so far.
    pub month: Usage,
}

impl TargetMetrics {
    /// Sums every window a decision needs, each ending at minute `end`, in one walk
    /// back from the newest minute (minutes out of order take one plain pass
    /// instead); the day and month use the matching period-to-date total as
    /// [`TargetMetrics::to_date`] does.
    pub fn windows(
        &self,
        end: i64,
        short_from: i64,
        long_from: i64,
        day_start: DateTime<Utc>,
        month_start: DateTime<Utc>,
    ) -> Windows {
        let mut out = Windows::default();
        let from_total = |period: Period, start: DateTime<Utc>, into: &mut Usage| -> i64 {
            let best = self
                .to_date
                .iter()
                .filter(|p| p.period == period && p.start == start && p.through_minute <= end)
                .max_by_key(|p| p.through_minute);
            match best {
                Some(total) => {
                    *into = total.usage;
                    total.through_minute + 1
                }
                None => epoch_minute(start),
            }
        };
        let day_from = from_total(Period::Day, day_start, &mut out.day);
        let month_from = from_total(Period::Month, month_start, &mut out.month);
        let all = &self.minutes;
        if !all.is_sorted_by_key(|m| m.minute) {
            return self.windows_unsorted(end, [short_from, long_from, day_from, month_from], out);
        }
        // Walk back from the newest minute at or before `end`: each window, latest
        // start first, takes the running total where the walk passes its start.
        let mut starts = [
            (short_from, 0usize),
            (long_from, 1),
            (day_from, 2),
            (month_from, 3),
        ];
        starts.sort_unstable_by_key(|s| std::cmp::Reverse(s.0));
        let mut found = [Usage::default(); 4];
        let mut running = Usage::default();
        let mut at = all.len();
        while at > 0 && all[at - 1].minute > end {
            at -= 1;
        }
        for (from, which) in starts {
            // mutation: window-sums-exact
            while at > 0 && all[at - 1].minute >= from {
                at -= 1;
                running.add(&all[at].usage);
            }
            found[which] = running;
        }
        out.short = found[0];
        out.long = found[1];
        out.day.add(&found[2]);
        out.month.add(&found[3]);
        out
    }

    /// [`TargetMetrics::windows`] for minutes out of order: one plain pass, adding
    /// each minute to every window it falls in.
    fn windows_unsorted(&self, end: i64, from: [i64; 4], mut out: Windows) -> Windows {
        for m in self.minutes.iter().filter(|m| m.minute <= end) {
            for (usage, from) in [&mut out.short, &mut out.long, &mut out.day, &mut out.month]
                .into_iter()
                .zip(from)
            {
                if m.minute >= from {
                    usage.add(&m.usage);
                }
            }
        }
        out
    }
}

/// The account's month-to-date usage per product, which places prices on their
/// volume tiers (and inside or past the free tier).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountUsage {
    /// Lambda requests this month.
    pub lambda_requests: u64,
    /// x86_64 Lambda MB-milliseconds this month.
    pub lambda_mb_ms_x86: u128,
    /// arm64 Lambda MB-milliseconds this month.
    pub lambda_mb_ms_arm: u128,
    /// REST API requests this month.
    pub rest_requests: u64,
    /// HTTP API requests this month.
    pub http_requests: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn m(minute: i64, requests: u64) -> MinuteUsage {
        MinuteUsage {
            minute,
            usage: Usage {
                requests,
                throttled: 0,
                duration_ms: requests * 100,
            },
        }
    }

    #[test]
    fn missing_minutes_count_as_zero() {
        let metrics = TargetMetrics {
            minutes: vec![m(10, 5), m(14, 7)],
            to_date: vec![],
        };
        assert_eq!(metrics.sum(10, 14).requests, 12);
        assert_eq!(metrics.sum(11, 13).requests, 0);
        assert_eq!(metrics.sum(15, 10).requests, 0);
    }

    #[test]
    fn unsorted_minutes_sum_the_same() {
        let metrics = TargetMetrics {
            minutes: vec![m(14, 7), m(10, 5), m(12, 1)],
            to_date: vec![],
        };
        assert_eq!(metrics.sum(10, 12).requests, 6);
    }

    #[test]
    fn to_date_uses_the_matching_total_and_ignores_the_previous_period() {
        let today = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).single().expect("t");
        let yesterday = Utc.with_ymd_and_hms(2026, 11, 21, 0, 0, 0).single().expect("t");
        let start = epoch_minute(today);
        let total = |s, n| PeriodUsage {
            period: Period::Day,
            start: s,
            through_minute: start + 9,
            usage: Usage {
                requests: n,
                ..Usage::default()
            },
        };
        let metrics = TargetMetrics {
            minutes: vec![
                m(start - 1, 1000),
                m(start + 5, 3),
                m(start + 10, 4),
                m(start + 11, 5),
            ],
            to_date: vec![total(yesterday, 999_999), total(today, 100)],
        };
        // Today's total through minute 9, plus minutes 10 and 11.
        assert_eq!(metrics.to_date(Period::Day, today, start + 11).requests, 109);
        // Without a matching total, only minutes inside today count.
        let minutes_only = TargetMetrics {
            to_date: vec![total(yesterday, 999_999)],
            ..metrics
        };
        assert_eq!(minutes_only.to_date(Period::Day, today, start + 11).requests, 12);
    }

    #[test]
    fn one_pass_windows_agree_with_separate_sums() {
        let today = Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).single().expect("t");
        let month = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().expect("t");
        let start = epoch_minute(today);
        let metrics = TargetMetrics {
            minutes: (0..200).map(|k| m(start - 100 + k, k as u64 + 1)).collect(),
            to_date: vec![PeriodUsage {
                period: Period::Month,
                start: month,
                through_minute: start - 50,
                usage: Usage {
                    requests: 7,
                    ..Usage::default()
                },
            }],
        };
        let end = start + 90;
        let w = metrics.windows(end, end - 4, end - 59, today, month);
        assert_eq!(w.short, metrics.sum(end - 4, end));
        assert_eq!(w.long, metrics.sum(end - 59, end));
        assert_eq!(w.day, metrics.to_date(Period::Day, today, end));
        assert_eq!(w.month, metrics.to_date(Period::Month, month, end));
    }

    #[test]
    fn demand_adds_throttled_requests_at_the_served_average_duration() {
        let u = Usage {
            requests: 10,
            throttled: 30,
            duration_ms: 1_000,
        };
        assert_eq!(
            u.demand(0),
            Usage {
                requests: 40,
                throttled: 0,
                duration_ms: 4_000
            }
        );
        let stopped = Usage {
            requests: 0,
            throttled: 5,
            duration_ms: 0,
        };
        assert_eq!(stopped.demand(200).duration_ms, 1_000);
    }
}
