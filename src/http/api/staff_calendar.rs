//! The staff calendar: `GET /api/v1/staff/calendar` — each practitioner's working hours,
//! appointments and time off over a range of local dates, and the clinic's closures. One
//! query per kind of row, however many days and practitioners the range covers.

use std::{collections::HashSet, sync::Arc};

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use chrono_tz::Tz;
use entity::{closure, practitioner, time_off};
use poem_openapi::{Object, OpenApi, param::Query, payload::Json};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        catalogue::Role,
        hours::{self, WeeklyInterval},
        localtime,
    },
    http::{
        problem::{ApiError, ApiResult},
        security::{Staff, StaffAuth},
    },
    state::AppState,
    store::{
        calendar::{self as calendar_store, CalendarAppointment},
        catalogue as catalogue_store, schedule as schedule_store,
    },
};

use super::{ApiTags, availability::MAX_RANGE_DAYS, bookings::NamedRef};

pub struct StaffCalendarApi {
    pub state: Arc<AppState>,
}

/// A working interval on one date, as instants and as the clinic's local times.
#[derive(Debug, Object)]
pub struct WorkingPeriod {
    /// RFC 3339 in UTC (`Z`).
    pub start: String,
    pub end: String,
    /// The same instants in the clinic's time zone, with its offset.
    pub local_start: String,
    pub local_end: String,
}

/// The patient of an appointment, as far as a calendar needs to know.
#[derive(Debug, Object)]
pub struct CalendarPatient {
    pub name: String,
}

/// An appointment on the calendar.
#[derive(Debug, Object)]
pub struct CalendarEntry {
    pub id: Uuid,
    pub reference: String,
    /// confirmed, arrived, completed, no_show or cancelled.
    pub status: String,
    /// RFC 3339 in UTC (`Z`).
    pub start: String,
    pub end: String,
    /// Start and end in the clinic's time zone, with its offset.
    pub local_start: String,
    pub local_end: String,
    pub service: NamedRef,
    pub patient: CalendarPatient,
    /// The course of treatment (series) this appointment belongs to; null for a single
    /// booking.
    #[oai(nullable)]
    pub series_id: Option<Uuid>,
}

/// A class session the practitioner teaches, with its seat counts.
#[derive(Debug, Object)]
pub struct CalendarClass {
    pub id: Uuid,
    /// scheduled or cancelled.
    pub status: String,
    /// RFC 3339 in UTC (`Z`).
    pub start: String,
    pub end: String,
    /// Start and end in the clinic's time zone, with its offset.
    pub local_start: String,
    pub local_end: String,
    pub service: NamedRef,
    pub capacity: u32,
    /// Confirmed, attended and no-show seats.
    pub seats_taken: u32,
    pub seats_left: u32,
}

/// A blocked period: a practitioner's time off or a clinic closure.
#[derive(Debug, Object)]
pub struct BlockedPeriod {
    pub id: Uuid,
    /// RFC 3339 in UTC (`Z`).
    pub start: String,
    pub end: String,
    /// Start and end in the clinic's time zone, with its offset.
    pub local_start: String,
    pub local_end: String,
    pub reason: String,
}

/// One practitioner's part of the calendar.
#[derive(Debug, Object)]
pub struct PractitionerCalendar {
    pub id: Uuid,
    pub name: String,
    /// Working intervals of each date in the range, by start.
    pub working: Vec<WorkingPeriod>,
    /// Appointments overlapping the range, by start.
    pub appointments: Vec<CalendarEntry>,
    /// Class sessions they teach starting in the range, by start (cancelled ones only with
    /// `include_cancelled`).
    pub classes: Vec<CalendarClass>,
    /// Time off overlapping the range, by start.
    pub time_off: Vec<BlockedPeriod>,
}

/// The calendar of local dates `from..=to`.
#[derive(Debug, Object)]
pub struct Calendar {
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The clinic's IANA time zone, in which the dates and local times are read.
    pub time_zone: String,
    /// By name.
    pub practitioners: Vec<PractitionerCalendar>,
    /// Clinic closures overlapping the range, by start.
    pub closures: Vec<BlockedPeriod>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz)
        .to_rfc3339_opts(SecondsFormat::Secs, false)
}

