//! Fixtures shared by the guard's tests: a time, prices, targets, budgets and
//! one-minute traffic.

#![allow(dead_code, reason = "each test binary uses its own subset")]

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use dowguard_domain::GuardSettings;
use dowguard_domain::{
    Arch, AsyncConfig, Budget, BudgetSpec, Floors, Limits, PriceBook, Prices, Quota, QuotaPeriod, Target,
    TargetId, TargetMetrics, TargetSpec, Throttle,
};
use dowguard_guard::evaluate::PassOptions;
use dowguard_guard::inventory::Slices;
use dowguard_guard::memory::{MemoryCloud, MemoryStore};
use dowguard_guard::ports::Wired;
use dowguard_guard::{Guard, PassReport};
use rust_decimal::Decimal;

/// The start of every test's timeline.
pub(crate) fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 6, 0, 0).single().unwrap()
}

/// us-east-1 prices, free tier off.
pub(crate) fn prices() -> Prices {
    PriceBook::bundled()
        .and_then(|b| b.prices("us-east-1", false))
        .unwrap()
}

/// `function:checkout`: 512 MB x86, reserved concurrency 500.
pub(crate) fn checkout() -> Target {
    Target {
        id: TargetId::parse("function:checkout").unwrap(),
        spec: TargetSpec::Function {
            memory_mb: 512,
            arch: Arch::X86_64,
            async_invoked: false,
        },
        tags: BTreeMap::new(),
        limits: Limits::Function {
            reserved_concurrency: Some(500),
            async_config: None,
        },
        guarded: true,
        usage_plans: Default::default(),
    }
}

/// `function:thumbnails`: invoked asynchronously, no reservation, a 2-hour
/// maximum event age.
pub(crate) fn thumbnails() -> Target {
    Target {
        id: TargetId::parse("function:thumbnails").unwrap(),
        spec: TargetSpec::Function {
            memory_mb: 1024,
            arch: Arch::Arm64,
            async_invoked: true,
        },
        tags: BTreeMap::new(),
        limits: Limits::Function {
            reserved_concurrency: None,
            async_config: Some(AsyncConfig {
                max_event_age_s: Some(7_200),
                max_retry_attempts: Some(2),
                on_success: None,
                on_failure: None,
            }),
        },
        guarded: true,
        usage_plans: Default::default(),
    }
}

/// `http-stage:orders/live` without a stage throttle.
pub(crate) fn http_stage() -> Target {
    Target::new(
        TargetId::parse("http-stage:orders/live").unwrap(),
        TargetSpec::HttpStage,
        BTreeMap::new(),
        Limits::stage(None),
    )
}

/// `rest-stage:shop/prod` with a 2,000 rps / 4,000 burst stage throttle.
pub(crate) fn shop() -> Target {
    Target {
        id: TargetId::parse("rest-stage:shop/prod").unwrap(),
        spec: TargetSpec::RestStage,
        tags: BTreeMap::new(),
        limits: Limits::stage(Some(Throttle {
            rate_limit: Decimal::from(2_000),
            burst_limit: 4_000,
        })),
        guarded: true,
        usage_plans: Default::default(),
    }
}

/// `usage-plan:partners` with a throttle and a monthly quota.
pub(crate) fn partners() -> Target {
    Target {
        id: TargetId::parse("usage-plan:partners").unwrap(),
        spec: TargetSpec::UsagePlan,
        tags: BTreeMap::new(),
        limits: Limits::UsagePlan {
            throttle: Some(Throttle {
                rate_limit: Decimal::new(5005, 1),
                burst_limit: 1_000,
            }),
            quota: Some(Quota {
                limit: 10_000_000,
                period: QuotaPeriod::Month,
                offset: 0,
            }),
        },
        guarded: true,
        usage_plans: Default::default(),
    }
}

/// A day budget of `amount` dollars on `scope`, default thresholds.
pub(crate) fn budget(id: &str, scope: &str, amount: &str, mode: &str) -> Budget {
    Budget::parse(BudgetSpec {
        id: id.into(),
        scope: scope.into(),
        period: "day".into(),
        amount: amount.into(),
        thresholds: vec![],
        mode: mode.into(),
        owner: "finance@example.com".into(),
        topic: None,
        floors: Floors::default(),
        protected: false,
    })
    .unwrap()
}

/// An hour of `per_minute` requests of `ms` milliseconds each, ending just before `now`.
pub(crate) fn traffic_of(now: DateTime<Utc>, per_minute: u64, ms: u64) -> TargetMetrics {
    dowguard_guard::memory::steady_traffic(now, per_minute, ms)
}

/// An hour of `per_minute` requests of 100 ms ending just before `now`.
pub(crate) fn traffic(now: DateTime<Utc>, per_minute: u64) -> TargetMetrics {
    traffic_of(now, per_minute, 100)
}

/// An in-memory table and account with the deployment's prices and settings.
pub(crate) struct Deployed {
    /// Budgets, states, the audit trail and the inventory.
    pub(crate) store: MemoryStore,
    /// Targets, metrics, controls and notices.
    pub(crate) cloud: MemoryCloud,
    /// us-east-1 prices.
    pub(crate) prices: Prices,
    /// The guard's settings.
    pub(crate) settings: GuardSettings,
}

impl Deployed {
    /// `store` and `cloud` with us-east-1 prices and the default settings.
    pub(crate) fn over(store: MemoryStore, cloud: MemoryCloud) -> Self {
        Deployed {
            store,
            cloud,
            prices: prices(),
            settings: GuardSettings::default(),
        }
    }

    /// One pass at `now` by `actor` with `options`, the inventory function having
    /// kept the inventory current beside it.
    pub(crate) async fn pass(&self, actor: &str, now: DateTime<Utc>, options: &PassOptions) -> PassReport {
        let ports = Wired {
            store: &self.store,
            account: &self.cloud,
            notifier: &self.cloud,
        };
        let guard = Guard {
            ports: &ports,
            prices: &self.prices,
            settings: &self.settings,
            actor,
        };
        guard
            .keeper()
            .reconcile(now, Slices::All)
            .await
            .expect("reconciled");
        guard.evaluate_with(now, options).await.expect("pass runs")
    }
}
