//! The patient pages served by the binary: `/book` (appointments, class seats and joining the
//! waitlist), `/manage/{token}` (a booking or a seat), `/waitlist/{token}` and
//! `/waitlist/offers/{token}`, `/contact` and the host-page script `/embed.js`. The server
//! renders the shell (and what must work without a script: the manage summary, the contact
//! form, the "not found" page); small ES modules under `/assets/` do the rest through the
//! public JSON API. Errors here are HTML, never problem+json.

mod assets;
mod html;
mod manage;
mod seat;
mod waitlist;

use std::sync::Arc;

use poem::{
    EndpointExt, Request, Response, Route, get, handler,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    web::{Data, Path, Query},
};
use serde::Deserialize;

use crate::{config::Settings, state::AppState};

pub use assets::Assets;
use html::{Shell, data_attr};

/// What the page handlers share: the assets and the headers that depend on configuration.
pub struct Pages {
    pub assets: Assets,
    /// The Content-Security-Policy of every page.
    csp: String,
    embed_origins: Vec<String>,
}

impl Pages {
    pub fn new(settings: &Settings) -> Self {
        let embed_origins: Vec<String> = settings
            .server
            .embed_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_string())
            .filter(|o| !o.is_empty())
            .collect();
        Self {
            assets: Assets::new(&settings.branding),
            csp: content_security_policy(settings, &embed_origins),
            embed_origins,
        }
    }

    /// The embedding page's origin when it is one the clinic allows, else none (no messages).
    fn allowed_parent(&self, origin: Option<&str>) -> Option<String> {
        let origin = origin?.trim().trim_end_matches('/');
        self.embed_origins
            .iter()
            .find(|o| o.as_str() == origin)
            .cloned()
    }
}

/// Scripts and styles only from this service, no inline code, API calls only to it, and
/// framing only by `server.embed_origins` (`'none'` when there are none).
fn content_security_policy(settings: &Settings, embed_origins: &[String]) -> String {
    let ancestors = if embed_origins.is_empty() {
        "'none'".to_string()
    } else {
        embed_origins.join(" ")
    };
    let mut img = "'self' data:".to_string();
    if let Some(logo) = settings.branding.logo_url.as_deref()
        && let Ok(url) = url::Url::parse(logo)
    {
        img.push(' ');
        img.push_str(&url.origin().ascii_serialization());
    }
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src {img}; \
         connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors {ancestors}"
    )
}

/// Adds the pages' routes to the application's route tree.
pub fn mount(route: Route, state: &Arc<AppState>) -> Route {
    let pages = Arc::new(Pages::new(&state.settings));
    route
        .at("/book", get(book).data(pages.clone()))
        .at("/contact", get(contact).data(pages.clone()))
        .at("/manage/:token", get(manage::page).data(pages.clone()))
        .at(
            "/waitlist/:token",
            get(waitlist::entry_page).data(pages.clone()),
        )
        .at(
            "/waitlist/offers/:token",
            get(waitlist::offer_page).data(pages.clone()),
        )
        .at("/embed.js", get(embed_js).data(pages.clone()))
        .at("/assets/:version/:name", get(asset_file).data(pages))
}

/// An HTML page with the pages' security headers.
fn html_response(pages: &Pages, status: StatusCode, body: String, private: bool) -> Response {
    let mut resp = Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CONTENT_SECURITY_POLICY, pages.csp.as_str())
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(body);
    let headers = resp.headers_mut();
    if private {
        // A manage link is a secret: never cached, never sent on as a referrer.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    } else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("strict-origin-when-cross-origin"),
        );
    }
    resp
}

#[derive(Debug, Deserialize)]
struct PageParams {
    service: Option<String>,
    practitioner: Option<String>,
    embed: Option<String>,
    /// The embedding page's origin, added by `/embed.js`.
    origin: Option<String>,
    /// `dialog` when `/embed.js` opened the page in its "Book now" dialog.
    mode: Option<String>,
}

