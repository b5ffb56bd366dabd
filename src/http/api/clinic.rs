//! `GET /api/v1/clinic`: who the clinic is and its booking policy.

use std::sync::Arc;

use poem_openapi::{Object, OpenApi, payload::Json};

use crate::{http::problem::ApiResult, state::AppState};

use super::ApiTags;

pub struct ClinicApi {
    pub state: Arc<AppState>,
}

/// The clinic's booking policy (services may override parts of it).
#[derive(Object)]
pub struct ClinicPolicy {
    pub min_notice_minutes: u32,
    pub max_advance_days: u32,
    pub cancel_notice_hours: u32,
    pub reschedule_notice_hours: u32,
    pub slot_step_minutes: u32,
}

/// The clinic's contact details and policy.
#[derive(Object)]
pub struct Clinic {
    pub name: String,
    pub phone: String,
    pub email: String,
    pub address: String,
    /// IANA zone in which working hours and dates are read.
    pub time_zone: String,
    pub policy: ClinicPolicy,
    /// When the clinic promises to answer an enquiry, e.g. "within one working day"
    /// (`enquiries.response_time`).
    pub enquiry_response_time: String,
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Catalogue")]
impl ClinicApi {
    /// The clinic's name, contact details, time zone and booking policy.
    // Never an error of its own, but the layers around every operation (body limit, panics)
    // can still answer a problem document, so the spec lists those statuses too.
    #[oai(path = "/clinic", method = "get")]
    async fn clinic(&self) -> ApiResult<Json<Clinic>> {
        let s = &self.state.settings;
        Ok(Json(Clinic {
            name: s.clinic.name.clone(),
            phone: s.clinic.phone.clone(),
            email: s.clinic.email.clone(),
            address: s.clinic.address.clone(),
            time_zone: s.clinic.time_zone.clone(),
            policy: ClinicPolicy {
                min_notice_minutes: s.policy.min_notice_minutes,
                max_advance_days: s.policy.max_advance_days,
                cancel_notice_hours: s.policy.cancel_notice_hours,
                reschedule_notice_hours: s.policy.reschedule_notice_hours,
                slot_step_minutes: s.policy.slot_step_minutes,
            },
            enquiry_response_time: s.enquiries.response_time.clone(),
        }))
    }
}
