//! Output: plain aligned tables for people, JSON for scripts, and the wording of
//! limits, money and durations shared by every command.

use std::io::Write;

use dowguard_domain::{Limits, Quota, QuotaPeriod, Throttle};
use serde::Serialize;

use crate::error::{CliError, CliResult};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
}

/// A table of left-aligned columns, separated by two spaces.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headings.
    pub fn new(headers: &[&str]) -> Self {
        Table {
            headers: headers.iter().map(|h| (*h).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, without trailing spaces.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i > 0 {
                    line.push_str("  ");
                }
                line.push_str(cell);
                let pad = widths[i].saturating_sub(cell.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> CliResult<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Output(e.to_string()))?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").map_err(|e| CliError::Output(e.to_string()))
}

/// Prints text on stdout as it is.
pub fn print_text(text: &str) -> CliResult<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .map_err(|e| CliError::Output(e.to_string()))
}

/// A throttle for people: `100 rps / burst 200`.
pub fn throttle(t: Option<&Throttle>) -> String {
    match t {
        Some(t) => format!("{} rps / burst {}", t.rate_limit.normalize(), t.burst_limit),
        None => "none".into(),
    }
}

fn quota(q: Option<&Quota>) -> String {
    match q {
        Some(q) => {
            let period = match q.period {
                QuotaPeriod::Day => "day",
                QuotaPeriod::Week => "week",
                QuotaPeriod::Month => "month",
            };
            format!("{} a {period}", q.limit)
        }
        None => "none".into(),
    }
}

/// Limits for people, in one short phrase.
pub fn limits(l: &Limits) -> String {
    match l {
        Limits::Function {
            reserved_concurrency,
            async_config,
        } => {
            let reserved = match reserved_concurrency {
                Some(n) => format!("reserved {n}"),
                None => "no reservation".into(),
            };
            match async_config {
                Some(c) => {
                    let mut text = format!(
                        "{reserved}, async age {} / retries {}",
                        c.max_event_age_s.map_or("default".into(), |a| format!("{a} s")),
                        c.max_retry_attempts.map_or("default".into(), |r| r.to_string())
                    );
                    for (when, arn) in [("success", &c.on_success), ("failure", &c.on_failure)] {
                        if let Some(arn) = arn {
                            text.push_str(&format!(", on {when} to {arn}"));
                        }
                    }
                    text
                }
                None => reserved,
            }
        }
        Limits::Stage {
            throttle: t,
            overrides,
        } => {
            let mut text = format!("throttle {}", throttle(t.as_ref()));
            for (key, t) in overrides {
                text.push_str(&format!(", {key} {}", throttle(t.as_ref())));
            }
            text
        }
        Limits::UsagePlan {
            throttle: t,
            quota: q,
        } => {
            format!("throttle {}, quota {}", throttle(t.as_ref()), quota(q.as_ref()))
        }
    }
}

/// A duration for people: `2h`, `90m`, `45s`, `1d 2h`.
pub fn duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    let (days, hours, minutes, seconds) = (s / 86_400, s % 86_400 / 3_600, s % 3_600 / 60, s % 60);
    let mut parts = Vec::new();
    for (n, unit) in [(days, "d"), (hours, "h"), (minutes, "m"), (seconds, "s")] {
        if n > 0 {
            parts.push(format!("{n}{unit}"));
        }
    }
    if parts.is_empty() {
        "0s".into()
    } else {
        parts.join(" ")
    }
}

/// Parses `90s`, `30m`, `2h`, `1d` or a combination like `1h30m`.
pub fn parse_duration(text: &str) -> Result<chrono::Duration, String> {
    let bad = || format!("`{text}` is not a duration: write it like 30m, 2h, 1d or 1h30m");
    let mut total = chrono::Duration::zero();
    let mut digits = String::new();
    let mut any = false;
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let n: i64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        let part = match c {
            's' => chrono::Duration::try_seconds(n),
            'm' => chrono::Duration::try_minutes(n),
            'h' => chrono::Duration::try_hours(n),
            'd' => chrono::Duration::try_days(n),
            _ => None,
        }
        .ok_or_else(bad)?;
        total += part;
        any = true;
    }
    if !digits.is_empty() || !any {
        return Err(bad());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_trim_lines() {
        let mut t = Table::new(&["A", "LONG HEADER"]);
        t.row(vec!["wide cell".into(), "x".into()]);
        assert_eq!(t.render(), "A          LONG HEADER\nwide cell  x\n");
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(parse_duration("90s"), Ok(chrono::Duration::seconds(90)));
        assert_eq!(parse_duration("1h30m"), Ok(chrono::Duration::minutes(90)));
        assert_eq!(parse_duration("2d"), Ok(chrono::Duration::days(2)));
        for bad in ["", "h", "10", "5w", "-1h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(duration(chrono::Duration::minutes(90)), "1h 30m");
        assert_eq!(duration(chrono::Duration::zero()), "0s");
    }
}
