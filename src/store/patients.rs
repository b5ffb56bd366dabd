//! Patients and their consents; the staff search, the records behind a subject access export,
//! and erasure.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use entity::{
    appointment, appointment_event, consent, enquiry, enquiry_note, outbox_message, patient,
    practitioner, service,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Func, LikeExpr, Query},
};
use uuid::Uuid;

use crate::domain::booking::BookingStatus;

/// Finds the patient with this email or creates one from `name` and `phone`. An existing
/// record is returned as stored: a booking never changes a patient's details.
pub async fn find_or_create_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
    name: &str,
    phone: Option<&str>,
    now: DateTime<Utc>,
) -> Result<patient::Model, DbErr> {
    find_or_insert_by_email(conn, email, name, phone, now)
        .await
        .map(|(patient, _)| patient)
}

/// [`find_or_create_by_email`], also saying whether this call created the record (a new
/// patient has no other bookings to count).
pub async fn find_or_insert_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
    name: &str,
    phone: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(patient::Model, bool), DbErr> {
    // Locked (on PostgreSQL) so that a booking racing an erasure either waits for it and then
    // no longer finds the erased address, or makes the erasure wait and see the new booking.
    let locked = || by_email_locked_query(email).one(conn);
    if let Some(found) = locked().await? {
        return Ok((found, false));
    }
    // Two first bookings for a new address may race on PostgreSQL: the loser's insert waits for
    // the winner's commit and then does nothing, and both go on with the one row.
    let new = new_from(email, name, phone, now);
    let id = new.id;
    let inserted = patient::Entity::insert(new.clone().into_active_model().reset_all())
        .on_conflict(
            sea_orm::sea_query::OnConflict::column(patient::Column::Email)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(conn)
        .await?;
    // SQLite stores what it is given (text timestamps at full precision), so the row just
    // written is the model; PostgreSQL rounds timestamps, so it is read back there.
    if inserted == 1 && conn.get_database_backend() == sea_orm::DbBackend::Sqlite {
        return Ok((new, true));
    }
    let patient = locked()
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("patient".to_string()))?;
    let created = patient.id == id;
    Ok((patient, created))
}

/// A new patient record with a fresh id, not yet inserted.
pub fn new_from(
    email: &str,
    name: &str,
    phone: Option<&str>,
    now: DateTime<Utc>,
) -> patient::Model {
    patient::Model {
        id: Uuid::new_v4(),
        name: name.to_string(),
        email: Some(email.to_string()),
        phone: phone.map(str::to_string),
        created_at: now,
        updated_at: now,
        erased_at: None,
    }
}

/// The statement inserting `model` as it is, for a caller that batches its writes.
pub fn insert_statement(model: patient::Model) -> sea_orm::sea_query::InsertStatement {
    use sea_orm::QueryTrait;
    patient::Entity::insert(model.into_active_model().reset_all()).into_query()
}

/// The patient holding `email`, locked on PostgreSQL until the transaction ends.
pub fn by_email_locked_query(email: &str) -> sea_orm::Select<patient::Entity> {
    patient::Entity::find()
        .filter(patient::Column::Email.eq(email))
        .lock_exclusive()
}

/// The patient holding this address, if any.
pub async fn find_by_email(
    conn: &impl ConnectionTrait,
    email: &str,
) -> Result<Option<patient::Model>, DbErr> {
    patient::Entity::find()
        .filter(patient::Column::Email.eq(email))
        .one(conn)
        .await
}

/// Writes a patient's changed details.
pub async fn update(
    conn: &impl ConnectionTrait,
    model: patient::Model,
) -> Result<patient::Model, DbErr> {
    model.into_active_model().reset_all().update(conn).await
}

pub async fn find(conn: &impl ConnectionTrait, id: Uuid) -> Result<Option<patient::Model>, DbErr> {
    patient::Entity::find_by_id(id).one(conn).await
}

