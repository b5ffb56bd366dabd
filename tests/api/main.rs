//! Black-box tests through HTTP against the real service (one test binary, one build).

mod helpers;

mod auth;
mod availability;
mod bookings;
mod catalogue;
mod configuration;
mod email;
mod enquiries;
mod hygiene;
mod schedule;
mod smtp;
mod staff_catalogue;
