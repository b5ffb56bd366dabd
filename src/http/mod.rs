//! HTTP: the route tree, OpenAPI document, middleware, and the mapping of every error to
//! `application/problem+json`.

pub mod api;
pub mod client;
pub mod cors;
pub mod docs;
pub mod headers;
pub mod middleware;
pub mod pages;
pub mod pagination;
pub mod payload;
pub mod problem;
pub mod rate_limit;
pub mod security;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, IntoResponse, Route, get, handler, web::Data};
use poem_openapi::OpenApiService;

use crate::state::AppState;

pub const API_TITLE: &str = "Frontdesk";

/// Builds the OpenAPI service (all operations), shared by the server and `openapi.json`.
pub fn openapi(state: &Arc<AppState>) -> OpenApiService<api::Apis, ()> {
    OpenApiService::new(api::apis(state), API_TITLE, env!("CARGO_PKG_VERSION"))
        .description(
            "Booking and enquiry backend of a physiotherapy and fitness clinic. Errors are \
             RFC 9457 problem documents with a stable `code`.",
        )
        .server(state.settings.server.public_url.clone())
}

/// The whole application as one endpoint.
pub fn app(state: Arc<AppState>) -> impl Endpoint {
    let service = openapi(&state);
    // The policy of the page as first built; `docs::Docs` sets the one of each page it serves.
    let docs_csp: Arc<str> = headers::docs_csp(&service.swagger_ui_html()).into();
    let spec = service.spec();
    let docs = docs::Docs {
        state: state.clone(),
    };
    let route = Route::new()
        .nest("/", service)
        .nest("/docs", docs)
        .at("/openapi.json", get(openapi_json).data(Arc::new(spec)));
    let route = pages::mount(route, &state);
    // CORS is answered in `middleware::request_context` (see `cors`).
    route
        .data(state.clone())
        // A panic is a bug; the client still gets a problem document, never a dropped reply.
        .with(poem::middleware::CatchPanic::new().with_handler(|_| {
            problem::ApiError::internal("a request handler panicked").into_response()
        }))
        .around(move |next, req| {
            middleware::request_context(next, req, state.clone(), docs_csp.clone())
        })
}

#[handler]
fn openapi_json(spec: Data<&Arc<String>>) -> impl IntoResponse {
    spec.0
        .as_str()
        .to_string()
        .with_content_type("application/json")
}
