//! Reads everything the availability engine needs — working hours, appointments, time off
//! and closures — for some practitioners over a span, in one query per kind. The booking
//! transaction calls the same function, so listing and booking decide on the same data.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{closure, time_off, working_hours};
use sea_orm::{ConnectionTrait, DbErr, QueryTrait, sea_query::SelectStatement};
use uuid::Uuid;

use crate::domain::availability::{PractitionerSchedule, Range};

use super::{appointments, batch, schedule};

/// The practitioners' schedules and the clinic's closures over [from, until), all read
/// afresh (inside the booking transaction). `except` leaves out the appointment being moved.
pub async fn load(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except: Option<Uuid>,
) -> Result<(Vec<PractitionerSchedule>, Vec<Range>), DbErr> {
    let rows = batch::select_all(conn, queries(practitioner_ids, from, until, except)).await?;
    assemble(practitioner_ids, rows)
}

/// The reads of [`load`] (one round trip on SQLite), for a caller that sends them together
/// with reads of its own: working hours, holds, time off, closures, in that order.
pub fn queries(
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except: Option<Uuid>,
) -> Vec<SelectStatement> {
    vec![
        schedule::working_hours_query(practitioner_ids).into_query(),
        appointments::blocked_ranges_query(practitioner_ids, from, until, except).into_query(),
        schedule::time_off_query(practitioner_ids, from, until).into_query(),
        schedule::closures_query(from, until).into_query(),
    ]
}

/// The schedules and closures from the rows of [`queries`].
pub fn assemble(
    practitioner_ids: &[Uuid],
    rows: Vec<batch::Rows>,
) -> Result<(Vec<PractitionerSchedule>, Vec<Range>), DbErr> {
    let [hours, holds, time_off, closures]: [batch::Rows; 4] = rows
        .try_into()
        .map_err(|_| DbErr::Custom("the schedule reads came back incomplete".into()))?;
    let mut by_id: HashMap<Uuid, PractitionerSchedule> = practitioner_ids
        .iter()
        .map(|&id| {
            (
                id,
                PractitionerSchedule {
                    practitioner_id: id,
                    week: Vec::new(),
                    appointments: Vec::new(),
                    time_off: Vec::new(),
                },
            )
        })
        .collect();
    for row in hours.decode::<working_hours::Model>()? {
        if let Some(s) = by_id.get_mut(&row.practitioner_id) {
            s.week.push(schedule::to_interval(&row));
        }
    }
    for hold in holds.decode::<appointments::BlockedRange>()? {
        if let Some(s) = by_id.get_mut(&hold.practitioner_id) {
            s.appointments.push(Range {
                start: hold.blocked_from,
                end: hold.blocked_until,
            });
        }
    }
    for row in time_off.decode::<time_off::Model>()? {
        if let Some(s) = by_id.get_mut(&row.practitioner_id) {
            s.time_off.push(Range {
                start: row.starts_at,
                end: row.ends_at,
            });
        }
    }
    let closures = closures
        .decode::<closure::Model>()?
        .into_iter()
        .map(|c| Range {
            start: c.starts_at,
            end: c.ends_at,
        })
        .collect();
    let schedules = practitioner_ids
        .iter()
        .filter_map(|id| by_id.remove(id))
        .collect();
    Ok((schedules, closures))
}

/// The slowly-changing inputs of a public slot search for one service: the service, the
/// practitioners offering it online, their weeks and time off, and the clinic's closures.
#[derive(Debug)]
pub struct StaticInputs {
    pub service: entity::service::Model,
    pub practitioner_ids: Vec<Uuid>,
    /// The same practitioners' records, by id (what an online booking renders its emails from
    /// before its write slot).
    pub practitioners: Vec<entity::practitioner::Model>,
    pub weeks: HashMap<Uuid, Vec<crate::domain::hours::WeeklyInterval>>,
    /// Their time off that had not ended two days before the read.
    pub time_off: HashMap<Uuid, Vec<Range>>,
    pub closures: Vec<Range>,
    /// PostgreSQL: the schedule's version, read before everything else
    /// (`online_booking::schedule_version`), so what was read is at least as new as it.
    pub schedule_version: Option<i64>,
}

impl StaticInputs {
    /// Reads them; `None` when the service is unknown or not publicly bookable.
    pub async fn read(
        conn: &impl ConnectionTrait,
        service_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Self>, DbErr> {
        let schedule_version = super::online_booking::schedule_version(conn).await?;
        let (Some(service), practitioners) =
            super::catalogue::public_service_and_practitioners(conn, service_id).await?
        else {
            return Ok(None);
        };
        let practitioner_ids: Vec<Uuid> = practitioners.iter().map(|p| p.id).collect();
        let mut weeks: HashMap<Uuid, Vec<_>> = HashMap::new();
        for row in schedule::working_hours_of(conn, &practitioner_ids).await? {
            weeks
                .entry(row.practitioner_id)
                .or_default()
                .push(schedule::to_interval(&row));
        }
        let since = now - chrono::Duration::days(2);
        let mut time_off: HashMap<Uuid, Vec<Range>> = HashMap::new();
        for row in schedule::upcoming_time_off(conn, &practitioner_ids, since).await? {
            time_off
                .entry(row.practitioner_id)
                .or_default()
                .push(Range {
                    start: row.starts_at,
                    end: row.ends_at,
                });
        }
        let closures = schedule::upcoming_closures(conn, since)
            .await?
            .into_iter()
            .map(|c| Range {
                start: c.starts_at,
                end: c.ends_at,
            })
            .collect();
        Ok(Some(Self {
            service,
            practitioner_ids,
            practitioners,
            weeks,
            time_off,
            closures,
            schedule_version,
        }))
    }
}

/// A per-instance cache of [`StaticInputs`] by service. It is only ever a copy: this
/// instance clears it on every staff change and other instances see the change within the
/// TTL. SQLite bookings decide nothing on it: they re-read everything inside their
/// transaction (an online booking renders its emails from it ahead of the slot, and again in
/// the slot if the fresh reads differ). A PostgreSQL online booking with one candidate
/// practitioner decides on it, and its statement refuses a copy whose `schedule_version` is no
/// longer current (`online_postgres`).
pub type StaticCache = crate::cache::TtlCache<Uuid, std::sync::Arc<StaticInputs>>;

/// The cached inputs for a service, read afresh when missing or expired.
pub async fn static_inputs(
    cache: &StaticCache,
    conn: &impl ConnectionTrait,
    service_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Option<std::sync::Arc<StaticInputs>>, DbErr> {
    if let Some(hit) = cache.get(&service_id) {
        return Ok(Some(hit));
    }
    let Some(fresh) = StaticInputs::read(conn, service_id, now).await? else {
        return Ok(None);
    };
    let fresh = std::sync::Arc::new(fresh);
    cache.insert(service_id, fresh.clone());
    Ok(Some(fresh))
}
