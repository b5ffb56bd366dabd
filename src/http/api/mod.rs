//! The operations of the HTTP API, one file per area. Handlers parse input into domain types,
//! call the domain and store layers, and map results to response objects.

pub mod auth;
pub mod availability;
pub mod bookings;
pub mod catalogue;
pub mod classes;
pub mod clinic;
pub mod enquiries;
pub mod feeds;
pub mod ops;
pub mod slot_json;
pub mod staff_bookings;
pub mod staff_calendar;
pub mod staff_classes;
pub mod staff_outbox;
pub mod staff_patients;
pub mod staff_practitioners;
pub mod staff_schedule;
pub mod staff_series;
pub mod staff_services;
pub mod staff_users;
pub mod staff_waitlist;
pub mod staff_webhooks;
pub mod waitlist;

use std::sync::Arc;

use poem_openapi::Tags;
use uuid::Uuid;

use crate::state::AppState;

use super::problem::{ApiError, ApiResult};

#[derive(Tags)]
pub enum ApiTags {
    /// The clinic, its services and its team, as patients see them.
    Catalogue,
    /// Online booking and the patient's manage link.
    Booking,
    /// The contact form and the staff enquiry inbox.
    Enquiries,
    /// Phone and walk-in bookings, the booking list, cancellations and attendance.
    StaffBookings,
    /// Staff sign-in.
    Auth,
    /// Staff management of services and practitioners.
    StaffCatalogue,
    /// Staff management of working hours, time off and closures.
    StaffSchedule,
    /// Group classes: sessions, weekly series, rosters, seats and attendance.
    StaffClasses,
    /// The staff calendar and the practitioners' iCalendar feeds.
    Calendar,
    /// Patient records: search, booking history, subject access export and erasure.
    StaffPatients,
    /// Staff accounts and the audit log (admin).
    StaffAdmin,
    /// Outgoing email: the outbox and retries of dead messages.
    StaffEmail,
    /// Signed webhooks: endpoints, secrets, the delivery log and replays (admin).
    StaffWebhooks,
    /// The waiting list: joining, leaving, and claiming or declining an offered place.
    Waitlist,
    /// Health and metrics.
    Operations,
}

/// Every operation, in two groups (poem-openapi implements `OpenApi` for tuples of up to 16).
pub type Apis = (PublicApis, StaffApis);

pub type PublicApis = (
    ops::OpsApi,
    clinic::ClinicApi,
    catalogue::CatalogueApi,
    availability::AvailabilityApi,
    bookings::BookingsApi,
    classes::ClassesApi,
    enquiries::EnquiriesApi,
    feeds::FeedsApi,
    auth::AuthApi,
    waitlist::WaitlistApi,
);

pub type StaffApis = (
    staff_services::StaffServicesApi,
    staff_bookings::StaffBookingsApi,
    staff_practitioners::StaffPractitionersApi,
    staff_schedule::StaffScheduleApi,
    staff_calendar::StaffCalendarApi,
    staff_users::StaffUsersApi,
    staff_outbox::StaffOutboxApi,
    staff_patients::StaffPatientsApi,
    staff_webhooks::StaffWebhooksApi,
    staff_series::StaffSeriesApi,
    staff_classes::StaffClassesApi,
    staff_waitlist::StaffWaitlistApi,
);

pub fn apis(state: &Arc<AppState>) -> Apis {
    let s = || state.clone();
    (
        (
            ops::OpsApi { state: s() },
            clinic::ClinicApi { state: s() },
            catalogue::CatalogueApi { state: s() },
            availability::AvailabilityApi { state: s() },
            bookings::BookingsApi { state: s() },
            classes::ClassesApi { state: s() },
            enquiries::EnquiriesApi { state: s() },
            feeds::FeedsApi { state: s() },
            auth::AuthApi { state: s() },
            waitlist::WaitlistApi { state: s() },
        ),
        (
            staff_services::StaffServicesApi { state: s() },
            staff_bookings::StaffBookingsApi { state: s() },
            staff_practitioners::StaffPractitionersApi { state: s() },
            staff_schedule::StaffScheduleApi { state: s() },
            staff_calendar::StaffCalendarApi { state: s() },
            staff_users::StaffUsersApi { state: s() },
            staff_outbox::StaffOutboxApi { state: s() },
            staff_patients::StaffPatientsApi { state: s() },
            staff_webhooks::StaffWebhooksApi { state: s() },
            staff_series::StaffSeriesApi { state: s() },
            staff_classes::StaffClassesApi { state: s() },
            staff_waitlist::StaffWaitlistApi { state: s() },
        ),
    )
}

/// Parses an id from a path; anything that is not a UUID cannot name a `what`, so 404.
pub fn path_id(raw: &str, what: &str) -> ApiResult<Uuid> {
    Uuid::parse_str(raw).map_err(|_| ApiError::not_found(what))
}
