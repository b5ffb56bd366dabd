//! SeaORM entities, one file per table.

pub mod app_secret;
pub mod appointment;
pub mod appointment_event;
pub mod audit_log;
pub mod class_seat;
pub mod class_series;
pub mod class_session;
pub mod closure;
pub mod consent;
pub mod enquiry;
pub mod enquiry_note;
pub mod idempotency_key;
pub mod outbox_message;
pub mod patient;
pub mod practitioner;
pub mod practitioner_hold;
pub mod practitioner_service;
pub mod series;
pub mod service;
pub mod staff_session;
pub mod staff_user;
pub mod time_off;
pub mod webhook_delivery;
pub mod webhook_endpoint;
pub mod working_hours;
