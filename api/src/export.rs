//! CSV downloads of every report and list: a `GET` with `?format=csv` or `Accept: text/csv`
//! is answered with the same rows, under the same filters, as CSV — every page of them,
//! streamed: the layer asks the route for one page of 1,000 rows at a time and writes each as
//! it comes, so a download of any size holds one page in memory.
//!
//! One header line of the rows' fields, in the order of the JSON; a text value as it is, a
//! number or boolean as JSON writes it, `null` as an empty cell, an object or array as its
//! compact JSON. Cells with a comma, quote or line break are quoted (RFC 4180). A request the
//! route refuses is answered as the route answers it (JSON with an error code).

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures::stream::{self, StreamExt};
use serde_json::{Map, Value};
use tower::ServiceExt;

use crate::error::ApiError;

/// Rows per page asked of the route.
const PAGE: u32 = 1000;

/// Whether a request asks for CSV, and its URI without `format`.
fn wants_csv(request: &Request) -> Result<Option<Uri>, ApiError> {
    let query = request.uri().query().unwrap_or_default();
    let mut format = None;
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .filter(|pair| match pair.strip_prefix("format=") {
            Some(value) => {
                format = Some(value);
                false
            }
            None => true,
        })
        .collect();
    let accept_csv = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.split(',').any(|kind| kind.trim().starts_with("text/csv")));
    let csv = match format {
        Some("csv") => true,
        Some("json") => false,
        Some(_) => return Err(ApiError::bad_request("bad_format", "format must be json or csv")),
        None => accept_csv,
    };
    if !csv || request.method() != Method::GET {
        return Ok(None);
    }
    let path = request.uri().path();
    let uri = if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) };
    Ok(Some(uri.parse().map_err(|_| ApiError::bad_request("bad_query", "the query is not a valid URI"))?))
}

/// The middleware: CSV when asked for, the route's own answer otherwise. `routes` is the
/// router it wraps, asked again for each further page.
pub async fn csv(routes: Router, request: Request, next: Next) -> Response {
    let uri = match wants_csv(&request) {
        Ok(Some(uri)) => uri,
        Ok(None) => {
            // `format=json` is taken off so that the routes, which refuse parameters they do
            // not know, see the request as if it had none.
            return next.run(without_format(request)).await;
        }
        Err(error) => return error.into_response(),
    };
    let headers = request.headers().clone();
    let paged = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .is_some_and(|path| paged_paths().iter().any(|paged| paged == path.as_str()));
    let page = move |cursor: Option<String>| {
        let (routes, headers, uri) = (routes.clone(), headers.clone(), uri.clone());
        async move {
            let mut target = uri.to_string();
            let separator = if target.contains('?') { '&' } else { '?' };
            let query = uri.query().unwrap_or_default();
            if paged && !query.split('&').any(|pair| pair.starts_with("limit=")) {
                target.push_str(&format!("{separator}limit={PAGE}"));
            }
            if let Some(cursor) = cursor {
                let separator = if target.contains('?') { '&' } else { '?' };
                target.push_str(&format!("{separator}cursor={cursor}"));
            }
            let mut request = Request::new(Body::empty());
            *request.uri_mut() = target.parse().unwrap_or(uri);
            *request.headers_mut() = headers;
            request.headers_mut().remove(header::ACCEPT);
            let response = routes.oneshot(request).await.unwrap_or_else(|never| match never {});
            read_page(response).await
        }
    };
    let first = match page(None).await {
        Ok(first) => first,
        Err(response) => return response,
    };
    let columns: Vec<String> =
        first.rows.iter().flat_map(|row| row.keys().cloned()).fold(Vec::new(), |mut all, key| {
            if !all.contains(&key) {
                all.push(key);
            }
            all
        });
    let head = line(columns.iter().map(String::as_str));
    let body_of = |rows: &[Map<String, Value>], columns: &[String]| {
        let mut text = String::new();
        for row in rows {
            text.push_str(&line(columns.iter().map(|column| cell(row.get(column)))));
        }
        text
    };
    let first_rows = body_of(&first.rows, &columns);
    let rest = stream::unfold((first.next, columns), move |(cursor, columns)| {
        let page = page.clone();
        async move {
            let cursor = cursor?;
            match page(Some(cursor)).await {
                Ok(next) => {
                    let text = body_of(&next.rows, &columns);
                    Some((Ok::<_, std::io::Error>(text), (next.next, columns)))
                }
                Err(_) => Some((Err(std::io::Error::other("a later page failed")), (None, columns))),
            }
        }
    });
    let body = stream::iter([Ok(head), Ok(first_rows)]).chain(rest);
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    response
}

