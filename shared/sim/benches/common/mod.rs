//! The account the simulator's benchmarks run: 100 functions in two teams, a month
//! budget on the account, a day budget per team, diurnal traffic, and a weekly
//! flood on one function.

/// The scenario file: `duration` and the evaluator's `interval` (minutes), and the
/// flood's rate (requests a minute) and length.
pub(crate) fn hundred_functions(
    name: &str,
    duration: &str,
    interval: u32,
    flood_rpm: u64,
    flood_on: &str,
) -> String {
    format!(
        r#"
name = "{name}"
duration = "{duration}"

[guard]
schedule_interval_minutes = {interval}

[[targets]]
id = "function:shop"
count = 50
memory_mb = 512
avg_duration_ms = 120
tags = {{ team = "shop" }}

[[targets]]
id = "function:search"
count = 50
memory_mb = 1024
arch = "arm64"
avg_duration_ms = 80
tags = {{ team = "search" }}

[[budgets]]
id = "account-monthly"
scope = "account"
period = "month"
amount = "25000"

[[budgets]]
id = "shop-daily"
scope = "tag:team=shop"
period = "day"
amount = "450"

[[budgets]]
id = "search-daily"
scope = "tag:team=search"
period = "day"
amount = "450"

[[traffic]]
target = "function:shop-*"
role = "legit"
shape = "diurnal"
rpm = 1000
peak_rpm = 4000

[[traffic]]
target = "function:search-*"
role = "legit"
shape = "diurnal"
rpm = 1000
peak_rpm = 4000
peak_hour = 20

[[traffic]]
target = "function:shop-07"
role = "attack"
shape = "pulse"
rpm = {flood_rpm}
on = "{flood_on}"
off = "7d"
from = "3d"
"#
    )
}
