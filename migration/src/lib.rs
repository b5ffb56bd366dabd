//! Database migrations for Frontdesk, one change per file, shared by SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_catalogue;
mod m20261126_000002_create_schedule;
mod m20261126_000003_create_staff_access;
mod m20261126_000004_create_audit_log;
mod m20261126_000005_create_patients;
mod m20261126_000006_create_appointments;
mod m20261126_000007_appointments_no_overlap;
mod m20261126_000008_create_appointment_events;
mod m20261126_000009_create_idempotency_keys;
mod m20261126_000010_create_outbox;
mod m20261126_000011_create_enquiries;
mod m20261126_000012_create_enquiry_notes;
mod m20261126_000013_add_practitioner_feed_token;
mod m20261202_000001_add_outbox_failures;
mod m20261202_000101_create_app_secrets;
mod m20261202_000102_drop_staff_lockout_columns;
mod m20261202_000301_create_series;
mod m20261202_000302_add_appointment_series_id;
mod m20261202_000303_add_appointment_series_start;
mod m20261202_000701_create_webhook_endpoints;
mod m20261202_000702_create_webhook_deliveries;
mod m20261204_000101_add_service_capacity;
mod m20261204_000102_create_classes;
mod m20261204_000103_create_practitioner_holds;
mod m20261204_000201_create_waitlist_entries;
mod m20261204_000202_create_waitlist_offers;
mod m20261204_000203_create_waitlist_openings;
mod m20261204_000401_book_online_function;
mod m20261204_000501_book_online_arrays;
mod m20261205_000101_schedule_version;
mod m20261205_000201_leaner_online_booking;
mod m20261205_000301_book_online_batches;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_catalogue::Migration),
            Box::new(m20261126_000002_create_schedule::Migration),
            Box::new(m20261126_000003_create_staff_access::Migration),
            Box::new(m20261126_000004_create_audit_log::Migration),
            Box::new(m20261126_000005_create_patients::Migration),
            Box::new(m20261126_000006_create_appointments::Migration),
            Box::new(m20261126_000007_appointments_no_overlap::Migration),
            Box::new(m20261126_000008_create_appointment_events::Migration),
            Box::new(m20261126_000009_create_idempotency_keys::Migration),
            Box::new(m20261126_000010_create_outbox::Migration),
            Box::new(m20261126_000011_create_enquiries::Migration),
            Box::new(m20261126_000012_create_enquiry_notes::Migration),
            Box::new(m20261126_000013_add_practitioner_feed_token::Migration),
            Box::new(m20261202_000001_add_outbox_failures::Migration),
            Box::new(m20261202_000101_create_app_secrets::Migration),
            Box::new(m20261202_000102_drop_staff_lockout_columns::Migration),
            Box::new(m20261202_000301_create_series::Migration),
            Box::new(m20261202_000302_add_appointment_series_id::Migration),
            Box::new(m20261202_000303_add_appointment_series_start::Migration),
            Box::new(m20261202_000701_create_webhook_endpoints::Migration),
            Box::new(m20261202_000702_create_webhook_deliveries::Migration),
            Box::new(m20261204_000101_add_service_capacity::Migration),
            Box::new(m20261204_000102_create_classes::Migration),
            Box::new(m20261204_000103_create_practitioner_holds::Migration),
            Box::new(m20261204_000201_create_waitlist_entries::Migration),
            Box::new(m20261204_000202_create_waitlist_offers::Migration),
            Box::new(m20261204_000203_create_waitlist_openings::Migration),
            Box::new(m20261204_000401_book_online_function::Migration),
            Box::new(m20261204_000501_book_online_arrays::Migration),
            Box::new(m20261205_000101_schedule_version::Migration),
            Box::new(m20261205_000201_leaner_online_booking::Migration),
            Box::new(m20261205_000301_book_online_batches::Migration),
        ]
    }
}
