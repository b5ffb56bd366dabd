//! Security headers on every response. A `Content-Security-Policy` a response already carries
//! (the patient pages set their own) is left as it is.

use poem::{
    Response,
    http::{HeaderName, HeaderValue, header},
};

use crate::config::ServerSettings;

/// Swagger UI at `/docs` is one page with its script, styles and the spec inline, and calls
/// the API on this origin ("Try it out"); it needs nothing from anywhere else.
pub const DOCS_CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
     connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// JSON answers are never documents to render or frame.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// A year; sent only when `server.public_url` is https.
const HSTS: &str = "max-age=31536000";

pub fn secure(path: &str, server: &ServerSettings, resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Manage links and feed URLs carry secrets in the path: never pass them on.
    set_if_absent(h, header::REFERRER_POLICY, "no-referrer");
    if path == "/docs" || path.starts_with("/docs/") {
        set_if_absent(h, header::CONTENT_SECURITY_POLICY, DOCS_CSP);
    } else if path.starts_with("/api/") || path == "/openapi.json" || path.starts_with("/health") {
        set_if_absent(h, header::CONTENT_SECURITY_POLICY, API_CSP);
    }
    if server.public_url.starts_with("https://") {
        set_if_absent(h, header::STRICT_TRANSPORT_SECURITY, HSTS);
    }
}

fn set_if_absent(h: &mut poem::http::HeaderMap, name: HeaderName, value: &'static str) {
    if !h.contains_key(&name) {
        h.insert(name, HeaderValue::from_static(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(public_url: &str) -> ServerSettings {
        ServerSettings {
            host: "127.0.0.1".into(),
            port: 0,
            public_url: public_url.into(),
            body_limit_kb: 64,
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
        }
    }

    #[test]
    fn a_policy_the_response_already_carries_is_kept() {
        let own = "default-src 'self'; frame-ancestors https://partner.example";
        let mut resp = Response::builder()
            .header(header::CONTENT_SECURITY_POLICY, own)
            .finish();
        secure("/docs", &server("https://clinic.example"), &mut resp);
        let h = resp.headers();
        assert_eq!(
            h.get(header::CONTENT_SECURITY_POLICY)
                .and_then(|v| v.to_str().ok()),
            Some(own)
        );
        assert_eq!(
            h.get(header::X_CONTENT_TYPE_OPTIONS)
                .and_then(|v| v.to_str().ok()),
            Some("nosniff")
        );
        assert!(h.contains_key(header::STRICT_TRANSPORT_SECURITY));
    }

    #[test]
    fn pages_outside_the_api_get_no_policy_of_ours() {
        let mut resp = Response::builder().finish();
        secure("/book", &server("http://127.0.0.1:8080"), &mut resp);
        assert!(!resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert!(
            !resp
                .headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY)
        );
        assert!(resp.headers().contains_key(header::REFERRER_POLICY));
    }
}
