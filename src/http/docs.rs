//! `/docs`: Swagger UI, built when it is asked for. The page inlines the whole OpenAPI
//! document and Swagger UI's script and styles (over 3 MB); built once at start, as poem-openapi
//! does, it stayed resident for the life of the process although staff open it rarely. Each
//! answer carries the Content-Security-Policy of the very page it serves.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Request, Response, Result,
    http::{HeaderValue, header},
};

use crate::state::AppState;

use super::{headers, openapi};

pub struct Docs {
    pub state: Arc<AppState>,
}

impl Endpoint for Docs {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Response> {
        let mut resp = openapi(&self.state)
            .swagger_ui()
            .call(req)
            .await?
            .into_response();
        let page = resp.take_body().into_string().await?;
        if let Ok(csp) = HeaderValue::from_str(&headers::docs_csp(&page)) {
            resp.headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        resp.set_body(page);
        Ok(resp)
    }
}
