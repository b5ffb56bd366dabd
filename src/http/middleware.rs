//! Request context: a request id (taken from `X-Request-Id` or made up), the client's address
//! (derived once, see `http::client`), the body limit, a tracing span, CORS and security
//! headers, timing for `/metrics`, and the catch-all that turns framework errors (unknown
//! route, wrong method, oversized body…) into problem documents.

use std::{sync::Arc, time::Instant};

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    error::ReadBodyError,
    http::{HeaderValue, Method, StatusCode, header},
};
use tracing::Instrument;

use crate::state::AppState;

use super::{client::ClientAddr, cors, headers, problem::problem_for_error};

pub const REQUEST_ID: &str = "x-request-id";

pub async fn request_context<E: Endpoint>(
    next: E,
    mut req: Request,
    state: Arc<AppState>,
    docs_csp: Arc<str>,
) -> Result<Response> {
    let body_limit = state.settings.server.body_limit_kb * 1024;
    let client = req
        .remote_addr()
        .as_socket_addr()
        .map(|peer| state.trusted_proxies.client_addr(peer.ip(), req.headers()));
    req.extensions_mut().insert(ClientAddr(client));
    let request_id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_graphic()))
        .map(str::to_string)
        // From the thread's random generator: no system call per request.
        .unwrap_or_else(|| {
            uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .simple()
                .to_string()
        });
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %req.method(),
        path = %loggable_path(req.uri().path()),
        client = %client.map(|ip| ip.to_string()).unwrap_or_default(),
    );
    let started = Instant::now();
    let is_write = req.method() != Method::GET && req.method() != Method::HEAD;
    let is_staff = req.uri().path().starts_with("/api/v1/staff/");
    let path = req.uri().path().to_string();
    let origin = cors::Origin::of(&req, &state.settings.server);
    async move {
        let outcome = if let Some(answer) = origin.preflight(&req) {
            Ok(answer)
        } else {
            match limit_body(req, body_limit).await {
                Ok(req) => next.call(req).await.map(IntoResponse::into_response),
                Err(err) => Err(err),
            }
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
        origin.decorate(&mut response);
        headers::secure(&path, &state.settings.server, &docs_csp, &mut response);
        Ok(response)
    }
    .instrument(span)
    .await
}

/// Reads the body, refusing it with 413 past `max` bytes however it is framed
/// (`Content-Length`, chunked, HTTP/2 data frames): reading stops at the limit, so no request
/// makes the service hold more than `max` bytes of body. A declared length over the limit is
/// refused before anything is read.
async fn limit_body(mut req: Request, max: usize) -> Result<Request> {
    let too_large = || poem::Error::from_status(StatusCode::PAYLOAD_TOO_LARGE);
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return Err(too_large());
    }
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

/// The request path for logs, with secret tokens (manage links and pages, waitlist entries
/// and offers, calendar feeds) cut off.
fn loggable_path(path: &str) -> &str {
    for secret in [
        "/api/v1/manage/",
        "/api/v1/feeds/",
        "/api/v1/waitlist/",
        "/manage/",
        "/waitlist/",
    ] {
        if path.starts_with(secret) {
            return secret;
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn paths_with_secret_tokens_are_logged_without_them() {
        let token = "s3cr3tT0kenValue0123456789";
        for path in [
            format!("/api/v1/manage/{token}/cancel"),
            format!("/api/v1/feeds/{token}.ics"),
            format!("/api/v1/waitlist/{token}"),
            format!("/api/v1/waitlist/{token}/leave"),
            format!("/api/v1/waitlist/offers/{token}/claim"),
            format!("/manage/{token}"),
            format!("/waitlist/{token}"),
            format!("/waitlist/offers/{token}"),
        ] {
            assert!(!loggable_path(&path).contains(token), "{path}");
        }
        assert_eq!(loggable_path("/api/v1/waitlist"), "/api/v1/waitlist");
        assert_eq!(
            loggable_path("/api/v1/staff/waitlist"),
            "/api/v1/staff/waitlist"
        );
        assert_eq!(loggable_path("/book"), "/book");
    }
}
