//! Traffic: requests per target per minute, legitimate and attack, either generated
//! by built-in shapes or read from a CSV trace.
//!
//! The CSV format is exactly
//! `minute,target,legit_requests,attack_requests,avg_duration_ms`: minutes count from
//! 0, one row per target per minute, minutes never decrease, and a missing row means
//! no requests. An `avg_duration_ms` of 0 means the target's configured average.
//! The longer header [`CSV_HEADER_CLIENTS`] adds `legit_clients,attack_clients`: how
//! many callers send each side's requests that minute (evenly shared), which the
//! targeted levels act on; the short header means unattributed traffic.

use serde::Deserialize;

use crate::SimError;
use crate::scenario::SimTarget;

/// The exact header a CSV trace must start with.
pub const CSV_HEADER: &str = "minute,target,legit_requests,attack_requests,avg_duration_ms";
/// The header of a trace that also counts each side's callers.
pub const CSV_HEADER_CLIENTS: &str =
    "minute,target,legit_requests,attack_requests,avg_duration_ms,legit_clients,attack_clients";

/// Requests from a number of callers who share them evenly in one minute: one
/// traffic component (or one side of a CSV row) on one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Group {
    /// Stable identity of the group on its target (the component's index, or 0
    /// legit / 1 attack for a CSV trace).
    pub id: u32,
    /// Whose requests.
    pub role: Role,
    /// How many callers.
    pub clients: u64,
    /// Their requests this minute.
    pub requests: u64,
}

/// One target's requests in one minute.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Requests from real users.
    pub legit: u64,
    /// Requests from the attacker (or the runaway loop).
    pub attack: u64,
    /// Average duration per request in ms; 0 means the target's configured average.
    pub avg_duration_ms: u64,
}

/// Whose requests a traffic component generates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Real users.
    Legit,
    /// The attacker.
    Attack,
}

/// A built-in traffic shape, in requests per minute (rpm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// The same rate every minute.
    Steady {
        /// Requests per minute.
        rpm: u64,
    },
    /// A straight line from `rpm` at `from` to `peak_rpm` at the last minute.
    Ramp {
        /// Rate at the start.
        rpm: u64,
        /// Rate at the end.
        peak_rpm: u64,
    },
    /// `on` minutes at `rpm`, then `off` minutes of silence, repeated.
    Pulse {
        /// Rate while on.
        rpm: u64,
        /// Minutes on.
        on: u32,
        /// Minutes off.
        off: u32,
    },
    /// A rate that doubles every `every` minutes up to `peak_rpm` (a recursive loop).
    Doubling {
        /// Rate at the start.
        rpm: u64,
        /// Minutes per doubling.
        every: u32,
        /// Ceiling.
        peak_rpm: u64,
    },
    /// A daily triangle between a trough and a peak at `peak_minute` (UTC minute of
    /// the day), the trough twelve hours away.
    Diurnal {
        /// Rate at the trough.
        trough_rpm: u64,
        /// Rate at the peak.
        peak_rpm: u64,
        /// Minute of the UTC day of the peak.
        peak_minute: u32,
    },
    /// A steady rate that grows by a fixed share every day (compounded).
    Growth {
        /// Rate on the first day.
        rpm: u64,
        /// Daily growth in millionths (30,000 = 3 %).
        daily_growth_millionths: i64,
    },
}

/// One traffic component: a shape, for whom, on which targets, when.
#[derive(Debug, Clone)]
pub struct Component {
    /// Indices of the targets it applies to (each gets the full rate).
    pub targets: Vec<usize>,
    /// How many callers share its requests, when they are counted.
    pub clients: Option<u64>,
    /// Legit or attack.
    pub role: Role,
    /// The shape.
    pub shape: Shape,
    /// First minute (inclusive).
    pub from: u32,
    /// Last minute (exclusive).
    pub until: u32,
}

