//! One error type for every HTTP handler, mapped to a status in one place.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use fanout_metrics::ErrorSource;
use sfu::SfuError;
use thiserror::Error;
use tracing::{error, warn};

use crate::db::DbError;

/// Why a request failed. The client gets the short reason; the log gets the detail.
#[derive(Debug, Error)]
pub enum ApiError {
    /// Missing or wrong credentials.
    #[error("unauthorized")]
    Unauthorized,
    /// Valid credentials that do not cover this stream (e.g. a viewer token for another).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// No such stream or resource.
    #[error("not found")]
    NotFound,
    /// The request conflicts with the stream's state (e.g. deleting a live stream).
    #[error("conflict: {0}")]
    Conflict(String),
    /// Well-formed JSON with a value we do not accept; names the field.
    #[error("{0}")]
    Unprocessable(String),
    /// Wrong `Content-Type`.
    #[error("unsupported media type: expected {0}")]
    UnsupportedMediaType(&'static str),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// `If-Match` did not match the resource's ETag.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The SFU cannot take the session right now.
    #[error("media server busy")]
    Unavailable,
    /// Something on our side broke.
    #[error("internal error")]
    Internal(String),
    /// The client sent more requests than its rate allows.
    #[error("rate_limited")]
    RateLimited {
        /// Seconds until a request will be accepted again.
        retry_after: u64,
    },
    /// The client has as many sessions waiting to connect as it may.
    #[error("session_limit")]
    SessionLimit(String),
    /// The server holds as many sessions as it takes.
    #[error("server_full")]
    ServerFull(String),
    /// The server is shutting down and takes no new sessions.
    #[error("draining")]
    Draining {
        /// Seconds after which another server (or this one, restarted) may answer.
        retry_after: u64,
    },
}

impl From<SfuError> for ApiError {
    fn from(e: SfuError) -> Self {
        match e {
            SfuError::MalformedSdp(_)
            | SfuError::Unacceptable(_)
            | SfuError::MalformedFragment(_)
            | SfuError::TooManyCandidates(_) => ApiError::BadRequest(e.to_string()),
            SfuError::UnknownSession => ApiError::NotFound,
            SfuError::TooManyConnecting(_) => ApiError::SessionLimit(e.to_string()),
            SfuError::ServerFull(_) => ApiError::ServerFull(e.to_string()),
            SfuError::WorkerUnavailable => ApiError::Unavailable,
        }
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// The `kind` labels of `fanout_errors_total{source="api"}`, one per [`ApiError`] variant.
pub const API_ERROR_KINDS: [&str; 14] = [
    "unauthorized",
    "forbidden",
    "not_found",
    "conflict",
    "unprocessable",
    "unsupported_media_type",
    "bad_request",
    "precondition_failed",
    "unavailable",
    "internal",
    "rate_limited",
    "draining",
    "session_limit",
    "server_full",
];

/// Errors answered by this process, per kind (a process has one `/metrics`).
static API_ERRORS: [AtomicU64; API_ERROR_KINDS.len()] = [const { AtomicU64::new(0) }; API_ERROR_KINDS.len()];

impl ApiError {
    /// Index into [`API_ERROR_KINDS`].
    fn kind(&self) -> usize {
        match self {
            ApiError::Unauthorized => 0,
            ApiError::Forbidden(_) => 1,
            ApiError::NotFound => 2,
            ApiError::Conflict(_) => 3,
            ApiError::Unprocessable(_) => 4,
            ApiError::UnsupportedMediaType(_) => 5,
            ApiError::BadRequest(_) => 6,
            ApiError::PreconditionFailed => 7,
            ApiError::Unavailable => 8,
            ApiError::Internal(_) => 9,
            ApiError::RateLimited { .. } => 10,
            ApiError::Draining { .. } => 11,
            ApiError::SessionLimit(_) => 12,
            ApiError::ServerFull(_) => 13,
        }
    }
}

/// `fanout_errors_total{source="api"}`: the errors this process answered, by kind.
#[derive(Debug)]
pub(crate) struct ApiErrors;

impl ErrorSource for ApiErrors {
    fn source(&self) -> &'static str {
        "api"
    }

    fn counts(&self) -> Vec<(&'static str, u64)> {
        API_ERROR_KINDS
            .iter()
            .zip(&API_ERRORS)
            .map(|(k, n)| (*k, n.load(Ordering::Relaxed)))
            .collect()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        API_ERRORS[self.kind()].fetch_add(1, Ordering::Relaxed);
        let status = match &self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::Unavailable | ApiError::Draining { .. } | ApiError::ServerFull(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::RateLimited { .. } | ApiError::SessionLimit(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal(detail) => {
                error!("{detail}");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        if let ApiError::BadRequest(reason) = &self {
            warn!("bad request: {reason}");
        }
        let mut body = serde_json::json!({ "error": self.to_string() });
        let retry_after = match &self {
            ApiError::RateLimited { retry_after } => {
                body["message"] = format!("too many requests; retry in {retry_after} s").into();
                Some(*retry_after)
            }
            ApiError::Draining { retry_after } => {
                body["message"] = "the server is shutting down; retry on another server".into();
                Some(*retry_after)
            }
            ApiError::SessionLimit(message) => {
                // Sessions that never connect are closed within the connect timeout.
                body["message"] = message.clone().into();
                Some(5)
            }
            ApiError::ServerFull(message) => {
                body["message"] = message.clone().into();
                Some(10)
            }
            _ => None,
        };
        let mut res = (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(secs) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(secs));
        }
        if matches!(self, ApiError::Unauthorized) {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        res
    }
}
