//! Black-box tests through HTTP against the real service (one test binary, one build).

mod helpers;

mod auth;
mod availability;
mod bookings;
mod catalogue;
mod configuration;
mod hygiene;
mod schedule;
mod staff_catalogue;
