//! Budget suggestions from an account's recorded traffic: for each scope, an
//! amount a little above what its busy days cost, and a burn-rate ladder that
//! would not have throttled that history, each shown with its own backtest.
//!
//! The method, per scope and on its own (one budget per replay, so that
//! suggestions do not act on each other):
//!
//! 1. Replay the history unguarded and read the scope's spend per day (the
//!    complete days of the range; the partial first and last days when there is
//!    no complete one).
//! 2. Amount: the `percentile` of those days' spend (the nearest-rank method)
//!    plus `margin`, rounded up to two significant figures; a month budget takes
//!    the mean day times 31 plus the margin. Never below one cent.
//! 3. Backtest that budget with the default ladder. If it would have throttled,
//!    first try gentler ladders (the throttle levels multiplied by 1.5, 2, 3; the
//!    watch level stays), then raise the amount by a tenth at a time, until the
//!    replay throttles nothing. The suggestion says which ladder it kept.

use dowguard_domain::{Budget, BudgetSpec, Money, Period, Scope};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::backtest::{self, BudgetBacktest, History, Replay};
use crate::engine::{Strategy, run_strategies};
use crate::{SimError, invalid};

/// How amounts are derived.
#[derive(Debug, Clone, Copy)]
pub struct Method {
    /// Which day of the history the amount covers, as a percentile (1 to 100).
    pub percentile: u8,
    /// The margin on top, in percent.
    pub margin_percent: u32,
    /// Day or month budgets.
    pub period: Period,
}

impl Default for Method {
    fn default() -> Self {
        Method {
            percentile: 95,
            margin_percent: 25,
            period: Period::Day,
        }
    }
}

/// A scope to suggest for: the scope, and the budget it would become (an existing
/// budget's id, owner and floors when one covers that scope).
#[derive(Debug, Clone)]
pub struct Ask {
    /// The budget's name.
    pub id: String,
    /// The scope, as written (`function:checkout`, `tag:team=shop`, `account`).
    pub scope: String,
    /// Its owner.
    pub owner: String,
}

/// One scope's suggestion.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// The scope.
    pub scope: String,
    /// Days the figures come from.
    pub days: usize,
    /// The median day's spend.
    pub median_day: Money,
    /// The percentile day's spend.
    pub percentile_day: Money,
    /// The busiest day's spend.
    pub busiest_day: Money,
    /// The suggested budget.
    #[serde(skip)]
    pub budget: Budget,
    /// Its amount.
    pub amount: Money,
    /// Its period.
    pub period: Period,
    /// Its ladder: the watch level, then the throttle levels (burn-rate multiples).
    pub thresholds: Vec<String>,
    /// Replays it took to find a budget that throttles nothing.
    pub tries: u32,
    /// What it would have done.
    pub backtest: BudgetBacktest,
}

/// Gentler ladders tried before a higher amount: the throttle levels times these
/// (tenths).
const LADDER_SCALES: [i64; 3] = [15, 20, 30];
/// Most times the amount is raised by a tenth.
const MAX_RAISES: u32 = 40;

/// Suggests a budget for each of `asks` from `history`.
pub fn suggest(
    history: &History,
    replay: &Replay,
    asks: &[Ask],
    method: Method,
) -> Result<Vec<Suggestion>, SimError> {
    if !(1..=100).contains(&method.percentile) {
        return Err(invalid("percentile", "must be 1 to 100"));
    }
    // The probes: day budgets too large to ever act, one per scope, read unguarded.
    let probes = asks
        .iter()
        .map(|a| spec_budget(a, Period::Day, Money::from_dollars(100_000_000), &[]))
        .collect::<Result<Vec<_>, _>>()?;
    let scenario = backtest::scenario(history, &probes, replay)?;
    let report = run_strategies(&scenario, &[Strategy::Unguarded]);
    let unguarded = report
        .strategy(Strategy::Unguarded)
        .ok_or_else(|| invalid("history", "the replay produced no unguarded run"))?;
    let mut out = Vec::with_capacity(asks.len());
    for (ask, outcome) in asks.iter().zip(&unguarded.budgets) {
        let complete: Vec<Money> = outcome
            .periods
            .iter()
            .filter(|p| p.complete)
            .map(|p| p.spend)
            .collect();
        let mut days = if complete.is_empty() {
            outcome.periods.iter().map(|p| p.spend).collect()
        } else {
            complete
        };
        days.sort();
        if days.iter().all(|d| !d.is_positive()) {
            return Err(invalid(
                format!("scope {}", ask.scope),
                "no recorded spend in the range: nothing to suggest from",
            ));
        }
        let at = |p: u8| days[(days.len() * usize::from(p)).div_ceil(100).clamp(1, days.len()) - 1];
        let (median_day, percentile_day) = (at(50), at(method.percentile));
        let busiest_day = days.last().copied().unwrap_or(Money::ZERO);
        let base = match method.period {
            Period::Day => percentile_day,
            Period::Month => {
                let total: Money = days.iter().copied().sum();
                total
                    .mul_div(31, i128::try_from(days.len()).unwrap_or(1))
                    .unwrap_or(total)
            }
        };
        let margin = base
            .mul_div(i128::from(method.margin_percent), 100)
            .unwrap_or(Money::ZERO);
        let mut amount = round_up(base + margin);
        let mut tries = 0;
        let (budget, backtest) = 'search: loop {
            for ladder in ladders() {
                tries += 1;
                let budget = spec_budget(ask, method.period, amount, &ladder)?;
                let result = replay_one(history, replay, &budget)?;
                if !result.1 {
                    break 'search (budget, result.0);
                }
            }
            if tries > MAX_RAISES * 4 {
                return Err(invalid(
                    format!("scope {}", ask.scope),
                    format!("no budget up to {amount} rides this history out without a throttle"),
                ));
            }
            amount = round_up(amount + amount.mul_div(1, 10).unwrap_or(Money::from_cents(1)));
        };
        out.push(Suggestion {
            scope: ask.scope.clone(),
            days: days.len(),
            median_day,
            percentile_day,
            busiest_day,
            amount: budget.amount,
            period: budget.period,
            thresholds: budget.thresholds.all().iter().map(|t| t.to_string()).collect(),
            budget,
            tries,
            backtest,
        });
    }
    Ok(out)
}