impl PageParams {
    fn embedded(&self) -> bool {
        matches!(self.embed.as_deref(), Some("1" | "true"))
    }

    /// The `data-*` attributes that tell a page's script how it is embedded.
    fn embed_data(&self, pages: &Pages) -> String {
        let mut data = String::new();
        if self.embedded() {
            data.push_str(&data_attr("embed", "1"));
            if let Some(origin) = pages.allowed_parent(self.origin.as_deref()) {
                data.push_str(&data_attr("parent-origin", &origin));
            }
            if self.mode.as_deref() == Some("dialog") {
                data.push_str(&data_attr("mode", "dialog"));
            }
        }
        data
    }
}

#[handler]
fn book(
    state: Data<&Arc<AppState>>,
    pages: Data<&Arc<Pages>>,
    Query(params): Query<PageParams>,
) -> Response {
    let settings = &state.settings;
    let mut data = params.embed_data(&pages);
    if let Some(slug) = params.service.as_deref().filter(|s| !s.is_empty()) {
        data.push_str(&data_attr("service", slug));
    }
    if let Some(slug) = params.practitioner.as_deref().filter(|s| !s.is_empty()) {
        data.push_str(&data_attr("practitioner", slug));
    }
    let body = html::page(
        settings,
        &pages.assets,
        Shell {
            title: "Book an appointment",
            script: Some("book.js"),
            embedded: params.embedded(),
            data,
            body: html::book_body(settings),
        },
    );
    html_response(&pages, StatusCode::OK, body, false)
}

#[handler]
fn contact(
    state: Data<&Arc<AppState>>,
    pages: Data<&Arc<Pages>>,
    Query(params): Query<PageParams>,
) -> Response {
    let settings = &state.settings;
    let body = html::page(
        settings,
        &pages.assets,
        Shell {
            title: "Contact us",
            script: Some("contact.js"),
            embedded: params.embedded(),
            data: params.embed_data(&pages),
            body: html::contact_body(settings),
        },
    );
    html_response(&pages, StatusCode::OK, body, false)
}

/// Whether the client takes gzip (and has not refused it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut bits = part.split(';').map(str::trim);
            let coding = bits.next().unwrap_or("");
            let refused = bits.any(|b| b.replace(' ', "") == "q=0");
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
}

/// Serves one asset: gzip when accepted, ETag and 304, the given caching.
fn serve_asset(req: &Request, asset: &assets::Asset, cache_control: &'static str) -> Response {
    let etag = Assets::etag(asset);
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::CACHE_CONTROL, cache_control)
        .header(header::VARY, "Accept-Encoding")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    if matches {
        return builder.status(StatusCode::NOT_MODIFIED).finish();
    }
    let builder = builder.content_type(asset.content_type);
    if accepts_gzip(req.headers()) && !asset.gzip.is_empty() {
        builder
            .header(header::CONTENT_ENCODING, "gzip")
            .body(asset.gzip.clone())
    } else {
        builder.body(asset.plain.clone())
    }
}

#[handler]
fn asset_file(
    req: &Request,
    pages: Data<&Arc<Pages>>,
    Path((version, name)): Path<(String, String)>,
) -> Response {
    let Some(asset) = pages.assets.get(&name) else {
        return Response::builder()
            .status(StatusCode::NOT_FOUND)
            .content_type("text/plain; charset=utf-8")
            .body("Not found");
    };
    // A page rendered before a restart may ask for the previous version: answer with the
    // current file, but do not let it be cached under the old name.
    let cache = if version == pages.assets.version {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    serve_asset(req, asset, cache)
}

/// The host-page script. Its URL is fixed (it sits in clinics' sites), so it is revalidated
/// often; it is loaded cross-origin by design.
#[handler]
fn embed_js(req: &Request, pages: Data<&Arc<Pages>>) -> Response {
    let mut resp = serve_asset(req, &pages.assets.embed, "public, max-age=300");
    resp.headers_mut().insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("cross-origin"),
    );
    resp
}
