//! Request context: a request id (taken from `X-Request-Id` or made up), a tracing span,
//! timing for `/metrics`, and the catch-all that turns framework errors (unknown route, wrong
//! method, oversized body…) into problem documents.

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    error::ReadBodyError,
    http::{HeaderValue, Method, StatusCode, header},
};
use tracing::Instrument;

use crate::state::AppState;

use super::problem::problem_for_error;

pub const REQUEST_ID: &str = "x-request-id";

pub async fn request_context<E: Endpoint>(
    next: E,
    req: Request,
    state: Arc<AppState>,
) -> Result<Response> {
    let body_limit = state.settings.server.body_limit_kb * 1024;
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %req.method(),
        path = %loggable_path(req.uri().path()),
    );
    let started = Instant::now();
    let is_write = req.method() != Method::GET && req.method() != Method::HEAD;
    let is_staff = req.uri().path().starts_with("/api/v1/staff/");
    async move {
        let outcome = match limit_body(req, body_limit).await {
            Ok(req) => next.call(req).await.map(IntoResponse::into_response),
            Err(err) => Err(err),
        };
        let mut response = match outcome {
            Ok(resp) => resp,
            // Operations' own errors already carry their problem body.
            Err(err) if err.is_from_response() => err.into_response(),
            Err(err) => problem_for_error(&err).into_response(),
        };
        // Any successful write may change what slot search answers (a booking, a staff
        // change to the catalogue, hours or closures): drop this instance's copies here
        // rather than in every handler.
        if is_write && response.status().is_success() {
            state.slot_answers.clear();
            state.busy.invalidate();
            if is_staff {
                state.slot_inputs.clear();
            }
        }
        let elapsed = started.elapsed();
        let status = response.status();
        let route = response
            .data::<poem::PathPattern>()
            .map_or("unmatched", |p| &*p.0);
        state.metrics.observe(route, status.as_u16(), elapsed);
        tracing::info!(
            status = status.as_u16(),
            ms = elapsed.as_secs_f64() * 1000.0,
            "answered"
        );
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            response.headers_mut().insert(REQUEST_ID, value);
        }
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Refuses bodies over `max` bytes with 413: at once when `Content-Length` says so, otherwise
/// (chunked uploads) while reading, so no request can make the service buffer more than `max`.
async fn limit_body(mut req: Request, max: usize) -> Result<Request> {
    let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => Err(too_large()),
        Some(_) => Ok(req),
        None if req.headers().contains_key(header::TRANSFER_ENCODING) => {
            let bytes = req
                .take_body()
                .into_bytes_limit(max)
                .await
                .map_err(|e| match e {
                    ReadBodyError::PayloadTooLarge => too_large(),
                    _ => poem::Error::from_status(StatusCode::BAD_REQUEST),
                })?;
            req.set_body(bytes);
            Ok(req)
        }
        None => Ok(req),
    }
}

/// The request path for logs, with secret tokens (manage links, calendar feeds) cut off.
fn loggable_path(path: &str) -> &str {
    for secret in ["/api/v1/manage/", "/api/v1/feeds/"] {
        if path.starts_with(secret) {
            return secret;
        }
    }
    path
}
