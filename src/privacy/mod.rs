//! Privacy: the patient's rights and the clinic's retention promises, as services the HTTP
//! handlers and the hourly housekeeping call.
//!
//! - `export`: everything held about a patient (UK GDPR subject access).
//! - `erasure`: cancel their future bookings (with the usual emails), then anonymise every
//!   copy of their data, in any table and any outbox state.
//! - `retention`: the hourly purge, in bounded batches, and the scrubbing of erased patients'
//!   emails once the erasure's own cancellations have gone out.

pub mod erasure;
pub mod export;
pub mod retention;