impl Component {
    /// Requests per minute at minute `m` (absolute, from the scenario start), with
    /// `growth` a cache of the last day computed for growth shapes.
    fn rpm(&self, m: u32, minute_of_day_at_0: u32, growth: &mut (u32, u128)) -> u64 {
        if m < self.from || m >= self.until {
            return 0;
        }
        let local = m - self.from;
        match self.shape {
            Shape::Steady { rpm } => rpm,
            Shape::Ramp { rpm, peak_rpm } => {
                let span = i128::from((self.until - self.from).saturating_sub(1).max(1));
                let delta = i128::from(peak_rpm) - i128::from(rpm);
                let value = i128::from(rpm) + delta * i128::from(local) / span;
                u64::try_from(value.max(0)).unwrap_or(0)
            }
            Shape::Pulse { rpm, on, off } => {
                if local % (on + off) < on {
                    rpm
                } else {
                    0
                }
            }
            Shape::Doubling { rpm, every, peak_rpm } => {
                let doublings = local / every;
                if doublings >= 63 {
                    peak_rpm
                } else {
                    rpm.saturating_mul(1_u64 << doublings).min(peak_rpm)
                }
            }
            Shape::Diurnal {
                trough_rpm,
                peak_rpm,
                peak_minute,
            } => {
                let minute_of_day = (minute_of_day_at_0 + m) % 1_440;
                let distance = minute_of_day.abs_diff(peak_minute);
                let distance = u64::from(distance.min(1_440 - distance));
                peak_rpm - (peak_rpm - trough_rpm) * distance / 720
            }
            Shape::Growth {
                rpm,
                daily_growth_millionths,
            } => {
                let day = local / 1_440;
                let factor = 1_000_000_u128.saturating_add_signed(i128::from(daily_growth_millionths));
                if growth.0 > day || growth.1 == 0 {
                    *growth = (0, u128::from(rpm) * 1_000_000);
                }
                while growth.0 < day {
                    growth.1 = growth.1.saturating_mul(factor) / 1_000_000;
                    growth.0 += 1;
                }
                u64::try_from(growth.1 / 1_000_000).unwrap_or(u64::MAX)
            }
        }
    }
}

/// Where a scenario's traffic comes from.
#[derive(Debug, Clone)]
pub enum Traffic {
    /// Built-in shapes, summed.
    Shapes(Vec<Component>),
    /// A CSV trace.
    Csv(CsvTrace),
}

impl Traffic {
    /// True when the traffic counts its callers (targeted levels can act on it).
    pub fn has_clients(&self) -> bool {
        match self {
            Traffic::Shapes(components) => components.iter().any(|c| c.clients.is_some()),
            Traffic::Csv(trace) => trace.rows.iter().any(|r| r.clients.is_some()),
        }
    }

    /// A fresh reader positioned at minute 0.
    pub fn cursor(&self, minute_of_day_at_0: u32) -> Cursor<'_> {
        let growth = match self {
            Traffic::Shapes(c) => vec![(0, 0); c.len()],
            Traffic::Csv(_) => Vec::new(),
        };
        Cursor {
            traffic: self,
            minute_of_day_at_0,
            position: 0,
            growth,
        }
    }
}

/// Reads traffic minute by minute, in order.
#[derive(Debug)]
pub struct Cursor<'a> {
    traffic: &'a Traffic,
    minute_of_day_at_0: u32,
    position: usize,
    growth: Vec<(u32, u128)>,
}

