//! AWS's account-wide control-plane quotas, as token buckets, and the 429 answer
//! each service gives a request over one.
//!
//! Every number is in [`AWS_QUOTAS`], each with the page and row it comes from.
//! A bucket holds at most `burst` tokens and gains `requests` tokens every `per`;
//! a request takes one token from every bucket that covers it, or, when any of
//! them is empty, takes none and is refused. That is the token-bucket algorithm
//! API Gateway names for its throttling ("Throttle requests to your REST APIs for
//! better throughput in API Gateway"). Where a page gives a rate and no burst, the
//! bucket holds one period's worth.
//!
//! The buckets are kept exactly, in integers: the time of the next token is kept
//! in units of `1 / requests` nanoseconds (the generic cell-rate form of a token
//! bucket), so "15 a second" has no rounding.

use std::time::Duration;

use serde_json::json;

use super::operation::Operation;

/// Which requests of a service a quota counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    /// Every request signed for the service.
    All,
    /// Every request signed for the service but these operations.
    AllBut(&'static [&'static str]),
    /// Only this operation.
    Only(&'static str),
}

/// One account-wide request quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// The quota's name in the counts and messages.
    pub name: &'static str,
    /// The signing service whose requests it counts (`lambda`, `apigateway`).
    pub service: &'static str,
    /// Which of them.
    pub applies: Applies,
    /// Tokens gained every `per`.
    pub requests: u32,
    /// The period of `requests`.
    pub per: Duration,
    /// The most tokens the bucket holds: the largest burst.
    pub burst: u32,
}

impl Quota {
    /// Whether this quota counts `op`.
    #[must_use]
    pub fn covers(&self, op: &Operation) -> bool {
        op.service == self.service
            && match self.applies {
                Applies::All => true,
                Applies::AllBut(excluded) => !excluded.contains(&op.name.as_str()),
                Applies::Only(name) => op.name == name,
            }
    }
}

/// The quotas the proxy enforces in quota mode: every number in one place.
pub const AWS_QUOTAS: [Quota; 8] = [
    // "Lambda quotas", Lambda API requests: "Remainder of the control plane API
    // requests (excludes invocation, GetFunction, and GetPolicy requests): 15
    // requests per second across all APIs". No burst is given.
    Quota {
        name: "lambda-control-plane",
        service: "lambda",
        applies: Applies::AllBut(&[
            "Invoke",
            "InvokeAsync",
            "InvokeWithResponseStream",
            "GetFunction",
            "GetPolicy",
        ]),
        requests: 15,
        per: Duration::from_secs(1),
        burst: 15,
    },
    // "Amazon API Gateway quotas", API Gateway quotas for creating, deploying and
    // managing an API: "Total operations: 10 requests per second with a burst quota
    // of 40 requests per second". Every management call counts, REST (V1) and HTTP
    // (V2) APIs alike (both are signed `apigateway`); the rows below are quotas of
    // single operations within it ("Other operations: No quota up to the total
    // account quota").
    Quota {
        name: "apigateway-total-operations",
        service: "apigateway",
        applies: Applies::All,
        requests: 10,
        per: Duration::from_secs(1),
        burst: 40,
    },
    // Same table: "UpdateUsagePlan: 1 request every 20 seconds per account".
    Quota {
        name: "apigateway-UpdateUsagePlan",
        service: "apigateway",
        applies: Applies::Only("UpdateUsagePlan"),
        requests: 1,
        per: Duration::from_secs(20),
        burst: 1,
    },
    // Same table: "GetResources: 5 requests every 2 seconds per account".
    Quota {
        name: "apigateway-GetResources",
        service: "apigateway",
        applies: Applies::Only("GetResources"),
        requests: 5,
        per: Duration::from_secs(2),
        burst: 5,
    },
    // "CloudWatch service quotas": "Rate of PutMetricAlarm requests: 3 per second",
    // "Rate of DeleteAlarms requests: 3 per second", "Rate of DescribeAlarms
    // requests: 9 per second", each per account and Region. No burst is given.
    Quota {
        name: "cloudwatch-PutMetricAlarm",
        service: "monitoring",
        applies: Applies::Only("PutMetricAlarm"),
        requests: 3,
        per: Duration::from_secs(1),
        burst: 3,
    },
    Quota {
        name: "cloudwatch-DeleteAlarms",
        service: "monitoring",
        applies: Applies::Only("DeleteAlarms"),
        requests: 3,
        per: Duration::from_secs(1),
        burst: 3,
    },
    Quota {
        name: "cloudwatch-DescribeAlarms",
        service: "monitoring",
        applies: Applies::Only("DescribeAlarms"),
        requests: 9,
        per: Duration::from_secs(1),
        burst: 9,
    },
    // Tag Editor user guide, "Service quotas": "Rate of calling the GetResources
    // API operation: Maximum of 15 calls per second" (the Resource Groups Tagging
    // API, signed `tagging`). No burst is given.
    Quota {
        name: "tagging-GetResources",
        service: "tagging",
        applies: Applies::Only("GetResources"),
        requests: 15,
        per: Duration::from_secs(1),
        burst: 15,
    },
];