fn entry(a: CalendarAppointment, tz: Tz) -> CalendarEntry {
    CalendarEntry {
        id: a.id,
        reference: a.reference,
        status: a.status,
        start: utc(a.starts_at),
        end: utc(a.ends_at),
        local_start: local(a.starts_at, tz),
        local_end: local(a.ends_at, tz),
        service: NamedRef {
            id: a.service_id,
            name: a.service_name,
        },
        patient: CalendarPatient {
            name: a.patient_name,
        },
        series_id: a.series_id,
    }
}

fn class_entry(d: &crate::classes::SessionDetails, tz: Tz) -> CalendarClass {
    let count = |v: i32| u32::try_from(v).unwrap_or(0);
    let s = &d.session;
    CalendarClass {
        id: s.id,
        status: s.status.clone(),
        start: utc(s.starts_at),
        end: utc(s.ends_at),
        local_start: local(s.starts_at, tz),
        local_end: local(s.ends_at, tz),
        service: NamedRef {
            id: d.service.id,
            name: d.service.name.clone(),
        },
        capacity: count(s.capacity),
        seats_taken: count(s.seats_taken),
        seats_left: count(d.seats_left()),
    }
}

fn blocked(
    id: Uuid,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    reason: String,
    tz: Tz,
) -> BlockedPeriod {
    BlockedPeriod {
        id,
        start: utc(start),
        end: utc(end),
        local_start: local(start, tz),
        local_end: local(end, tz),
        reason,
    }
}

/// Checks `from..=to`: in order and at most [`MAX_RANGE_DAYS`] dates.
fn check_range(from: NaiveDate, to: NaiveDate) -> Result<(), FieldError> {
    if to < from {
        return Err(FieldError::new("to", "must not be before from"));
    }
    if (to - from).num_days() >= MAX_RANGE_DAYS {
        return Err(FieldError::new(
            "to",
            format!("the range may span at most {MAX_RANGE_DAYS} days"),
        ));
    }
    Ok(())
}

