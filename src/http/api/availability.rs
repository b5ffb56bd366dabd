//! Public slot search: `GET /api/v1/availability` and `GET /api/v1/availability/next`.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use entity::service;
use poem_openapi::{Object, OpenApi, param::Query, payload::Json};
use uuid::Uuid;

use crate::{
    config::PolicySettings,
    domain::{
        FieldError,
        availability::{self, ServiceRules, Slot, SlotQuery},
        localtime,
    },
    http::problem::{ApiError, ApiResult},
    state::AppState,
    store,
};

use super::ApiTags;

/// Longest range one availability query may span, in days (inclusive).
pub const MAX_RANGE_DAYS: i64 = 31;

pub struct AvailabilityApi {
    pub state: Arc<AppState>,
}

/// A bookable time with one practitioner.
#[derive(Debug, Object)]
pub struct SlotObject {
    /// Start, RFC 3339 in UTC (`Z`).
    pub start: String,
    /// End (start + duration), RFC 3339 in UTC.
    pub end: String,
    /// Start in the clinic's time zone, with its offset.
    pub local_start: String,
    pub practitioner_id: Uuid,
}

/// Free slots of a service over a range of local dates.
#[derive(Debug, Object)]
pub struct Availability {
    pub service_id: Uuid,
    /// The clinic's IANA time zone, in which `from`/`to` and `local_start` are read.
    pub time_zone: String,
    /// Sorted by start, then practitioner_id.
    pub slots: Vec<SlotObject>,
}

/// The earliest free slot, if any within the booking horizon.
#[derive(Debug, Object)]
pub struct NextSlot {
    pub slot: Option<SlotObject>,
}

/// The service's rules, with its policy overrides over the clinic's defaults.
pub fn rules_for(s: &service::Model, policy: &PolicySettings) -> ServiceRules {
    let over =
        |v: Option<i32>, default: u32| v.and_then(|v| u32::try_from(v).ok()).unwrap_or(default);
    ServiceRules {
        duration_minutes: over(Some(s.duration_minutes), 0),
        buffer_before_minutes: over(Some(s.buffer_before_minutes), 0),
        buffer_after_minutes: over(Some(s.buffer_after_minutes), 0),
        step_minutes: over(s.slot_step_minutes, policy.slot_step_minutes),
        min_notice_minutes: over(s.min_notice_minutes, policy.min_notice_minutes),
        max_advance_days: over(s.max_advance_days, policy.max_advance_days),
    }
}

pub fn slot_object(slot: &Slot, tz: chrono_tz::Tz) -> SlotObject {
    SlotObject {
        start: slot.start.to_rfc3339_opts(SecondsFormat::Secs, true),
        end: slot.end.to_rfc3339_opts(SecondsFormat::Secs, true),
        local_start: slot
            .start
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false),
        practitioner_id: slot.practitioner_id,
    }
}

impl AvailabilityApi {
    /// The public service and the practitioners to search (all who offer it, or the one asked).
    async fn targets(
        &self,
        service_id: Uuid,
        practitioner_id: Option<Uuid>,
    ) -> ApiResult<(service::Model, Vec<Uuid>)> {
        let db = &self.state.db;
        let service = store::catalogue::find_public_service(db, service_id)
            .await?
            .ok_or_else(|| ApiError::not_found("service"))?;
        let mut ids = store::catalogue::public_practitioner_ids_for(db, service_id).await?;
        if let Some(pid) = practitioner_id {
            if !ids.contains(&pid) {
                return Err(ApiError::field(
                    "practitioner_id",
                    "no such practitioner offers this service online",
                ));
            }
            ids = vec![pid];
        }
        Ok((service, ids))
    }

    /// Free slots for local dates `from..=to`.
    async fn search(
        &self,
        service: &service::Model,
        practitioner_ids: &[Uuid],
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<Slot>> {
        let tz = self.state.tz;
        let query = SlotQuery {
            tz,
            now,
            from,
            to,
            rules: rules_for(service, &self.state.settings.policy),
        };
        // Widen by a day each side: local days and buffers reach past UTC midnight.
        let span_from = localtime::instant_at(tz, from, 0) - Duration::days(1);
        let span_until = localtime::instant_at(tz, to, 24 * 60) + Duration::days(1);
        let (schedules, closures) =
            store::availability::load(&self.state.db, practitioner_ids, span_from, span_until)
                .await?;
        Ok(availability::free_slots(&query, &schedules, &closures))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Catalogue")]
impl AvailabilityApi {
    /// Free slots of a service between two local dates (inclusive, at most 31 days).
    #[oai(path = "/availability", method = "get")]
    async fn availability(
        &self,
        service_id: Query<Uuid>,
        /// First local date, `YYYY-MM-DD`.
        from: Query<NaiveDate>,
        /// Last local date (inclusive), `YYYY-MM-DD`.
        to: Query<NaiveDate>,
        /// Only this practitioner.
        practitioner_id: Query<Option<Uuid>>,
    ) -> ApiResult<Json<Availability>> {
        let (from, to) = (from.0, to.0);
        if to < from {
            return Err(FieldError::new("to", "must not be before from").into());
        }
        if (to - from).num_days() >= MAX_RANGE_DAYS {
            return Err(FieldError::new(
                "to",
                format!("the range may span at most {MAX_RANGE_DAYS} days"),
            )
            .into());
        }
        let (service, ids) = self.targets(service_id.0, practitioner_id.0).await?;
        let slots = self.search(&service, &ids, from, to, Utc::now()).await?;
        let tz = self.state.tz;
        Ok(Json(Availability {
            service_id: service.id,
            time_zone: self.state.settings.clinic.time_zone.clone(),
            slots: slots.iter().map(|s| slot_object(s, tz)).collect(),
        }))
    }

    /// The earliest free slot of a service within the booking horizon, or null.
    #[oai(path = "/availability/next", method = "get")]
    async fn next(
        &self,
        service_id: Query<Uuid>,
        /// Only this practitioner.
        practitioner_id: Query<Option<Uuid>>,
    ) -> ApiResult<Json<NextSlot>> {
        let (service, ids) = self.targets(service_id.0, practitioner_id.0).await?;
        let now = Utc::now();
        let tz = self.state.tz;
        let rules = rules_for(&service, &self.state.settings.policy);
        let mut from = localtime::local_date(tz, now);
        let last =
            localtime::local_date(tz, now + Duration::days(i64::from(rules.max_advance_days)));
        // Search a week at a time: the next slot is usually close.
        while from <= last {
            let to = (from + Duration::days(6)).min(last);
            let slots = self.search(&service, &ids, from, to, now).await?;
            if let Some(first) = slots.first() {
                return Ok(Json(NextSlot {
                    slot: Some(slot_object(first, tz)),
                }));
            }
            from = to + Duration::days(1);
        }
        Ok(Json(NextSlot { slot: None }))
    }
}