/// One quota's token bucket. Times are offsets from any fixed instant (the
/// proxy's start), so the bucket itself reads no clock.
#[derive(Debug, Clone)]
pub struct Bucket {
    quota: Quota,
    /// When the bucket is next full enough for one more request after a full
    /// burst, in units of `1 / requests` ns: the theoretical arrival time.
    next: u128,
}

impl Bucket {
    /// A full bucket for `quota`.
    #[must_use]
    pub fn new(quota: Quota) -> Self {
        Bucket { quota, next: 0 }
    }

    /// The quota.
    #[must_use]
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// `at` in the bucket's units.
    fn scaled(&self, at: Duration) -> u128 {
        at.as_nanos() * u128::from(self.quota.requests.max(1))
    }

    /// How long after `at` a request would find a token; zero when one is there.
    #[must_use]
    pub fn wait(&self, at: Duration) -> Duration {
        let now = self.scaled(at);
        let tolerance = u128::from(self.quota.burst.saturating_sub(1)) * self.quota.per.as_nanos();
        let earliest = self.next.saturating_sub(tolerance);
        let scale = u128::from(self.quota.requests.max(1));
        let nanos = earliest.saturating_sub(now).div_ceil(scale);
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Takes a token at `at`: call only when [`Bucket::wait`] is zero.
    fn take(&mut self, at: Duration) {
        let now = self.scaled(at);
        self.next = self.next.max(now) + self.quota.per.as_nanos();
    }

    /// Takes a token at `at` if there is one.
    pub fn try_take(&mut self, at: Duration) -> bool {
        let free = self.wait(at).is_zero();
        if free {
            self.take(at);
        }
        free
    }
}

/// The buckets of a set of quotas.
#[derive(Debug, Clone)]
pub struct Buckets(Vec<Bucket>);

/// A request refused: the quota whose bucket was empty and how long until it has
/// a token again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The quota.
    pub quota: Quota,
    /// How long until a request would pass.
    pub retry_after: Duration,
}

impl Buckets {
    /// Full buckets for `quotas`.
    #[must_use]
    pub fn new(quotas: &[Quota]) -> Self {
        Buckets(quotas.iter().copied().map(Bucket::new).collect())
    }

    /// Admits `op` at `at`, taking a token from every bucket that covers it, or
    /// refuses it, taking none, naming the quota that is spent (the one that frees
    /// last).
    pub fn admit(&mut self, op: &Operation, at: Duration) -> Result<(), Refusal> {
        let spent = self
            .0
            .iter()
            .filter(|b| b.quota.covers(op))
            .map(|b| (b.wait(at), b.quota))
            .filter(|(wait, _)| !wait.is_zero())
            .max_by_key(|(wait, _)| *wait);
        if let Some((retry_after, quota)) = spent {
            return Err(Refusal { quota, retry_after });
        }
        for bucket in self.0.iter_mut().filter(|b| b.quota.covers(op)) {
            bucket.take(at);
        }
        Ok(())
    }
}