/// Reads a patient and, on PostgreSQL, locks the row until the transaction ends (SQLite's
/// `BEGIN IMMEDIATE` already keeps other writers out).
pub async fn find_for_update(
    conn: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<patient::Model>, DbErr> {
    patient::Entity::find_by_id(id)
        .lock_exclusive()
        .one(conn)
        .await
}

/// Records the consents given with a booking or enquiry, with time and source.
pub async fn record_consents(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    privacy: bool,
    marketing: bool,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    conn.execute(&consents_insert(
        patient_id, privacy, marketing, source, now,
    ))
    .await?;
    Ok(())
}

/// The statement [`record_consents`] runs, for a caller that batches its writes.
pub fn consents_insert(
    patient_id: Uuid,
    privacy: bool,
    marketing: bool,
    source: &str,
    now: DateTime<Utc>,
) -> sea_orm::sea_query::InsertStatement {
    use sea_orm::QueryTrait;
    let rows = [("privacy", privacy), ("marketing", marketing)].map(|(kind, granted)| {
        consent::ActiveModel {
            id: Set(Uuid::new_v4()),
            patient_id: Set(patient_id),
            kind: Set(kind.to_string()),
            granted: Set(granted),
            at: Set(now),
            source: Set(source.to_string()),
        }
    });
    consent::Entity::insert_many(rows).into_query()
}

/// Creates a patient who gave no email address (a phone or walk-in booking by staff).
pub async fn insert_without_email(
    conn: &impl ConnectionTrait,
    name: &str,
    phone: Option<&str>,
    now: DateTime<Utc>,
) -> Result<patient::Model, DbErr> {
    patient::ActiveModel {
        id: Set(Uuid::new_v4()),
        name: Set(name.to_string()),
        email: Set(None),
        phone: Set(phone.map(str::to_string)),
        created_at: Set(now),
        updated_at: Set(now),
        erased_at: Set(None),
    }
    .insert(conn)
    .await
}

/// The patients with these ids (in no particular order).
pub async fn find_many(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
) -> Result<Vec<patient::Model>, DbErr> {
    patient::Entity::find()
        .filter(patient::Column::Id.is_in(ids.iter().copied()))
        .all(conn)
        .await
}

/// Patients a staff member may see: everyone, or only those with a non-cancelled appointment
/// with one practitioner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    Practitioner(Uuid),
}

impl Scope {
    fn condition(self) -> Condition {
        match self {
            Scope::All => Condition::all(),
            Scope::Practitioner(practitioner_id) => Condition::all().add(
                patient::Column::Id.in_subquery(
                    Query::select()
                        .column(appointment::Column::PatientId)
                        .from(appointment::Entity)
                        .and_where(
                            Expr::col(appointment::Column::PractitionerId).eq(practitioner_id),
                        )
                        .and_where(
                            Expr::col(appointment::Column::Status)
                                .ne(BookingStatus::Cancelled.as_str()),
                        )
                        .to_owned(),
                ),
            ),
        }
    }
}

/// `q` as a case-insensitive substring of the name, email or phone. A query that looks like a
/// phone number also matches the stored number with its spaces and dashes removed.
fn matching(q: &str) -> Condition {
    let escaped = super::escape_like(&q.to_lowercase());
    let pattern = format!("%{escaped}%");
    let mut any = Condition::any();
    for col in [
        patient::Column::Name,
        patient::Column::Email,
        patient::Column::Phone,
    ] {
        any = any.add(
            Expr::expr(Func::lower(Expr::col(col)))
                .like(LikeExpr::new(pattern.clone()).escape('\\')),
        );
    }
    let digits: String = q.chars().filter(char::is_ascii_digit).collect();
    let phone_like = q.chars().all(|c| c.is_ascii_digit() || " -+()".contains(c));
    if phone_like && digits.len() >= 3 {
        let strip =
            |expr: Expr, c: &str| -> Expr { Func::cust("REPLACE").arg(expr).arg(c).arg("").into() };
        let compact = strip(strip(Expr::col(patient::Column::Phone), " "), "-");
        any = any.add(compact.like(format!("%{digits}%")));
    }
    any
}

/// One page of the patients in `scope` matching `q`, by name, and the total.
pub async fn search(
    conn: &impl ConnectionTrait,
    scope: Scope,
    q: Option<&str>,
    page: u64,
    per_page: u64,
) -> Result<(Vec<patient::Model>, u64), DbErr> {
    let mut query = patient::Entity::find().filter(scope.condition());
    if let Some(q) = q.map(str::trim).filter(|q| !q.is_empty()) {
        query = query.filter(matching(q));
    }
    let total = query.clone().count(conn).await?;
    // The drivers bind OFFSET as a signed 64-bit integer.
    let offset = super::page_offset(page, per_page);
    let items = query
        .order_by_asc(Func::lower(Expr::col(patient::Column::Name)))
        .order_by_asc(patient::Column::Id)
        .offset(offset)
        .limit(per_page)
        .all(conn)
        .await?;
    Ok((items, total))
}

/// The patient, if it exists and is in `scope`.
pub async fn find_in_scope(
    conn: &impl ConnectionTrait,
    id: Uuid,
    scope: Scope,
) -> Result<Option<patient::Model>, DbErr> {
    patient::Entity::find_by_id(id)
        .filter(scope.condition())
        .one(conn)
        .await
}

/// A patient's appointments, latest start first; in a practitioner's scope, only their own
/// non-cancelled ones.
pub async fn appointments(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    scope: Scope,
) -> Result<Vec<appointment::Model>, DbErr> {
    let mut query =
        appointment::Entity::find().filter(appointment::Column::PatientId.eq(patient_id));
    if let Scope::Practitioner(practitioner_id) = scope {
        query = query
            .filter(appointment::Column::PractitionerId.eq(practitioner_id))
            .filter(appointment::Column::Status.ne(BookingStatus::Cancelled.as_str()));
    }
    query
        .order_by_desc(appointment::Column::StartsAt)
        .order_by_desc(appointment::Column::Id)
        .all(conn)
        .await
}

