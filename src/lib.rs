//! Frontdesk: the booking and enquiry backend of a physiotherapy and fitness clinic.
//!
//! Layers: `http` (requests, responses, status mapping) calls `domain` (pure rules and value
//! types) and `store` (sea-orm queries and transactions); `config`, `startup` and `cli` wire
//! them together.

// Operations return `Result<T, ApiError>` where `ApiError` derives poem-openapi's
// `ApiResponse` with the problem document inline, as poem-openapi's examples do; the error is
// built once per failed request, so its size does not matter.
#![allow(clippy::result_large_err)]

pub mod accounts;
pub mod alloc;
pub mod auth;
pub mod booking;
pub mod cache;
pub mod classes;
pub mod cli;
pub mod config;
pub mod domain;
pub mod email;
pub mod enquiry;
pub mod http;
pub mod metrics;
pub mod privacy;
pub mod schedule;
pub mod secrets;
pub mod seed;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod waitlist;
pub mod webhooks;
