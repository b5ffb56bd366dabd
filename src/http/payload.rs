//! `SerdeJson<T>`: a JSON response serialised straight to bytes with serde, for large bodies
//! on hot paths (a month of slots). poem-openapi's `Json<T>` first builds a
//! `serde_json::Value` tree, which dominated the cost of availability responses. The bytes
//! can be kept and answered again. The OpenAPI schema is still `T`'s, so the two must agree:
//! derive both `Object` and `Serialize`.

use std::marker::PhantomData;

use bytes::Bytes;
use poem::{IntoResponse, Response, http::StatusCode};
use poem_openapi::{
    ApiResponse,
    payload::Payload,
    registry::{MetaMediaType, MetaResponse, MetaResponses, MetaSchemaRef, Registry},
    types::Type,
};
use serde::Serialize;

pub struct SerdeJson<T> {
    body: Bytes,
    schema: PhantomData<T>,
}

impl<T: Serialize> SerdeJson<T> {
    pub fn new(value: &T) -> Result<Self, serde_json::Error> {
        serde_json::to_vec(value).map(|v| Self::from_bytes(Bytes::from(v)))
    }
}

impl<T> SerdeJson<T> {
    /// Bytes that `new` of the same `T` produced, or that are exactly what it would produce
    /// (`api::slot_json` writes an availability answer directly, tested against serde).
    pub fn from_bytes(body: Bytes) -> Self {
        Self {
            body,
            schema: PhantomData,
        }
    }

    pub fn bytes(&self) -> Bytes {
        self.body.clone()
    }
}

impl<T: Type + Send> Payload for SerdeJson<T> {
    const CONTENT_TYPE: &'static str = "application/json; charset=utf-8";

    fn schema_ref() -> MetaSchemaRef {
        T::schema_ref()
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}

impl<T: Send> IntoResponse for SerdeJson<T> {
    fn into_response(self) -> Response {
        Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(self.body)
    }
}

impl<T: Type + Serialize + Send> ApiResponse for SerdeJson<T> {
    fn meta() -> MetaResponses {
        MetaResponses {
            responses: vec![MetaResponse {
                description: "",
                status: Some(StatusCode::OK.as_u16()),
                status_range: None,
                content: vec![MetaMediaType {
                    content_type: Self::CONTENT_TYPE,
                    schema: Self::schema_ref(),
                }],
                headers: vec![],
            }],
        }
    }

    fn register(registry: &mut Registry) {
        T::register(registry);
    }
}
