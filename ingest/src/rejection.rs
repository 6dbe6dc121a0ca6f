//! The one mapping from what went wrong to an HTTP answer: a status, a stable reason code,
//! and `{"error": "<code>", "message": "..."}`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 400: the request is malformed; retrying it unchanged will fail again.
    BadRequest { reason: &'static str, message: String },
    /// 401: missing or wrong credentials.
    Unauthorized { reason: &'static str, message: String },
    /// 403: authenticated, but not allowed to do this.
    Forbidden { reason: &'static str, message: String },
    /// 404
    NotFound { reason: &'static str, message: String },
    /// 405
    MethodNotAllowed,
    /// 408: the client was too slow sending its body.
    Timeout,
    /// 413
    PayloadTooLarge { limit: usize },
    /// 503 with `Retry-After`: nothing was written; the same request may succeed later.
    Unavailable { reason: &'static str, message: String, retry_after_seconds: u32 },
    /// 500
    Internal { message: String },
}

impl Rejection {
    pub fn bad_request(reason: &'static str, message: impl Into<String>) -> Self {
        Self::BadRequest { reason, message: message.into() }
    }

    pub fn unauthorized(reason: &'static str, message: impl Into<String>) -> Self {
        Self::Unauthorized { reason, message: message.into() }
    }

    pub fn not_found(reason: &'static str, message: impl Into<String>) -> Self {
        Self::NotFound { reason, message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Rejection::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Rejection::Forbidden { .. } => StatusCode::FORBIDDEN,
            Rejection::NotFound { .. } => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::Timeout => StatusCode::REQUEST_TIMEOUT,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::BadRequest { reason, .. }
            | Rejection::Unauthorized { reason, .. }
            | Rejection::Forbidden { reason, .. }
            | Rejection::NotFound { reason, .. }
            | Rejection::Unavailable { reason, .. } => reason,
            Rejection::MethodNotAllowed => "method_not_allowed",
            Rejection::Timeout => "body_timeout",
            Rejection::PayloadTooLarge { .. } => "body_too_large",
            Rejection::Internal { .. } => "internal",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Rejection::BadRequest { message, .. }
            | Rejection::Unauthorized { message, .. }
            | Rejection::Forbidden { message, .. }
            | Rejection::NotFound { message, .. }
            | Rejection::Unavailable { message, .. }
            | Rejection::Internal { message } => message.clone(),
            Rejection::MethodNotAllowed => "this method is not allowed here".into(),
            Rejection::Timeout => "the request body did not arrive in time".into(),
            Rejection::PayloadTooLarge { limit } => format!("the request body is larger than {limit} bytes"),
        }
    }

    pub fn into_response(self) -> Response<Full<Bytes>> {
        let body = serde_json::json!({ "error": self.reason(), "message": self.message() });
        let mut response = json_response(self.status(), &body);
        if let Rejection::Unavailable { retry_after_seconds, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_seconds));
        }
        response
    }
}

pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