/// The `GET` routes that take `limit` and `cursor` (from the OpenAPI document).
fn paged_paths() -> &'static Vec<String> {
    static PAGED: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    PAGED.get_or_init(|| {
        let document = crate::openapi();
        document
            .paths
            .paths
            .iter()
            .filter(|(_, item)| {
                item.get.as_ref().is_some_and(|operation| {
                    operation.parameters.iter().flatten().any(|parameter| match parameter {
                        utoipa::openapi::RefOr::T(parameter) => parameter.name == "cursor",
                        utoipa::openapi::RefOr::Ref(_) => false,
                    })
                })
            })
            .map(|(path, _)| path.clone())
            .collect()
    })
}

fn without_format(mut request: Request) -> Request {
    let Some(query) = request.uri().query() else {
        return request;
    };
    if !query.split('&').any(|pair| pair.starts_with("format=")) {
        return request;
    }
    let kept: Vec<&str> = query.split('&').filter(|pair| !pair.starts_with("format=") && !pair.is_empty()).collect();
    let path = request.uri().path();
    let target = if kept.is_empty() { path.to_string() } else { format!("{path}?{}", kept.join("&")) };
    if let Ok(uri) = target.parse() {
        *request.uri_mut() = uri;
    }
    request
}

struct Rows {
    rows: Vec<Map<String, Value>>,
    next: Option<String>,
}

/// One answer of the route as rows: a page's `items`, a list, or one object; an error answer
/// is passed on as it is.
async fn read_page(response: Response) -> Result<Rows, Response> {
    if response.status() != StatusCode::OK {
        return Err(response);
    }
    let bytes = match axum::body::to_bytes(response.into_body(), usize::MAX).await {
        Ok(bytes) => bytes,
        Err(error) => return Err(ApiError::Internal(error.to_string()).into_response()),
    };
    let value: Value = match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(_) => {
            return Err(ApiError::bad_request("bad_format", "this answer has no rows to give as CSV").into_response());
        }
    };
    let (items, next) = match value {
        Value::Object(mut page) if page.contains_key("items") => {
            let next = page.get("next").and_then(|next| next.as_str().map(str::to_string));
            (page.remove("items").unwrap_or_default(), next)
        }
        other => (other, None),
    };
    let rows = match items {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        _ => Vec::new(),
    };
    let rows = rows
        .into_iter()
        .map(|row| match row {
            Value::Object(row) => row,
            other => Map::from_iter([("value".to_string(), other)]),
        })
        .collect();
    Ok(Rows { rows, next })
}

/// A cell's text: see the module docs.
fn cell(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text.clone(),
        Some(other) => other.to_string(),
    }
}

/// One CSV line, quoted where needed, ending in CRLF.
fn line<S: AsRef<str>>(cells: impl Iterator<Item = S>) -> String {
    let mut text = String::new();
    for (index, cell) in cells.enumerate() {
        if index > 0 {
            text.push(',');
        }
        let cell = cell.as_ref();
        if cell.contains([',', '"', '\n', '\r']) {
            text.push('"');
            text.push_str(&cell.replace('"', "\"\""));
            text.push('"');
        } else {
            text.push_str(cell);
        }
    }
    text.push_str("\r\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_only_where_rfc_4180_needs_it() {
        assert_eq!(
            line(["a", "b c", "1,5", "say \"hi\"", "two\nlines"].iter()),
            "a,b c,\"1,5\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
        assert_eq!(cell(Some(&Value::Null)), "");
        assert_eq!(cell(Some(&serde_json::json!(12))), "12");
        assert_eq!(cell(Some(&serde_json::json!({"months": 1}))), "{\"months\":1}");
        assert_eq!(cell(Some(&serde_json::json!("12.50"))), "12.50");
    }
}