/// Whose calendar the caller gets: `Some(id)` for one practitioner, `None` for the team.
/// Practitioners only ever get their own.
fn scope(staff: &Staff, asked: Option<Uuid>) -> ApiResult<Option<Uuid>> {
    match (staff.role, asked) {
        (Role::Practitioner, _) => match staff.practitioner_id {
            Some(own) if asked.is_none_or(|id| id == own) => Ok(Some(own)),
            _ => Err(ApiError::forbidden()),
        },
        (Role::Admin | Role::Reception, asked) => Ok(asked),
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::Calendar")]
impl StaffCalendarApi {
    /// The calendar of local dates `from..=to` (inclusive, at most 31 days): for each
    /// practitioner their working intervals (expanded to instants per date, DST-correct),
    /// appointments with service and patient name, the class sessions they teach with seat
    /// counts, and time off; and the clinic's closures.
    /// Admin and reception see every active practitioner (plus inactive ones who still have
    /// appointments in the range) or the one asked for; practitioners see only themselves.
    #[oai(path = "/calendar", method = "get")]
    async fn calendar(
        &self,
        auth: StaffAuth,
        /// First local date, `YYYY-MM-DD`.
        from: Query<NaiveDate>,
        /// Last local date (inclusive), `YYYY-MM-DD`.
        to: Query<NaiveDate>,
        /// Only this practitioner (practitioners may only name themselves).
        practitioner_id: Query<Option<Uuid>>,
        /// Also list cancelled appointments (default false).
        include_cancelled: Query<Option<bool>>,
    ) -> ApiResult<Json<Calendar>> {
        let target = scope(&auth.0, practitioner_id.0)?;
        let from = localtime::check_date("from", from.0)?;
        let to = localtime::check_date("to", to.0)?;
        check_range(from, to)?;
        let include_cancelled = include_cancelled.0.unwrap_or(false);
        let db = &self.state.db;
        let tz = self.state.tz;
        let span_from = localtime::instant_at(tz, from, 0);
        let span_until = localtime::instant_at(tz, to, 24 * 60);

        let team: Vec<practitioner::Model> = match target {
            Some(id) => {
                let one = catalogue_store::find_practitioner(db, id).await?;
                match one {
                    Some(p) => vec![p],
                    None => {
                        return Err(ApiError::field("practitioner_id", "no such practitioner"));
                    }
                }
            }
            None => catalogue_store::list_practitioners(db, false).await?,
        };
        let target_ids: Option<Vec<Uuid>> = target.map(|id| vec![id]);
        let appointments = calendar_store::appointments_between(
            db,
            target_ids.as_deref(),
            span_from,
            span_until,
            include_cancelled,
        )
        .await?;
        // Everyone asked for by id; otherwise the active team and anyone inactive who still
        // has appointments to show.
        let booked: HashSet<Uuid> = appointments.iter().map(|a| a.practitioner_id).collect();
        let team: Vec<practitioner::Model> = team
            .into_iter()
            .filter(|p| target.is_some() || p.active || booked.contains(&p.id))
            .collect();
        let ids: Vec<Uuid> = team.iter().map(|p| p.id).collect();
        let sessions =
            crate::store::classes::sessions_between(db, span_from, span_until, Some(&ids), None)
                .await?;
        let sessions: Vec<crate::classes::SessionDetails> =
            crate::classes::sessions_details(db, sessions)
                .await?
                .into_iter()
                .filter(|d| include_cancelled || d.session.status != "cancelled")
                .collect();
        let week_rows = schedule_store::working_hours_of(db, &ids).await?;
        let time_off = schedule_store::time_off_between(db, &ids, span_from, span_until).await?;
        let closures = schedule_store::closures_between(db, span_from, span_until).await?;

        let practitioners = team
            .into_iter()
            .map(|p| {
                let week: Vec<WeeklyInterval> = week_rows
                    .iter()
                    .filter(|r| r.practitioner_id == p.id)
                    .map(schedule_store::to_interval)
                    .collect();
                PractitionerCalendar {
                    id: p.id,
                    working: hours::working_periods(tz, from, to, &week)
                        .into_iter()
                        .map(|(start, end)| WorkingPeriod {
                            start: utc(start),
                            end: utc(end),
                            local_start: local(start, tz),
                            local_end: local(end, tz),
                        })
                        .collect(),
                    appointments: appointments
                        .iter()
                        .filter(|a| a.practitioner_id == p.id)
                        .map(|a| entry(a.clone(), tz))
                        .collect(),
                    classes: sessions
                        .iter()
                        .filter(|d| d.session.practitioner_id == p.id)
                        .map(|d| class_entry(d, tz))
                        .collect(),
                    time_off: time_off
                        .iter()
                        .filter(|t| t.practitioner_id == p.id)
                        .map(|t: &time_off::Model| {
                            blocked(t.id, t.starts_at, t.ends_at, t.reason.clone(), tz)
                        })
                        .collect(),
                    name: p.name,
                }
            })
            .collect();
        Ok(Json(Calendar {
            from,
            to,
            time_zone: self.state.settings.clinic.time_zone.clone(),
            practitioners,
            closures: closures
                .into_iter()
                .map(|c: closure::Model| blocked(c.id, c.starts_at, c.ends_at, c.reason, tz))
                .collect(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn a_range_is_in_order_and_at_most_31_dates() {
        assert!(check_range(date("2030-01-01"), date("2030-01-31")).is_ok());
        assert!(check_range(date("2030-01-01"), date("2030-01-01")).is_ok());
        for (from, to) in [("2030-01-01", "2030-02-01"), ("2030-01-02", "2030-01-01")] {
            assert_eq!(
                check_range(date(from), date(to)).map_err(|e| e.field),
                Err("to".into())
            );
        }
    }

    #[test]
    fn practitioners_are_scoped_to_themselves() {
        let own = Uuid::new_v4();
        let other = Uuid::new_v4();
        let staff = |role, practitioner_id| Staff {
            id: Uuid::new_v4(),
            email: "s@clinic.test".into(),
            name: "S".into(),
            role,
            practitioner_id,
            token_hash: String::new(),
        };
        let p = staff(Role::Practitioner, Some(own));
        assert_eq!(scope(&p, None).ok(), Some(Some(own)));
        assert_eq!(scope(&p, Some(own)).ok(), Some(Some(own)));
        assert!(scope(&p, Some(other)).is_err());
        assert!(scope(&staff(Role::Practitioner, None), None).is_err());
        let r = staff(Role::Reception, None);
        assert_eq!(scope(&r, None).ok(), Some(None));
        assert_eq!(scope(&r, Some(other)).ok(), Some(Some(other)));
    }
}
