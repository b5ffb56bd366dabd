//! Black-box tests through HTTP against the real service (one test binary, one build).

mod helpers;

mod abuse;
mod auth;
mod authorization;
mod availability;
mod booking_ahead;
mod bookings;
mod calendar;
mod catalogue;
mod class_changes;
mod classes;
mod configuration;
mod email;
mod email_outage;
mod email_tls;
mod enquiries;
mod erasure;
mod feeds;
mod hygiene;
mod integrity;
mod metrics;
mod openapi;
mod pages;
mod patient_details;
mod patients;
mod rulebook;
mod schedule;
mod schedule_conflicts;
mod series;
mod slot_search;
mod smtp;
mod staff_bookings;
mod staff_catalogue;
mod waitlist;
mod webhooks;
