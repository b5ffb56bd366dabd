//! Reads everything the availability engine needs — working hours, appointments, time off
//! and closures — for some practitioners over a span, in one query per kind. The booking
//! transaction calls the same function, so listing and booking decide on the same data.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::domain::availability::{PractitionerSchedule, Range};

use super::{appointments, schedule};

/// The practitioners' schedules and the clinic's closures over [from, until).
pub async fn load(
    conn: &impl ConnectionTrait,
    practitioner_ids: &[Uuid],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
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
        appointments::blocked_ranges(conn, practitioner_ids, from, until).await?
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
