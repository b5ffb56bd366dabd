//! Cross-origin requests: only origins listed in `server.cors_origins`, compared exactly, get
//! CORS headers; a preflight from any other origin is refused with a problem document. The
//! service's own origin (`server.public_url`) is not cross-origin and needs no listing.

use poem::{
    IntoResponse, Request, Response,
    http::{HeaderValue, Method, StatusCode, header},
};
use poem_openapi::payload::Json;

use crate::config::ServerSettings;

use super::problem::{ApiError, Problem};

const ALLOW_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
/// Request headers a browser client may send cross-origin beyond the CORS-safelisted ones.
const ALLOW_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "idempotency-key",
    "x-request-id",
];
const EXPOSE_HEADERS: &str = "Location, Retry-After, X-Request-Id";
const VARY: &str = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// The request's `Origin`, judged against the allowlist.
pub enum Origin {
    /// No `Origin` header, or the service's own origin: not a CORS request.
    None,
    Allowed(HeaderValue),
    Refused,
}

impl Origin {
    pub fn of(req: &Request, server: &ServerSettings) -> Self {
        let Some(value) = req.headers().get(header::ORIGIN) else {
            return Self::None;
        };
        let Ok(text) = value.to_str() else {
            return Self::Refused;
        };
        let own = url::Url::parse(&server.public_url)
            .map(|u| u.origin().ascii_serialization())
            .unwrap_or_default();
        if text == own {
            return Self::None;
        }
        let listed = server
            .cors_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/') == text);
        if listed {
            Self::Allowed(value.clone())
        } else {
            Self::Refused
        }
    }

    /// The answer to a CORS preflight (`OPTIONS` with `Access-Control-Request-Method`), or
    /// `None` when the request is not one.
    pub fn preflight(&self, req: &Request) -> Option<Response> {
        if req.method() != Method::OPTIONS
            || !req
                .headers()
                .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return None;
        }
        match self {
            Self::None => None,
            Self::Refused => Some(refused()),
            Self::Allowed(origin) => {
                let requested = req
                    .headers()
                    .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                let all_allowed = requested
                    .split(',')
                    .map(|h| h.trim().to_ascii_lowercase())
                    .filter(|h| !h.is_empty())
                    .all(|h| ALLOW_HEADERS.contains(&h.as_str()));
                if !all_allowed {
                    return Some(refused());
                }
                let mut resp = StatusCode::NO_CONTENT.into_response();
                let h = resp.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                h.insert(
                    header::ACCESS_CONTROL_ALLOW_METHODS,
                    HeaderValue::from_static(ALLOW_METHODS),
                );
                if let Ok(list) = HeaderValue::from_str(&ALLOW_HEADERS.join(", ")) {
                    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, list);
                }
                h.insert(
                    header::ACCESS_CONTROL_MAX_AGE,
                    HeaderValue::from_static("600"),
                );
                h.insert(header::VARY, HeaderValue::from_static(VARY));
                Some(resp)
            }
        }
    }

    /// Adds the CORS headers of an actual (non-preflight) request's answer. A refused origin
    /// gets none, so the browser withholds the answer from the page.
    pub fn decorate(&self, resp: &mut Response) {
        let h = resp.headers_mut();
        // Whether the answer carries CORS headers depends on Origin; caches must know that.
        let varies = h.get_all(header::VARY).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.to_ascii_lowercase().contains("origin"))
        });
        if !varies {
            h.append(header::VARY, HeaderValue::from_static("Origin"));
        }
        if let Self::Allowed(origin) = self
            && !h.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN)
        {
            h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            h.insert(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                HeaderValue::from_static(EXPOSE_HEADERS),
            );
        }
    }
}

fn refused() -> Response {
    ApiError::Forbidden(Json(Problem::new(
        StatusCode::FORBIDDEN,
        "origin_not_allowed",
        "Origin not allowed",
        "This origin may not call the API from a browser; see server.cors_origins.",
    )))
    .into_response()
}
