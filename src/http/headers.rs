//! Security headers on every response. A `Content-Security-Policy` a response already carries
//! (the patient pages set their own) is left as it is.

use base64::Engine;
use poem::{
    Response,
    http::{HeaderName, HeaderValue, header},
};
use sha2::{Digest, Sha256};

use crate::config::ServerSettings;

/// The policy of Swagger UI at `/docs`: one page with its script, styles and the spec inline,
/// calling the API on this origin ("Try it out") and nothing anywhere else. Only the page's
/// own inline scripts run, named by their SHA-256 (`html` is the page as served); its styles
/// are inline too (and the UI adds more as it renders), so styles may be inline.
pub fn docs_csp(html: &str) -> String {
    let scripts: Vec<String> = inline_scripts(html)
        .map(|body| {
            let digest = Sha256::digest(body.as_bytes());
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        })
        .collect();
    format!(
        "default-src 'none'; script-src {}; style-src 'unsafe-inline'; img-src 'self' data:; \
         font-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; \
         frame-ancestors 'none'",
        scripts.join(" ")
    )
}

/// The text of each `<script …>…</script>` without a `src`, scanning from one closing tag to
/// the next opening one (a script may mention `<script` in its text, never `</script>`).
fn inline_scripts(html: &str) -> impl Iterator<Item = &str> {
    let mut rest = html;
    std::iter::from_fn(move || {
        loop {
            let open = rest.find("<script")?;
            let after_open = &rest[open..];
            let tag_end = after_open.find('>')?;
            let tag = &after_open[..tag_end];
            let body_and_more = &after_open[tag_end + 1..];
            let close = body_and_more.find("</script>")?;
            let body = &body_and_more[..close];
            rest = &body_and_more[close + "</script>".len()..];
            if !tag.contains("src=") {
                return Some(body);
            }
        }
    })
}

/// JSON answers are never documents to render or frame.
pub const API_CSP: &str = "default-src 'none'; frame-ancestors 'none'";

/// A year; sent only when `server.public_url` is https.
const HSTS: &str = "max-age=31536000";

pub fn secure(path: &str, server: &ServerSettings, docs_csp: &str, resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Manage links and feed URLs carry secrets in the path: never pass them on.
    set_if_absent(h, header::REFERRER_POLICY, "no-referrer");
    if path == "/docs" || path.starts_with("/docs/") {
        if !h.contains_key(header::CONTENT_SECURITY_POLICY)
            && let Ok(value) = HeaderValue::from_str(docs_csp)
        {
            h.insert(header::CONTENT_SECURITY_POLICY, value);
        }
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
            embed_origins: Vec::new(),
        }
    }

    #[test]
    fn a_policy_the_response_already_carries_is_kept() {
        let own = "default-src 'self'; frame-ancestors https://partner.example";
        let mut resp = Response::builder()
            .header(header::CONTENT_SECURITY_POLICY, own)
            .finish();
        secure("/docs", &server("https://clinic.example"), "x", &mut resp);
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
    fn the_docs_policy_names_each_inline_script_by_its_hash() {
        let html = "<html><script charset=\"UTF-8\">alert('<script')</script>\
                    <script src=\"x.js\"></script><script>\nlet spec = {};\n</script></html>";
        let csp = docs_csp(html);
        let hash = |s: &str| {
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(s.as_bytes()))
        };
        assert!(
            csp.contains(&format!("'sha256-{}'", hash("alert('<script')"))),
            "{csp}"
        );
        assert!(
            csp.contains(&format!("'sha256-{}'", hash("\nlet spec = {};\n"))),
            "{csp}"
        );
        assert_eq!(csp.matches("'sha256-").count(), 2, "{csp}");
        assert!(!csp.contains("unsafe-eval"));
        assert!(csp.contains("script-src 'sha256-"));
    }

    #[test]
    fn pages_outside_the_api_get_no_policy_of_ours() {
        let mut resp = Response::builder().finish();
        secure("/book", &server("http://127.0.0.1:8080"), "x", &mut resp);
        assert!(!resp.headers().contains_key(header::CONTENT_SECURITY_POLICY));
        assert!(
            !resp
                .headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY)
        );
        assert!(resp.headers().contains_key(header::REFERRER_POLICY));
    }
}
