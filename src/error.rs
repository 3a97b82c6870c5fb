//! The one error type of the server and its mapping to HTTP.
//!
//! Invariant: this is the only module that picks a status code for a failure. Leaf modules return
//! their own small error enums; `From` impls fold them in here. A 500 (`INTERNAL`) means a bug.

use crate::pipeline::transform::ParamError;
use crate::pipeline::PipelineError;
use crate::storage::origin::OriginError;
use crate::store::StoreError;
use crate::util::workers::PoolError;
use http::StatusCode;
use serde_json::json;

/// Every failure a request can end in.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    BadRequest {
        param: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Unauthorized(String),
    /// `POST /api/v1/keys/validate` with a key that is not valid (its body also says
    /// `"valid": false`).
    #[error("invalid or missing API key")]
    InvalidKey,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    RequestTimeout(String),
    #[error("{0}")]
    Gone(String),
    #[error("rate limit exceeded; retry in {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("method not allowed; allowed: {allow}")]
    MethodNotAllowed { allow: &'static str },
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable { len: u64 },
    #[error("{0}")]
    Origin(String),
    #[error("server busy, retry later")]
    Busy,
    #[error("{0}")]
    InsufficientStorage(String),
    /// An upload would take the tenant over its quota; nothing was stored.
    #[error("this upload would exceed the tenant's quota; nothing was stored")]
    QuotaExceeded(crate::store::Usage),
    #[error("origin timed out")]
    OriginTimeout,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A 400 that names the offending parameter.
    pub fn bad_param(param: &str, message: impl Into<String>) -> Self {
        Self::BadRequest {
            param: Some(param.to_string()),
            message: message.into(),
        }
    }

    /// The HTTP status. Exhaustive on purpose: a new variant must choose one.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::InvalidKey => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            Self::Gone(_) => StatusCode::GONE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::RangeNotSatisfiable { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            Self::Origin(_) => StatusCode::BAD_GATEWAY,
            Self::Busy => StatusCode::SERVICE_UNAVAILABLE,
            Self::InsufficientStorage(_) | Self::QuotaExceeded(_) => {
                StatusCode::INSUFFICIENT_STORAGE
            }
            Self::OriginTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code (public API: never rename).
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { .. } => "BAD_REQUEST",
            Self::Unauthorized(_) | Self::InvalidKey => "UNAUTHORIZED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) => "CONFLICT",
            Self::RequestTimeout(_) => "REQUEST_TIMEOUT",
            Self::Gone(_) => "URL_EXPIRED",
            Self::RateLimited { .. } => "RATE_LIMIT_EXCEEDED",
            Self::MethodNotAllowed { .. } => "METHOD_NOT_ALLOWED",
            Self::NotAcceptable(_) => "NOT_ACCEPTABLE",
            Self::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedMediaType(_) => "UNSUPPORTED_MEDIA_TYPE",
            Self::Unprocessable(_) => "UNPROCESSABLE_IMAGE",
            Self::RangeNotSatisfiable { .. } => "RANGE_NOT_SATISFIABLE",
            Self::Origin(_) => "ORIGIN_ERROR",
            Self::Busy => "SERVICE_BUSY",
            Self::InsufficientStorage(_) | Self::QuotaExceeded(_) => "INSUFFICIENT_STORAGE",
            Self::OriginTimeout => "ORIGIN_TIMEOUT",
            Self::Internal(_) => "INTERNAL",
        }
    }

    /// The message shown to clients. Origin and internal causes stay in the log only.
    pub fn public_message(&self) -> String {
        match self {
            Self::Origin(_) => "the image origin failed".into(),
            Self::Internal(_) => "internal error".into(),
            other => other.to_string(),
        }
    }

    /// The JSON body: `{"success": false, "error": {"code", "message", "details"}}`.
    pub fn body(&self) -> serde_json::Value {
        let details = match self {
            Self::BadRequest { param: Some(p), .. } => json!({ "param": p }),
            Self::QuotaExceeded(u) => json!(u),
            _ => serde_json::Value::Null,
        };
        let mut body = json!({
            "success": false,
            "error": { "code": self.code(), "message": self.public_message(), "details": details }
        });
        if let Self::InvalidKey = self {
            body["valid"] = json!(false);
        }
        body
    }
}

impl From<ParamError> for Error {
    fn from(e: ParamError) -> Self {
        Self::BadRequest {
            param: Some(e.param.clone()),
            message: e.to_string(),
        }
    }
}

impl From<OriginError> for Error {
    fn from(e: OriginError) -> Self {
        match e {
            OriginError::NotFound => Self::NotFound("image not found".into()),
            OriginError::InvalidKey(m) => Self::BadRequest {
                param: None,
                message: m,
            },
            OriginError::TooLarge { len, max } => {
                Self::PayloadTooLarge(format!("source is {len} bytes; the limit is {max}"))
            }
            OriginError::Timeout => Self::OriginTimeout,
            OriginError::Unavailable(m) => Self::Origin(m),
            OriginError::NoSpace(_) => {
                Self::InsufficientStorage("the storage is full; nothing was stored".into())
            }
        }
    }
}

impl From<PipelineError> for Error {
    fn from(e: PipelineError) -> Self {
        match e {
            PipelineError::Unsupported(m) => Self::UnsupportedMediaType(m),
            PipelineError::TooManyPixels { .. }
            | PipelineError::ProgressiveTooLarge { .. }
            | PipelineError::Corrupt(_) => Self::Unprocessable(e.to_string()),
            PipelineError::Timeout => Self::Busy,
            PipelineError::OutOfRange { param, message } => Self::BadRequest {
                param: Some(param),
                message,
            },
            PipelineError::Encode(m) | PipelineError::Bug(m) => Self::Internal(m),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unique(m) => Self::Conflict(m),
            StoreError::Busy(_) => Self::Busy,
            StoreError::Db(m) => Self::Internal(m),
            StoreError::Quota(u) => Self::QuotaExceeded(u),
        }
    }
}

impl From<PoolError> for Error {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Busy => Self::Busy,
            PoolError::Panicked(m) => Self::Internal(format!("worker panicked: {m}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_stable_shape() {
        let e = Error::bad_param("w", "w must be 1..=8192");
        let b = e.body();
        assert_eq!(b["success"], false);
        assert_eq!(b["error"]["code"], "BAD_REQUEST");
        assert_eq!(b["error"]["details"]["param"], "w");
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn origin_cause_is_not_public() {
        let e = Error::Origin("s3 at 10.0.0.1 refused: secret".into());
        assert!(!e.public_message().contains("secret"));
        assert_eq!(e.status(), StatusCode::BAD_GATEWAY);
    }
}