/// The services and practitioners that `appointments` name, by id, in two queries.
pub async fn appointment_names(
    conn: &impl ConnectionTrait,
    appointments: &[appointment::Model],
) -> Result<
    (
        HashMap<Uuid, service::Model>,
        HashMap<Uuid, practitioner::Model>,
    ),
    DbErr,
> {
    let service_ids: HashSet<Uuid> = appointments.iter().map(|a| a.service_id).collect();
    let practitioner_ids: HashSet<Uuid> = appointments.iter().map(|a| a.practitioner_id).collect();
    let services = service::Entity::find()
        .filter(service::Column::Id.is_in(service_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let practitioners = practitioner::Entity::find()
        .filter(practitioner::Column::Id.is_in(practitioner_ids))
        .all(conn)
        .await?
        .into_iter()
        .map(|p| (p.id, p))
        .collect();
    Ok((services, practitioners))
}

/// A patient's consents, oldest first.
pub async fn consents(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
) -> Result<Vec<consent::Model>, DbErr> {
    consent::Entity::find()
        .filter(consent::Column::PatientId.eq(patient_id))
        .order_by_asc(consent::Column::At)
        .order_by_asc(consent::Column::Kind)
        .all(conn)
        .await
}

/// The history of these appointments, oldest first.
pub async fn events_of(
    conn: &impl ConnectionTrait,
    appointment_ids: &[Uuid],
) -> Result<Vec<appointment_event::Model>, DbErr> {
    appointment_event::Entity::find()
        .filter(appointment_event::Column::AppointmentId.is_in(appointment_ids.iter().copied()))
        .order_by_asc(appointment_event::Column::At)
        .order_by_asc(appointment_event::Column::Id)
        .all(conn)
        .await
}

/// Enquiries sent from this address (ignoring case), oldest first, with their staff notes.
pub async fn enquiries_from(
    conn: &impl ConnectionTrait,
    email: &str,
) -> Result<Vec<(enquiry::Model, Vec<enquiry_note::Model>)>, DbErr> {
    let enquiries = enquiry::Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(enquiry::Column::Email))).eq(email.to_lowercase()))
        .order_by_asc(enquiry::Column::ReceivedAt)
        .all(conn)
        .await?;
    let mut notes: HashMap<Uuid, Vec<enquiry_note::Model>> = HashMap::new();
    for note in enquiry_note::Entity::find()
        .filter(enquiry_note::Column::EnquiryId.is_in(enquiries.iter().map(|e| e.id)))
        .order_by_asc(enquiry_note::Column::At)
        .all(conn)
        .await?
    {
        notes.entry(note.enquiry_id).or_default().push(note);
    }
    Ok(enquiries
        .into_iter()
        .map(|e| {
            let own = notes.remove(&e.id).unwrap_or_default();
            (e, own)
        })
        .collect())
}

/// Outgoing email about a patient: to or replying to their address, or about their
/// appointments (including the notices to staff).
pub(crate) fn emails_about(email: Option<&str>, appointment_ids: &[Uuid]) -> Condition {
    let mut any = Condition::any()
        .add(outbox_message::Column::AppointmentId.is_in(appointment_ids.iter().copied()));
    if let Some(email) = email {
        let email = email.to_lowercase();
        let escaped = super::escape_like(&email);
        any = any
            .add(
                Expr::expr(Func::lower(Expr::col(outbox_message::Column::ToAddress)))
                    .eq(email.clone()),
            )
            .add(
                Expr::expr(Func::lower(Expr::col(outbox_message::Column::ReplyTo)))
                    .like(LikeExpr::new(format!("%<{escaped}>")).escape('\\')),
            )
            .add(Expr::expr(Func::lower(Expr::col(outbox_message::Column::ReplyTo))).eq(email));
    }
    any
}

/// The outbox rows about a patient (see [`emails_about`]), oldest first.
pub async fn emails(
    conn: &impl ConnectionTrait,
    email: Option<&str>,
    appointment_ids: &[Uuid],
) -> Result<Vec<outbox_message::Model>, DbErr> {
    outbox_message::Entity::find()
        .filter(emails_about(email, appointment_ids))
        .order_by_asc(outbox_message::Column::CreatedAt)
        .order_by_asc(outbox_message::Column::Id)
        .all(conn)
        .await
}

/// Confirmed appointments of a patient that start after `now`, soonest first.
pub async fn upcoming_confirmed(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    now: DateTime<Utc>,
) -> Result<Vec<appointment::Model>, DbErr> {
    appointment::Entity::find()
        .filter(appointment::Column::PatientId.eq(patient_id))
        .filter(appointment::Column::Status.eq(BookingStatus::Confirmed.as_str()))
        .filter(appointment::Column::StartsAt.gt(now))
        .order_by_asc(appointment::Column::StartsAt)
        .all(conn)
        .await
}
