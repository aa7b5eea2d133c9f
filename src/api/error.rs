//! API errors and their mapping to Prometheus's `errorType` and HTTP status.

use std::fmt;

/// Prometheus's error classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorType {
    /// Bad parameter or parse error: 400.
    BadData,
    /// Query evaluation failed: 422.
    Execution,
    /// The client went away: 499.
    Canceled,
    /// The query timed out: 503.
    Timeout,
    /// Storage or internal error: 500.
    Internal,
    /// Resource missing: 404.
    NotFound,
    /// Unavailable (e.g. admin APIs disabled): 500, Prometheus's default branch.
    Unavailable,
}

impl ErrorType {
    /// The `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorType::BadData => "bad_data",
            ErrorType::Execution => "execution",
            ErrorType::Canceled => "canceled",
            ErrorType::Timeout => "timeout",
            ErrorType::Internal => "internal",
            ErrorType::NotFound => "not_found",
            ErrorType::Unavailable => "unavailable",
        }
    }

    /// The HTTP status Prometheus answers with.
    pub fn status(self) -> u16 {
        match self {
            ErrorType::BadData => 400,
            ErrorType::Execution => 422,
            ErrorType::Canceled => 499,
            ErrorType::Timeout => 503,
            ErrorType::Internal => 500,
            ErrorType::NotFound => 404,
            ErrorType::Unavailable => 500,
        }
    }
}

/// An error answered in the API envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The class.
    pub kind: ErrorType,
    /// The message.
    pub message: String,
}

impl ApiError {
    /// A `bad_data` error.
    pub fn bad_data(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::BadData,
            message: message.into(),
        }
    }

    /// `invalid parameter "name": reason`, as Prometheus words it.
    pub fn invalid_param(name: &str, reason: impl fmt::Display) -> Self {
        Self::bad_data(format!("invalid parameter \"{name}\": {reason}"))
    }

    /// An `internal` error.
    pub fn internal(message: impl Into<String>) -> Self {
        ApiError {
            kind: ErrorType::Internal,
            message: message.into(),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}
