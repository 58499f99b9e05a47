//! Turning SDK errors into the guard's [`PortError`]: the call, the resource, the
//! kind of failure, AWS's own code and message, and the cause kept as the source.

use std::error::Error as StdError;
use std::fmt::Debug;

use aws_smithy_runtime_api::client::orchestrator::HttpResponse;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use dowguard_guard::{FailureKind, PortError};

/// Classifies an AWS error code (and HTTP status) into a [`FailureKind`].
pub fn kind_of(code: Option<&str>, status: Option<u16>) -> FailureKind {
    match code.unwrap_or_default() {
        "ThrottlingException"
        | "Throttling"
        | "TooManyRequestsException"
        | "RequestLimitExceeded"
        | "ProvisionedThroughputExceededException"
        | "RequestThrottled"
        | "ThrottledException"
        | "LimitExceededException" => FailureKind::Throttled,
        "ConditionalCheckFailedException"
        | "TransactionCanceledException"
        | "ConflictException"
        | "ResourceConflictException"
        | "TransactionConflictException"
        | "WAFOptimisticLockException" => FailureKind::Conflict,
        "ResourceNotFoundException"
        | "NotFoundException"
        | "NotFound"
        | "TrailNotFoundException"
        | "WAFNonexistentItemException" => FailureKind::NotFound,
        "ServiceException"
        | "InternalServerError"
        | "InternalFailure"
        | "ServiceUnavailable"
        | "ServiceUnavailableException"
        | "InternalServerException"
        | "WAFInternalErrorException"
        | "WAFUnavailableEntityException" => FailureKind::Unavailable,
        "" => match status {
            Some(429) => FailureKind::Throttled,
            Some(404) => FailureKind::NotFound,
            Some(409) => FailureKind::Conflict,
            Some(s) if s >= 500 => FailureKind::Unavailable,
            Some(_) => FailureKind::Refused,
            None => FailureKind::Unavailable,
        },
        _ => match status {
            Some(s) if s >= 500 => FailureKind::Unavailable,
            _ => FailureKind::Refused,
        },
    }
}

/// Maps any SDK error of `operation` on `resource` to a [`PortError`].
pub fn port_error<E>(
    operation: &'static str,
    resource: impl Into<String>,
    err: SdkError<E, HttpResponse>,
) -> PortError
where
    E: ProvideErrorMetadata + StdError + Debug + Send + Sync + 'static,
{
    let resource = resource.into();
    let (kind, message) = match &err {
        SdkError::ServiceError(service) => {
            let inner = service.err();
            let status = Some(service.raw().status().as_u16());
            let code = inner.code();
            let text = match (code, inner.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                (None, Some(m)) => m.to_string(),
                (None, None) => format!("HTTP {}", service.raw().status().as_u16()),
            };
            (kind_of(code, status), text)
        }
        SdkError::TimeoutError(_) => (FailureKind::Unavailable, "the call timed out".to_string()),
        SdkError::DispatchFailure(d) => (
            FailureKind::Unavailable,
            if d.is_io() {
                "could not reach the endpoint".to_string()
            } else {
                "the request could not be sent".to_string()
            },
        ),
        SdkError::ResponseError(_) => (
            FailureKind::Unavailable,
            "the response could not be read".to_string(),
        ),
        SdkError::ConstructionFailure(_) => {
            (FailureKind::Invalid, "the request could not be built".to_string())
        }
        _ => (FailureKind::Unavailable, "unknown SDK failure".to_string()),
    };
    PortError::new(operation, resource, kind, message).with_source(err)
}

/// A [`PortError`] for data AWS returned that the guard cannot use.
pub fn invalid(
    operation: &'static str,
    resource: impl Into<String>,
    message: impl Into<String>,
) -> PortError {
    PortError::new(operation, resource, FailureKind::Invalid, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_map_to_kinds() {
        let cases = [
            (
                Some("TooManyRequestsException"),
                Some(429),
                FailureKind::Throttled,
            ),
            (
                Some("ConditionalCheckFailedException"),
                Some(400),
                FailureKind::Conflict,
            ),
            (
                Some("ResourceNotFoundException"),
                Some(404),
                FailureKind::NotFound,
            ),
            (Some("AccessDeniedException"), Some(403), FailureKind::Refused),
            (
                Some("InvalidParameterValueException"),
                Some(400),
                FailureKind::Refused,
            ),
            (Some("SomethingNew"), Some(503), FailureKind::Unavailable),
            (None, Some(500), FailureKind::Unavailable),
            (None, Some(429), FailureKind::Throttled),
            (None, None, FailureKind::Unavailable),
        ];
        for (code, status, kind) in cases {
            assert_eq!(kind_of(code, status), kind, "{code:?} {status:?}");
        }
    }
}
