//! Public slot search: `GET /api/v1/availability` and `GET /api/v1/availability/next`.

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, SecondsFormat, Utc};
use poem_openapi::{Object, OpenApi, param::Query};
use serde::Serialize;
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        availability::{self, PractitionerSchedule, Range, Slot, SlotQuery},
        localtime,
    },
    http::{
        payload::SerdeJson,
        problem::{ApiError, ApiResult},
    },
    state::AppState,
    store::{self, availability::StaticInputs},
};

use super::{ApiTags, slot_json};

/// Longest range one availability query may span, in days (inclusive).
pub const MAX_RANGE_DAYS: i64 = 31;

pub struct AvailabilityApi {
    pub state: Arc<AppState>,
}

/// A bookable time with one practitioner.
#[derive(Debug, Object, Serialize)]
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
#[derive(Debug, Object, Serialize)]
pub struct Availability {
    pub service_id: Uuid,
    /// The clinic's IANA time zone, in which `from`/`to` and `local_start` are read.
    pub time_zone: String,
    /// Sorted by start, then practitioner_id.
    pub slots: Vec<SlotObject>,
}

/// The earliest free slot, if any within the booking horizon.
#[derive(Debug, Object, Serialize)]
pub struct NextSlot {
    #[oai(nullable)]
    pub slot: Option<SlotObject>,
}

pub use crate::domain::policy::rules_for;

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
    /// The service's cached static inputs and the practitioners to search (all who offer it
    /// online, or the one asked for).
    async fn targets(
        &self,
        service_id: Uuid,
        practitioner_id: Option<Uuid>,
        now: DateTime<Utc>,
    ) -> ApiResult<(Arc<StaticInputs>, Vec<Uuid>)> {
        let inputs = store::availability::static_inputs(
            &self.state.slot_inputs,
            &self.state.db,
            service_id,
            now,
        )
        .await?
        .ok_or_else(|| ApiError::not_found("service"))?;
        let ids = match practitioner_id {
            // A class is booked by seats in its sessions (`/classes`), never by slot.
            _ if inputs.service.capacity > 1 => Vec::new(),
            None => inputs.practitioner_ids.clone(),
            Some(pid) if inputs.practitioner_ids.contains(&pid) => vec![pid],
            Some(_) => {
                return Err(ApiError::field(
                    "practitioner_id",
                    "no such practitioner offers this service online",
                ));
            }
        };
        Ok((inputs, ids))
    }

    /// Free slots for local dates `from..=to`: static inputs from the cache, appointments and
    /// time off read fresh in one query.
    async fn search(
        &self,
        inputs: &StaticInputs,
        practitioner_ids: &[Uuid],
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
    ) -> ApiResult<Vec<Slot>> {
        let busy = self.busy(practitioner_ids, from, to).await?;
        Ok(self.free_slots(inputs, practitioner_ids, &busy, from, to, now))
    }

    /// What blocks the practitioners' time over local dates `from..=to`, in one query.
    async fn busy(
        &self,
        practitioner_ids: &[Uuid],
        from: NaiveDate,
        to: NaiveDate,
    ) -> ApiResult<Arc<Vec<(Uuid, DateTime<Utc>, DateTime<Utc>)>>> {
        let tz = self.state.tz;
        // Widen by a day each side: local days and buffers reach past UTC midnight.
        let span_from = localtime::instant_at(tz, from, 0) - Duration::days(1);
        let span_until = localtime::instant_at(tz, to, 24 * 60) + Duration::days(1);
        Ok(self
            .state
            .busy
            .busy_ranges(&self.state.db, practitioner_ids, span_from, span_until)
            .await?)
    }

    /// Free slots for local dates `from..=to`, given what blocks time (read for at least
    /// that span).
    fn free_slots(
        &self,
        inputs: &StaticInputs,
        practitioner_ids: &[Uuid],
        busy: &[(Uuid, DateTime<Utc>, DateTime<Utc>)],
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
    ) -> Vec<Slot> {
        let query = SlotQuery {
            tz: self.state.tz,
            now,
            from,
            to,
            rules: rules_for(&inputs.service, &self.state.settings.policy),
        };
        let schedules: Vec<PractitionerSchedule> = practitioner_ids
            .iter()
            .map(|&id| PractitionerSchedule {
                practitioner_id: id,
                week: inputs.weeks.get(&id).cloned().unwrap_or_default(),
                // Listing only needs to know what blocks time; appointments and time off
                // block alike. (Booking reads them apart to tell 409 from 422.)
                appointments: busy
                    .iter()
                    .filter(|(pid, _, _)| *pid == id)
                    .map(|&(_, start, end)| Range { start, end })
                    .collect(),
                time_off: Vec::new(),
            })
            .collect();
        availability::free_slots(&query, &schedules, &inputs.closures)
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
    ) -> ApiResult<SerdeJson<Availability>> {
        let from = localtime::check_date("from", from.0)?;
        let to = localtime::check_date("to", to.0)?;
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
        // With the answer cache off (`answer_cache_ms = 0`) there is no key to build.
        let key = self
            .state
            .slot_answers
            .is_enabled()
            .then(|| format!("{}|{:?}|{from}|{to}", service_id.0, practitioner_id.0));
        if let Some(key) = &key
            && let Some(body) = self.state.slot_answers.get(key)
        {
            return Ok(SerdeJson::from_bytes(body));
        }
        let now = Utc::now();
        let (inputs, ids) = self.targets(service_id.0, practitioner_id.0, now).await?;
        let slots = self.search(&inputs, &ids, from, to, now).await?;
        let body = slot_json::availability(
            inputs.service.id,
            &self.state.settings.clinic.time_zone,
            self.state.tz,
            &slots,
        );
        let answer = SerdeJson::<Availability>::from_bytes(body.into());
        if let Some(key) = key {
            self.state.slot_answers.insert(key, answer.bytes());
        }
        Ok(answer)
    }

    /// The earliest free slot of a service within the booking horizon, or null.
    #[oai(path = "/availability/next", method = "get")]
    async fn next(
        &self,
        service_id: Query<Uuid>,
        /// Only this practitioner.
        practitioner_id: Query<Option<Uuid>>,
    ) -> ApiResult<SerdeJson<NextSlot>> {
        let key = format!("next|{}|{:?}", service_id.0, practitioner_id.0);
        if let Some(body) = self.state.slot_answers.get(&key) {
            return Ok(SerdeJson::from_bytes(body));
        }
        let now = Utc::now();
        let (inputs, ids) = self.targets(service_id.0, practitioner_id.0, now).await?;
        let tz = self.state.tz;
        let rules = rules_for(&inputs.service, &self.state.settings.policy);
        let first = localtime::local_date(tz, now);
        let last =
            localtime::local_date(tz, now + Duration::days(i64::from(rules.max_advance_days)));
        // One read of what blocks time over the whole horizon; then search a week at a
        // time in memory, since the next slot is usually close.
        let busy = self.busy(&ids, first, last).await?;
        let mut from = first;
        let mut slot = None;
        while from <= last {
            let to = (from + Duration::days(6)).min(last);
            let slots = self.free_slots(&inputs, &ids, &busy, from, to, now);
            if let Some(found) = slots.first() {
                slot = Some(slot_object(found, tz));
                break;
            }
            from = to + Duration::days(1);
        }
        let answer = SerdeJson::new(&NextSlot { slot }).map_err(ApiError::internal)?;
        self.state.slot_answers.insert(key, answer.bytes());
        Ok(answer)
    }
}
