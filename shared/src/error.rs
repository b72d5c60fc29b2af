//! The one error type of the API, and the envelope every error response uses.
//!
//! Contract: docs/API.md#error-codes and docs/API.md#messages.

use lambda_http::http::StatusCode;

/// Everything a request can end in other than success. Each variant knows its code and status;
/// [`ApiError::Internal`] and [`ApiError::RateLimited`] carry a cause that is logged, never sent.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field or parameter is missing, malformed or out of range; the message names it.
    #[error("{0}")]
    InvalidParams(String),
    #[error("a valid API key is required: send `Authorization: Bearer <key>`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("asset not found")]
    AssetNotFound,
    #[error("no such route")]
    NotFound,
    /// A delivery URL that names no asset: no such vault, no such path, or a deleted asset.
    #[error("no asset at this URL")]
    NotDelivered,
    #[error("key not found")]
    KeyNotFound,
    #[error("an asset with this filename already exists in this channel")]
    Conflict,
    /// Revoking the vault's last live secret key; the message says why it is refused.
    #[error("{0}")]
    LastSecretKey(&'static str),
    #[error("{0}")]
    PayloadTooLarge(&'static str),
    #[error("upload not found")]
    UploadNotFound,
    #[error("{0}")]
    UploadExpired(&'static str),
    /// The upload's object is missing or not the declared size; the message says which.
    #[error("{0}")]
    UploadIncomplete(String),
    /// A `Range` no byte of the object satisfies; carries the object's size for `Content-Range`.
    #[error("the requested range is not satisfiable: the object is {0} bytes")]
    RangeNotSatisfiable(u64),
    #[error("the store is busy; retry after a short wait")]
    RateLimited(String),
    #[error("internal error")]
    Internal(String),
}

/// The file is over the contract's limit.
pub const FILE_TOO_LARGE: &str = "the file exceeds the limit of 104857600 bytes (100 MiB)";

/// The request is over what one Lambda invocation can carry.
pub const REQUEST_TOO_LARGE: &str = "the request body exceeds what one Lambda invocation can carry \
    (6 MB, and API Gateway sends multipart bodies base64-encoded, so about 4.5 MB of file); \
    files larger than that cannot be sent through this endpoint (see Limits in the README)";

impl ApiError {
    pub fn invalid(field: &str, rule: impl std::fmt::Display) -> Self {
        ApiError::InvalidParams(format!("{field}: {rule}"))
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ApiError::Internal(cause.to_string())
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidParams(_) => "INVALID_PARAMS",
            ApiError::Unauthorized => "UNAUTHORIZED",
            ApiError::Forbidden(_) => "FORBIDDEN",
            ApiError::AssetNotFound => "ASSET_NOT_FOUND",
            ApiError::NotFound | ApiError::NotDelivered | ApiError::KeyNotFound => "NOT_FOUND",
            ApiError::Conflict | ApiError::LastSecretKey(_) => "CONFLICT",
            ApiError::PayloadTooLarge(_) => "PAYLOAD_TOO_LARGE",
            ApiError::UploadNotFound => "UPLOAD_NOT_FOUND",
            ApiError::UploadExpired(_) => "UPLOAD_EXPIRED",
            ApiError::UploadIncomplete(_) => "UPLOAD_INCOMPLETE",
            ApiError::RangeNotSatisfiable(_) => "RANGE_NOT_SATISFIABLE",
            ApiError::RateLimited(_) => "RATE_LIMITED",
            ApiError::Internal(_) => "INTERNAL_ERROR",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidParams(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::AssetNotFound
            | ApiError::NotFound
            | ApiError::NotDelivered
            | ApiError::KeyNotFound
            | ApiError::UploadNotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict | ApiError::LastSecretKey(_) | ApiError::UploadIncomplete(_) => {
                StatusCode::CONFLICT
            }
            ApiError::UploadExpired(_) => StatusCode::GONE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RangeNotSatisfiable(_) => StatusCode::RANGE_NOT_SATISFIABLE,
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What is logged: the public message, plus the private cause where there is one.
    pub fn cause(&self) -> Option<&str> {
        match self {
            ApiError::RateLimited(cause) | ApiError::Internal(cause) => Some(cause),
            _ => None,
        }
    }

    /// The JSON envelope of docs/API.md#errors: `{"error":{"code","message","status"}}`.
    pub fn envelope(&self) -> serde_json::Value {
        serde_json::json!({
            "error": {
                "code": self.code(),
                "message": self.to_string(),
                "status": self.status().as_u16(),
            }
        })
    }
}

impl From<crate::db::DbError> for ApiError {
    fn from(err: crate::db::DbError) -> Self {
        use crate::db::DbError;
        match err {
            DbError::Conflict(_) => ApiError::Conflict,
            DbError::RateLimited(cause) => ApiError::RateLimited(cause),
            DbError::Other(cause) | DbError::Uncertain(cause) | DbError::Unmigrated(cause) => {
                ApiError::Internal(cause)
            }
        }
    }
}

impl From<crate::blobs::BlobError> for ApiError {
    fn from(err: crate::blobs::BlobError) -> Self {
        match err {
            crate::blobs::BlobError::RateLimited(_) => ApiError::RateLimited(err.to_string()),
            _ => ApiError::Internal(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_has_code_message_and_status() {
        let body = ApiError::invalid("limit", "must be an integer from 1 to 200").envelope();
        assert_eq!(body["error"]["code"], "INVALID_PARAMS");
        assert_eq!(body["error"]["status"], 400);
        assert_eq!(
            body["error"]["message"],
            "limit: must be an integer from 1 to 200"
        );
    }

    #[test]
    fn internal_cause_never_reaches_the_envelope() {
        let err = ApiError::internal("SELECT secret FROM api_keys failed");
        let body = err.envelope().to_string();
        assert!(!body.contains("SELECT"), "{body}");
        assert_eq!(err.cause(), Some("SELECT secret FROM api_keys failed"));
    }
}
