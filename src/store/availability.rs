//! Reads everything the availability engine needs — working hours, appointments, time off
//! and closures — for some practitioners over a span, in one query per kind. The booking
//! transaction calls the same function, so listing and booking decide on the same data.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::domain::availability::{PractitionerSchedule, Range};

use super::{appointments, schedule};

/// The practitioners' schedules and the clinic's closures over [from, until), all read
/// afresh (inside the booking transaction). `except` leaves out the appointment being moved.
pub async fn load(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    except: Option<Uuid>,
) -> Result<(Vec<PractitionerSchedule>, Vec<Range>), DbErr> {
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
    for row in schedule::working_hours_of(conn, practitioner_ids).await? {
        if let Some(s) = by_id.get_mut(&row.practitioner_id) {
            s.week.push(schedule::to_interval(&row));
        }
    }
    for (id, start, end) in
        appointments::blocked_ranges(conn, practitioner_ids, from, until, except).await?
    {
        if let Some(s) = by_id.get_mut(&id) {
            s.appointments.push(Range { start, end });
        }
    }
    for row in schedule::time_off_between(conn, practitioner_ids, from, until).await? {
        if let Some(s) = by_id.get_mut(&row.practitioner_id) {
            s.time_off.push(Range {
                start: row.starts_at,
                end: row.ends_at,
            });
        }
    }
    let closures = schedule::closures_between(conn, from, until)
        .await?
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
/// practitioners offering it online, their weeks and the clinic's closures.
#[derive(Debug)]
pub struct StaticInputs {
    pub service: entity::service::Model,
    pub practitioner_ids: Vec<Uuid>,
    pub weeks: HashMap<Uuid, Vec<crate::domain::hours::WeeklyInterval>>,
    pub closures: Vec<Range>,
}

impl StaticInputs {
    /// Reads them; `None` when the service is unknown or not publicly bookable.
    pub async fn read(
        conn: &impl ConnectionTrait,
        service_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<Option<Self>, DbErr> {
        let Some(service) = super::catalogue::find_public_service(conn, service_id).await? else {
            return Ok(None);
        };
        let practitioner_ids =
            super::catalogue::public_practitioner_ids_for(conn, service_id).await?;
        let mut weeks: HashMap<Uuid, Vec<_>> = HashMap::new();
        for row in schedule::working_hours_of(conn, &practitioner_ids).await? {
            weeks
                .entry(row.practitioner_id)
                .or_default()
                .push(schedule::to_interval(&row));
        }
        let closures = schedule::upcoming_closures(conn, now - chrono::Duration::days(2))
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
            weeks,
            closures,
        }))
    }
}

/// A per-instance cache of [`StaticInputs`] by service. It is only ever a copy: this
/// instance clears it on every staff change, other instances see the change within the TTL,
/// and bookings never use it — they re-read everything inside their transaction.
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