/// The ladders tried at one amount: the default, then gentler ones.
fn ladders() -> Vec<Vec<String>> {
    let default = dowguard_domain::Thresholds::default_ladder();
    let mut out = vec![Vec::new()];
    for tenths in LADDER_SCALES {
        let scale = Decimal::new(tenths, 1);
        let mut ladder = vec![default.watch().to_decimal().normalize().to_string()];
        ladder.extend(
            default
                .levels()
                .iter()
                .map(|t| (t.to_decimal() * scale).normalize().to_string()),
        );
        out.push(ladder);
    }
    out
}

/// Backtests one budget alone: its figures and whether it would have throttled.
fn replay_one(
    history: &History,
    replay: &Replay,
    budget: &Budget,
) -> Result<(BudgetBacktest, bool), SimError> {
    let scenario = backtest::scenario(history, std::slice::from_ref(budget), replay)?;
    let result = backtest::run(
        &scenario,
        std::slice::from_ref(budget),
        history.resolution_minutes,
    );
    let figures = result
        .budgets
        .into_iter()
        .next()
        .ok_or_else(|| invalid("budgets", "the replay lost the budget"))?;
    Ok((figures, result.throttled))
}

fn spec_budget(ask: &Ask, period: Period, amount: Money, thresholds: &[String]) -> Result<Budget, SimError> {
    Scope::parse(&ask.scope).map_err(|e| invalid(format!("scope {}", ask.scope), e.to_string()))?;
    let mut spec = BudgetSpec::day(
        &ask.id,
        &ask.scope,
        &amount.to_decimal().normalize().to_string(),
        &ask.owner,
    );
    spec.period = period.to_string();
    spec.thresholds = thresholds.to_vec();
    Budget::parse(spec).map_err(|e| invalid(format!("scope {}", ask.scope), e.to_string()))
}

/// `amount` rounded up to two significant figures (at least one cent).
pub fn round_up(amount: Money) -> Money {
    let value = amount.to_decimal().max(Decimal::new(1, 2));
    // The power of ten of the leading figure, then the unit of the second.
    let ten = Decimal::from(10);
    let mut leading = Decimal::ONE;
    while leading * ten <= value {
        leading *= ten;
    }
    while leading > value {
        leading /= ten;
    }
    let unit = leading / ten;
    Money::from_decimal((value / unit).ceil() * unit).unwrap_or(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap_or(Money::ZERO)
    }

    #[test]
    fn amounts_round_up_to_two_significant_figures() {
        assert_eq!(round_up(money("7.12")), money("7.2"));
        assert_eq!(round_up(money("7.1")), money("7.1"));
        assert_eq!(round_up(money("123.4")), money("130"));
        assert_eq!(round_up(money("0.0123")), money("0.013"));
        assert_eq!(round_up(money("0.000001")), money("0.01"));
        assert_eq!(round_up(money("10")), money("10"));
    }

    #[test]
    fn the_ladders_keep_the_watch_level_and_spread_the_throttle_levels() {
        let ladders = ladders();
        assert_eq!(ladders[0], Vec::<String>::new());
        assert_eq!(ladders[1], ["1", "6", "12", "21.6"]);
        assert_eq!(ladders[3], ["1", "12", "24", "43.2"]);
    }
}
