//! The one mapping from what went wrong to an HTTP answer: a status, a stable reason code,
//! and `{"error": "<code>", "message": "..."}`.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;

use crate::codes::Code;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    /// 400: the request is malformed; retrying it unchanged will fail again.
    BadRequest { code: Code, message: String },
    /// 401: missing or wrong credentials.
    Unauthorized { code: Code, message: String },
    /// 403: authenticated, but not allowed to do this.
    Forbidden { code: Code, message: String },
    /// 404
    NotFound { code: Code, message: String },
    /// 405
    MethodNotAllowed,
    /// 409: the request repeats one already accepted (a replayed signature).
    Conflict { code: Code, message: String },
    /// 408: the client was too slow sending its body.
    Timeout,
    /// 413
    PayloadTooLarge { limit: usize },
    /// 503 with `Retry-After`: nothing was written; the same request may succeed later.
    Unavailable { code: Code, message: String, retry_after_seconds: u32 },
    /// 500
    Internal { message: String },
}

impl Rejection {
    pub fn bad_request(code: Code, message: impl Into<String>) -> Self {
        Self::BadRequest { code, message: message.into() }
    }

    pub fn unauthorized(code: Code, message: impl Into<String>) -> Self {
        Self::Unauthorized { code, message: message.into() }
    }

    pub fn not_found(code: Code, message: impl Into<String>) -> Self {
        Self::NotFound { code, message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Rejection::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Rejection::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Rejection::Forbidden { .. } => StatusCode::FORBIDDEN,
            Rejection::NotFound { .. } => StatusCode::NOT_FOUND,
            Rejection::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Rejection::Conflict { .. } => StatusCode::CONFLICT,
            Rejection::Timeout => StatusCode::REQUEST_TIMEOUT,
            Rejection::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Rejection::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Rejection::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> Code {
        match self {
            Rejection::BadRequest { code, .. }
            | Rejection::Unauthorized { code, .. }
            | Rejection::Forbidden { code, .. }
            | Rejection::NotFound { code, .. }
            | Rejection::Conflict { code, .. }
            | Rejection::Unavailable { code, .. } => *code,
            Rejection::MethodNotAllowed => Code::MethodNotAllowed,
            Rejection::Timeout => Code::BodyTimeout,
            Rejection::PayloadTooLarge { .. } => Code::BodyTooLarge,
            Rejection::Internal { .. } => Code::Internal,
        }
    }

    /// The code as the response says it.
    pub fn reason(&self) -> &'static str {
        self.code().as_str()
    }

    pub fn message(&self) -> String {
        match self {
            Rejection::BadRequest { message, .. }
            | Rejection::Unauthorized { message, .. }
            | Rejection::Forbidden { message, .. }
            | Rejection::NotFound { message, .. }
            | Rejection::Conflict { message, .. }
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