impl Cursor<'_> {
    /// Writes minute `m`'s demand of every target into `out` (one slot per target).
    /// Minutes must be asked for in ascending order.
    pub fn fill(&mut self, m: u32, out: &mut [Demand]) {
        self.fill_groups(m, out, None);
    }

    /// As [`Cursor::fill`], and with `groups` (one list per target), the callers'
    /// groups of the minute as well.
    pub fn fill_groups(&mut self, m: u32, out: &mut [Demand], mut groups: Option<&mut [Vec<Group>]>) {
        out.fill(Demand::default());
        if let Some(groups) = groups.as_deref_mut() {
            groups.iter_mut().for_each(Vec::clear);
        }
        match self.traffic {
            Traffic::Shapes(components) => {
                for (k, (c, growth)) in components.iter().zip(self.growth.iter_mut()).enumerate() {
                    let rpm = c.rpm(m, self.minute_of_day_at_0, growth);
                    if rpm == 0 {
                        continue;
                    }
                    for &i in &c.targets {
                        let slot = &mut out[i];
                        match c.role {
                            Role::Legit => slot.legit = slot.legit.saturating_add(rpm),
                            Role::Attack => slot.attack = slot.attack.saturating_add(rpm),
                        }
                        if let (Some(groups), Some(clients)) = (groups.as_deref_mut(), c.clients) {
                            groups[i].push(Group {
                                id: u32::try_from(k).unwrap_or(u32::MAX),
                                role: c.role,
                                clients,
                                requests: rpm,
                            });
                        }
                    }
                }
            }
            Traffic::Csv(trace) => {
                let rows = &trace.rows;
                while self.position < rows.len() && rows[self.position].minute < m {
                    self.position += 1;
                }
                while self.position < rows.len() && rows[self.position].minute == m {
                    let row = &rows[self.position];
                    out[row.target] = row.demand;
                    if let (Some(groups), Some((legit, attack))) = (groups.as_deref_mut(), row.clients) {
                        for (id, role, clients, requests) in [
                            (0, Role::Legit, legit, row.demand.legit),
                            (1, Role::Attack, attack, row.demand.attack),
                        ] {
                            if requests > 0 && clients > 0 {
                                groups[row.target].push(Group {
                                    id,
                                    role,
                                    clients,
                                    requests,
                                });
                            }
                        }
                    }
                    self.position += 1;
                }
            }
        }
    }
}

/// One parsed CSV row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    minute: u32,
    target: usize,
    demand: Demand,
    /// Callers of each side (legit, attack), when the trace counts them.
    clients: Option<(u64, u64)>,
}

/// A validated CSV trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CsvTrace {
    rows: Vec<Row>,
}

