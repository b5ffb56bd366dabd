//! Frontdesk: the booking and enquiry backend of a physiotherapy and fitness clinic.
//!
//! Layers: `http` (requests, responses, status mapping) calls `domain` (pure rules and value
//! types) and `store` (sea-orm queries and transactions); `config`, `startup` and `cli` wire
//! them together.

pub mod accounts;
pub mod auth;
pub mod cli;
pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod seed;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
