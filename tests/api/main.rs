//! Black-box tests through HTTP against the real service (one test binary, one build).

mod helpers;

mod auth;
mod authorization;
mod availability;
mod bookings;
mod calendar;
mod catalogue;
mod configuration;
mod email;
mod enquiries;
mod feeds;
mod hygiene;
mod metrics;
mod patients;
mod schedule;
mod slot_search;
mod smtp;
mod staff_bookings;
mod staff_catalogue;