/// The HTTP answer the service gives a request over its quota: status 429 with
/// the error type in `x-amzn-ErrorType` (restJson1) and the body of the service's
/// `TooManyRequestsException`, so the SDK returns its own throttling error.
///
/// - Lambda (AWS Lambda API reference, TooManyRequestsException, "The request
///   throughput limit was exceeded", HTTP 429): `Retry-After` header
///   (`retryAfterSeconds`), body `Type`, `message` and `Reason`; `Reason` is
///   `CallerRateLimitExceeded`, the ThrottleReason for a caller over its request
///   rate. `Type` has no documented values; the proxy sends `User`.
/// - API Gateway V1 (Amazon API Gateway API reference, TooManyRequestsException,
///   HTTP 429): `Retry-After` header, body `message`.
/// - API Gateway V2 (Amazon API Gateway Version 2 API reference,
///   TooManyRequestsException, HTTP 429): body `message` (and an optional
///   `limitType`, whose values are not documented, so it is left out).
/// - CloudWatch (Amazon CloudWatch API reference, Common Errors,
///   `ThrottlingException`, "The request was denied due to request throttling",
///   HTTP 400), in the Smithy RPC v2 CBOR protocol the SDK speaks to it: body a
///   CBOR map with `__type` and `message`.
///
/// Returns the status line, the headers and the body.
#[must_use]
pub fn throttled_answer(
    op: &Operation,
    refusal: &Refusal,
    request_id: &str,
) -> (&'static str, Vec<(&'static str, String)>, Vec<u8>) {
    if op.api == "cloudwatch" {
        let error = std::collections::BTreeMap::from([
            ("__type", "ThrottlingException".to_string()),
            ("message", format!("Rate exceeded ({})", refusal.quota.name)),
        ]);
        let mut body = Vec::new();
        // Writing a small map into a Vec cannot fail; an empty body would still be
        // an error answer for the SDK.
        let _ = ciborium::into_writer(&error, &mut body);
        let headers = vec![
            ("Content-Type", "application/cbor".to_string()),
            ("smithy-protocol", "rpc-v2-cbor".to_string()),
            ("x-amzn-RequestId", request_id.to_string()),
        ];
        return ("400 Bad Request", headers, body);
    }
    if op.api == "tagging" {
        // awsJson 1.1: the error's type in `__type`, answered 400; the Tagging API
        // names its throttling error `ThrottledException` (its API model).
        let body = json!({
            "__type": "ThrottledException",
            "Message": format!("Rate exceeded ({})", refusal.quota.name),
        });
        let headers = vec![
            ("Content-Type", "application/x-amz-json-1.1".to_string()),
            ("x-amzn-RequestId", request_id.to_string()),
        ];
        return ("400 Bad Request", headers, body.to_string().into_bytes());
    }
    let retry_after = refusal.retry_after.as_secs() + u64::from(refusal.retry_after.subsec_nanos() > 0);
    let message = format!("Rate exceeded ({})", refusal.quota.name);
    let body = match op.api.as_str() {
        "lambda" => json!({
            "Type": "User",
            "message": message,
            "Reason": "CallerRateLimitExceeded",
        }),
        _ => json!({ "message": message }),
    };
    let mut headers = vec![
        ("Content-Type", "application/json".to_string()),
        ("x-amzn-ErrorType", "TooManyRequestsException".to_string()),
        ("x-amzn-RequestId", request_id.to_string()),
    ];
    if op.api != "apigatewayv2" {
        headers.push(("Retry-After", retry_after.to_string()));
    }
    ("429 Too Many Requests", headers, body.to_string().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quota(name: &str) -> Quota {
        AWS_QUOTAS
            .iter()
            .copied()
            .find(|q| q.name == name)
            .unwrap_or(AWS_QUOTAS[0])
    }

    fn op(service: &str, api: &str, name: &str) -> Operation {
        Operation {
            service: service.into(),
            api: api.into(),
            name: name.into(),
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// How many of `n` requests at `at` pass.
    fn burst(bucket: &mut Bucket, n: u32, at: Duration) -> u32 {
        (0..n).map(|_| u32::from(bucket.try_take(at))).sum()
    }

    #[test]
    fn lambda_admits_fifteen_at_once_refuses_the_sixteenth_and_refills_fifteen_a_second() {
        let mut b = Bucket::new(quota("lambda-control-plane"));
        assert_eq!(burst(&mut b, 15, Duration::ZERO), 15);
        assert!(!b.try_take(Duration::ZERO), "the 16th within the same instant");
        // One token every 1/15 s, exactly: 66,666,666.67 ns.
        assert!(!b.try_take(Duration::from_nanos(66_666_666)));
        assert!(b.try_take(Duration::from_nanos(66_666_667)));
        // A full second later the bucket is full again, not fuller.
        assert_eq!(burst(&mut b, 20, MS(2_000)), 15);
        // Steady at the rate passes; faster does not.
        let mut steady = Bucket::new(quota("lambda-control-plane"));
        let passed: u32 = (0..150)
            .map(|i| u32::from(steady.try_take(Duration::from_nanos(i * 66_666_667))))
            .sum();
        assert_eq!(passed, 150);
        let mut fast = Bucket::new(quota("lambda-control-plane"));
        let passed: u32 = (0..200).map(|i| u32::from(fast.try_take(MS(i * 50)))).sum();
        // 200 requests over 9.95 s at 20/s: the burst of 15 plus 15 a second
        // after the first, 15 + floor(15 x 9.95).
        assert_eq!(passed, 15 + 149);
    }

    #[test]
    fn api_gateway_admits_a_burst_of_forty_then_ten_a_second() {
        let mut b = Bucket::new(quota("apigateway-total-operations"));
        assert_eq!(burst(&mut b, 40, Duration::ZERO), 40);
        assert!(!b.try_take(MS(99)));
        assert!(b.try_take(MS(100)));
        assert_eq!(b.wait(MS(100)), MS(100));
        assert_eq!(burst(&mut b, 20, MS(1_100)), 10);
    }

    #[test]
    fn update_usage_plan_admits_one_every_twenty_seconds() {
        let mut b = Bucket::new(quota("apigateway-UpdateUsagePlan"));
        assert!(b.try_take(MS(5)));
        assert!(!b.try_take(MS(6)));
        assert_eq!(b.wait(MS(10_005)), MS(10_000));
        assert!(!b.try_take(MS(20_004)));
        assert!(b.try_take(MS(20_005)));
        assert!(!b.try_take(MS(39_000)));
    }

    #[test]
    fn get_resources_admits_five_every_two_seconds() {
        let mut b = Bucket::new(quota("apigateway-GetResources"));
        assert_eq!(burst(&mut b, 6, Duration::ZERO), 5);
        assert!(!b.try_take(MS(399)));
        assert!(b.try_take(MS(400)));
        assert_eq!(burst(&mut b, 6, MS(2_400)), 5);
    }

    #[test]
    fn an_operation_takes_from_every_bucket_that_covers_it_or_from_none() {
        let mut buckets = Buckets::new(&AWS_QUOTAS);
        let plan = op("apigateway", "apigateway", "UpdateUsagePlan");
        let stage = op("apigateway", "apigatewayv2", "UpdateStage");
        assert_eq!(buckets.admit(&plan, Duration::ZERO), Ok(()));
        let refused = buckets.admit(&plan, MS(1)).err();
        assert_eq!(refused.map(|r| r.quota.name), Some("apigateway-UpdateUsagePlan"));
        // The plan update took one of the total's 40; the refused one took none.
        let passed = (0..45).filter(|_| buckets.admit(&stage, MS(1)).is_ok()).count();
        assert_eq!(passed, 39);
        assert_eq!(
            buckets.admit(&stage, MS(1)).err().map(|r| r.quota.name),
            Some("apigateway-total-operations")
        );
    }

    #[test]
    fn lambda_invocations_get_function_and_get_policy_are_outside_the_control_plane_quota() {
        let q = quota("lambda-control-plane");
        for name in ["Invoke", "GetFunction", "GetPolicy"] {
            assert!(!q.covers(&op("lambda", "lambda", name)), "{name}");
        }
        for name in [
            "ListFunctions",
            "ListTags",
            "PutFunctionConcurrency",
            "GetAccountSettings",
        ] {
            assert!(q.covers(&op("lambda", "lambda", name)), "{name}");
        }
        assert!(!q.covers(&op("apigateway", "apigateway", "ListFunctions")));
    }

    #[test]
    fn the_answer_is_the_services_throttling_error() {
        let refusal = Refusal {
            quota: quota("lambda-control-plane"),
            retry_after: MS(10),
        };
        let (status, headers, body) = throttled_answer(&op("lambda", "lambda", "ListTags"), &refusal, "r-1");
        assert_eq!(status, "429 Too Many Requests");
        assert!(headers.contains(&("x-amzn-ErrorType", "TooManyRequestsException".into())));
        assert!(headers.contains(&("Retry-After", "1".into())));
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
        assert_eq!(body["Reason"], "CallerRateLimitExceeded");
        assert_eq!(body["Type"], "User");
        assert!(body["message"].is_string());
    }
}