impl CsvTrace {
    /// Parses and validates a trace against the scenario's targets. Every rejection
    /// names the line and the reason. `duration`, when given, bounds the minutes.
    pub fn parse(
        text: &str,
        file: &str,
        targets: &[SimTarget],
        duration: Option<u32>,
    ) -> Result<CsvTrace, SimError> {
        let fail = |line: usize, reason: String| SimError::Csv {
            file: file.to_string(),
            line,
            reason,
        };
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l.trim_end_matches('\r')));
        let header = lines.next().map(|(_, l)| l.trim_start_matches('\u{feff}').trim());
        let columns = match header {
            Some(CSV_HEADER) => 5,
            Some(CSV_HEADER_CLIENTS) => 7,
            _ => {
                return Err(fail(
                    1,
                    format!(
                        "the header must be exactly `{CSV_HEADER}` (or `{CSV_HEADER_CLIENTS}`), found `{}`",
                        header.unwrap_or("").chars().take(120).collect::<String>()
                    ),
                ));
            }
        };
        let by_name: std::collections::HashMap<String, usize> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id().to_string(), i))
            .collect();
        let mut rows: Vec<Row> = Vec::new();
        let mut seen_this_minute: Vec<usize> = Vec::new();
        for (line, text) in lines {
            if text.trim().is_empty() {
                continue;
            }
            let fields: Vec<&str> = text.split(',').map(str::trim).collect();
            if fields.len() != columns {
                let header = if columns == 5 {
                    CSV_HEADER
                } else {
                    CSV_HEADER_CLIENTS
                };
                return Err(fail(
                    line,
                    format!("expected {columns} fields ({header}), found {}", fields.len()),
                ));
            }
            let number = |index: usize, name: &str| -> Result<u64, SimError> {
                let raw = fields[index];
                if raw.starts_with('-') && raw[1..].chars().all(|c| c.is_ascii_digit()) && raw.len() > 1 {
                    return Err(fail(
                        line,
                        format!("{name} is negative ({raw}); counts and minutes are 0 or more"),
                    ));
                }
                raw.parse::<u64>()
                    .map_err(|_| fail(line, format!("{name} `{raw}` is not a whole number")))
            };
            let minute = number(0, "minute")?;
            let minute =
                u32::try_from(minute).map_err(|_| fail(line, format!("minute {minute} is too large")))?;
            let target = *by_name.get(fields[1]).ok_or_else(|| {
                fail(
                    line,
                    format!(
                        "unknown target `{}`; declare it under [[targets]] (declared: {})",
                        fields[1].chars().take(120).collect::<String>(),
                        declared(targets)
                    ),
                )
            })?;
            let legit = number(2, "legit_requests")?;
            let attack = number(3, "attack_requests")?;
            let avg_duration_ms = number(4, "avg_duration_ms")?;
            if avg_duration_ms > 900_000 {
                return Err(fail(
                    line,
                    "avg_duration_ms is above Lambda's 15-minute limit".into(),
                ));
            }
            if let Some(limit) = duration
                && minute >= limit
            {
                return Err(fail(
                    line,
                    format!("minute {minute} is past the scenario's duration of {limit} minutes"),
                ));
            }
            if let Some(last) = rows.last() {
                if minute < last.minute {
                    return Err(fail(
                        line,
                        format!(
                            "minutes must not decrease: minute {minute} follows minute {}",
                            last.minute
                        ),
                    ));
                }
                if minute > last.minute {
                    seen_this_minute.clear();
                }
            }
            if seen_this_minute.contains(&target) {
                return Err(fail(
                    line,
                    format!(
                        "a second row for {} in minute {minute}; give one row per target per minute",
                        fields[1]
                    ),
                ));
            }
            seen_this_minute.push(target);
            let clients = if columns == 7 {
                let (legit_clients, attack_clients) =
                    (number(5, "legit_clients")?, number(6, "attack_clients")?);
                for (requests, clients, name) in [
                    (legit, legit_clients, "legit_clients"),
                    (attack, attack_clients, "attack_clients"),
                ] {
                    if requests > 0 && clients == 0 {
                        return Err(fail(
                            line,
                            format!("{name} is 0 but there are requests; give at least 1"),
                        ));
                    }
                }
                Some((legit_clients, attack_clients))
            } else {
                None
            };
            rows.push(Row {
                minute,
                target,
                demand: Demand {
                    legit,
                    attack,
                    avg_duration_ms,
                },
                clients,
            });
        }
        Ok(CsvTrace { rows })
    }

    /// A trace from rows of (minute, target index, demand), in minute order with
    /// one row per target per minute, as [`CsvTrace::parse`] would accept them.
    pub fn from_rows(rows: Vec<(u32, usize, Demand)>) -> Result<CsvTrace, SimError> {
        for pair in rows.windows(2) {
            if (pair[1].0, pair[1].1) <= (pair[0].0, pair[0].1) {
                return Err(crate::invalid(
                    "trace",
                    format!(
                        "rows must be in minute order, one per target per minute (minute {} after {})",
                        pair[1].0, pair[0].0
                    ),
                ));
            }
        }
        Ok(CsvTrace {
            rows: rows
                .into_iter()
                .map(|(minute, target, demand)| Row {
                    minute,
                    target,
                    demand,
                    clients: None,
                })
                .collect(),
        })
    }

    /// The last minute with a row.
    pub fn last_minute(&self) -> Option<u32> {
        self.rows.last().map(|r| r.minute)
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when the trace has no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

fn declared(targets: &[SimTarget]) -> String {
    let mut names: Vec<String> = targets.iter().take(5).map(|t| t.id().to_string()).collect();
    if targets.len() > 5 {
        names.push(format!("and {} more", targets.len() - 5));
    }
    names.join(", ")
}
