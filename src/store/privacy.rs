//! The queries behind erasure, subject access and retention: what is held about a patient
//! beyond their record (audit rows, stored idempotent replies), the scrubbing of every copy,
//! and the purges, each in bounded batches.

use chrono::{DateTime, Utc};
use entity::{
    appointment, appointment_event, audit_log, class_seat, enquiry, enquiry_note, idempotency_key,
    outbox_message, patient,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, IntoActiveModel,
    QueryFilter, QueryOrder, QuerySelect, Set,
    sea_query::{Expr, ExprTrait, Func, Query},
};
use uuid::Uuid;

use crate::{email::outbox, store};

use super::patients::emails_about;

/// The name an erased patient is shown with.
pub const ERASED_NAME: &str = "Erased patient";
/// What replaces erased free text (enquiry messages, staff notes, email bodies).
pub const ERASED_TEXT: &str = "[erased]";

/// Kinds of email addressed to the patient themself (the others go to staff).
const PATIENT_KINDS: [&str; 14] = [
    "booking_confirmed",
    "booking_rescheduled",
    "booking_cancelled",
    "reminder",
    "enquiry_ack",
    "seat_confirmed",
    "class_changed",
    "class_cancelled",
    "seat_cancelled",
    "waitlist_joined",
    "waitlist_offer",
    "waitlist_offer_expired",
    "waitlist_offer_withdrawn",
    "waitlist_offer_reminder",
];

/// What an erasure changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Erasure {
    /// Appointments kept, with their notes blanked and manage links disabled.
    pub appointments: u64,
    /// Enquiries from the patient's address that were anonymised.
    pub enquiries: u64,
    /// Copies of emails that were scrubbed (any status but the erasure's own cancellations).
    pub emails: u64,
}

/// The ids of a patient's appointments and class seats: what their emails, audit rows and
/// stored replies are keyed by.
pub async fn appointment_ids(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
) -> Result<Vec<Uuid>, DbErr> {
    let mut ids: Vec<Uuid> = appointment::Entity::find()
        .select_only()
        .column(appointment::Column::Id)
        .filter(appointment::Column::PatientId.eq(patient_id))
        .into_tuple()
        .all(conn)
        .await?;
    ids.extend(seat_ids(conn, patient_id).await?);
    Ok(ids)
}

/// The ids of a patient's class seats.
pub async fn seat_ids(conn: &impl ConnectionTrait, patient_id: Uuid) -> Result<Vec<Uuid>, DbErr> {
    class_seat::Entity::find()
        .select_only()
        .column(class_seat::Column::Id)
        .filter(class_seat::Column::PatientId.eq(patient_id))
        .into_tuple()
        .all(conn)
        .await
}

/// Audit rows about the patient, their appointments or their waitlist entries, oldest first.
pub async fn audit_about(
    conn: &impl ConnectionTrait,
    patient_id: Uuid,
    appointment_ids: &[Uuid],
) -> Result<Vec<audit_log::Model>, DbErr> {
    let bookings: Vec<String> = appointment_ids.iter().map(Uuid::to_string).collect();
    let entries: Vec<String> = super::waitlist::entries_of_patient(conn, patient_id)
        .await?
        .iter()
        .map(|e| e.id.to_string())
        .collect();
    audit_log::Entity::find()
        .filter(
            Condition::any()
                .add(
                    Condition::all()
                        .add(audit_log::Column::Entity.eq("patient"))
                        .add(audit_log::Column::EntityId.eq(patient_id.to_string())),
                )
                .add(
                    Condition::all()
                        .add(audit_log::Column::Entity.is_in(["booking", "class_seat"]))
                        .add(audit_log::Column::EntityId.is_in(bookings)),
                )
                .add(
                    Condition::all()
                        .add(audit_log::Column::Entity.eq("waitlist_entry"))
                        .add(audit_log::Column::EntityId.is_in(entries)),
                ),
        )
        .order_by_asc(audit_log::Column::At)
        .order_by_asc(audit_log::Column::Id)
        .all(conn)
        .await
}

/// Stored replies to idempotent booking requests that name one of these appointments.
pub async fn idempotent_replies_about(
    conn: &impl ConnectionTrait,
    appointment_ids: &[Uuid],
) -> Result<Vec<idempotency_key::Model>, DbErr> {
    if appointment_ids.is_empty() {
        return Ok(Vec::new());
    }
    idempotency_key::Entity::find()
        .filter(replies_naming(appointment_ids))
        .order_by_asc(idempotency_key::Column::CreatedAt)
        .all(conn)
        .await
}

fn replies_naming(appointment_ids: &[Uuid]) -> Condition {
    appointment_ids.iter().fold(Condition::any(), |any, id| {
        any.add(idempotency_key::Column::ResponseBody.like(format!("%{id}%")))
    })
}

/// Keeps only the codes, ids and times of an audit detail: any other string (free text
/// written before audit rows were codes only) becomes null.
fn codes_only(detail: &str) -> String {
    fn is_code(s: &str) -> bool {
        !s.is_empty()
            && (s
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                || Uuid::parse_str(s).is_ok()
                || DateTime::parse_from_rfc3339(s).is_ok())
    }
    fn clean(v: serde_json::Value) -> serde_json::Value {
        use serde_json::Value;
        match v {
            Value::String(s) if is_code(&s) => Value::String(s),
            // "illness: <note>" kept its code.
            Value::String(s) => match s.split_once(':') {
                Some((code, _)) if is_code(code) => Value::String(code.to_string()),
                _ => Value::Null,
            },
            Value::Array(items) => Value::Array(items.into_iter().map(clean).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, clean(v))).collect())
            }
            other => other,
        }
    }
    match serde_json::from_str::<serde_json::Value>(detail) {
        Ok(v) => clean(v).to_string(),
        Err(_) => "{}".to_string(),
    }
}

/// Scrubs email copies: recipient name, subject, bodies, invitation and last error go, and
/// the patient's address becomes `erased+<patient id>@invalid`; a pending or dead copy becomes
/// void, so nothing with erased content is ever sent. Returns how many rows it scrubbed.
async fn scrub_emails(
    conn: &impl ConnectionTrait,
    ids: &[Uuid],
    patient_id: Uuid,
    patient_email: Option<&str>,
) -> Result<u64, DbErr> {
    if ids.is_empty() {
        return Ok(0);
    }
    let erased_address = format!("erased+{patient_id}@invalid");
    let mut to_patient = Condition::any().add(outbox_message::Column::Kind.is_in(PATIENT_KINDS));
    if let Some(address) = patient_email {
        to_patient = to_patient.add(
            Expr::expr(Func::lower(Expr::col(outbox_message::Column::ToAddress)))
                .eq(address.to_lowercase()),
        );
    }
    outbox_message::Entity::update_many()
        .col_expr(
            outbox_message::Column::ToAddress,
            Expr::value(erased_address),
        )
        .filter(outbox_message::Column::Id.is_in(ids.iter().copied()))
        .filter(to_patient)
        .exec(conn)
        .await?;
    outbox_message::Entity::update_many()
        .col_expr(outbox_message::Column::Status, Expr::value(outbox::VOID))
        .col_expr(
            outbox_message::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(outbox_message::Column::Id.is_in(ids.iter().copied()))
        .filter(outbox_message::Column::Status.is_in([outbox::PENDING, outbox::DEAD]))
        .exec(conn)
        .await?;
    Ok(outbox_message::Entity::update_many()
        .col_expr(outbox_message::Column::ToName, Expr::value(""))
        .col_expr(
            outbox_message::Column::ReplyTo,
            Expr::value(Option::<String>::None),
        )
        .col_expr(outbox_message::Column::Subject, Expr::value(ERASED_TEXT))
        .col_expr(outbox_message::Column::TextBody, Expr::value(ERASED_TEXT))
        .col_expr(outbox_message::Column::HtmlBody, Expr::value(ERASED_TEXT))
        .col_expr(
            outbox_message::Column::Ics,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox_message::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(outbox_message::Column::Id.is_in(ids.iter().copied()))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Anonymises a patient inside the caller's transaction. Name, email and phone go; the
/// appointments stay (notes and cancellation reasons blanked, manage links disabled, the
/// history of cancellations without reasons); enquiries from the same address lose name,
/// address, phone, message, staff notes and IP hash; every email copy about the patient is
/// scrubbed, in any status, except the cancellations this erasure queued itself (pending
/// emails about `own_cancellations` created at or after `since`), which go out first and are
/// scrubbed by [`scrub_erased_mail`] once sent or dead; audit rows about them keep codes and
/// ids only; stored replies to their idempotent requests are deleted. Consents stay, as the
/// record of what the patient agreed to. Future bookings must have been cancelled before.
pub async fn erase(
    conn: &impl ConnectionTrait,
    patient: patient::Model,
    own_cancellations: &[Uuid],
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<(patient::Model, Erasure), DbErr> {
    let email = patient.email.clone();
    let appointment_ids = appointment_ids(conn, patient.id).await?;
    // Notes and cancellation reasons can hold health details in the patient's own words.
    let appointments = appointment::Entity::update_many()
        .col_expr(appointment::Column::Notes, Expr::value(""))
        .col_expr(
            appointment::Column::CancelReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            appointment::Column::ManageTokenHash,
            Expr::value(Option::<String>::None),
        )
        .filter(appointment::Column::PatientId.eq(patient.id))
        .exec(conn)
        .await?
        .rows_affected;
    // A seat's notes and cancellation reason are the patient's words too.
    class_seat::Entity::update_many()
        .col_expr(class_seat::Column::Notes, Expr::value(""))
        .col_expr(
            class_seat::Column::CancelReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            class_seat::Column::ManageTokenHash,
            Expr::value(Option::<String>::None),
        )
        .filter(class_seat::Column::PatientId.eq(patient.id))
        .exec(conn)
        .await?;
    if !appointment_ids.is_empty() {
        appointment_event::Entity::update_many()
            .col_expr(
                appointment_event::Column::Detail,
                Expr::value(r#"{"erased":true}"#),
            )
            .filter(appointment_event::Column::AppointmentId.is_in(appointment_ids.clone()))
            .filter(appointment_event::Column::Kind.eq("cancelled"))
            .exec(conn)
            .await?;
        idempotency_key::Entity::delete_many()
            .filter(replies_naming(&appointment_ids))
            .exec(conn)
            .await?;
    }
    for row in audit_about(conn, patient.id, &appointment_ids).await? {
        let cleaned = codes_only(&row.detail);
        if cleaned != row.detail {
            let mut row = row.into_active_model();
            row.detail = Set(cleaned);
            row.update(conn).await?;
        }
    }

    let own = Condition::all()
        .add(outbox_message::Column::Status.eq(outbox::PENDING))
        .add(outbox_message::Column::AppointmentId.is_in(own_cancellations.iter().copied()))
        .add(outbox_message::Column::CreatedAt.gte(since));
    let email_ids: Vec<Uuid> = outbox_message::Entity::find()
        .select_only()
        .column(outbox_message::Column::Id)
        .filter(emails_about(email.as_deref(), &appointment_ids))
        .filter(own.not())
        .into_tuple()
        .all(conn)
        .await?;
    let emails = scrub_emails(conn, &email_ids, patient.id, email.as_deref()).await?;

    let mut enquiries = 0;
    if let Some(address) = &email {
        let rows = enquiry::Entity::find()
            .filter(
                Expr::expr(Func::lower(Expr::col(enquiry::Column::Email)))
                    .eq(address.to_lowercase()),
            )
            .all(conn)
            .await?;
        enquiry_note::Entity::update_many()
            .col_expr(enquiry_note::Column::Text, Expr::value(ERASED_TEXT))
            .filter(enquiry_note::Column::EnquiryId.is_in(rows.iter().map(|e| e.id)))
            .exec(conn)
            .await?;
        for row in rows {
            let id = row.id;
            let mut row = row.into_active_model();
            row.name = Set("Erased".to_string());
            row.email = Set(format!("erased+{id}@invalid"));
            row.phone = Set(None);
            row.message = Set(ERASED_TEXT.to_string());
            row.ip_hash = Set(String::new());
            row.update(conn).await?;
            enquiries += 1;
        }
    }

    // Their waitlist links open nothing any more (the entries were ended before).
    let entry_ids: Vec<Uuid> = super::waitlist::entries_of_patient(conn, patient.id)
        .await?
        .iter()
        .map(|e| e.id)
        .collect();
    super::waitlist::forget_tokens_of_patient(conn, &entry_ids).await?;

    let mut row = patient.into_active_model();
    row.name = Set(ERASED_NAME.to_string());
    row.email = Set(None);
    row.phone = Set(None);
    row.erased_at = Set(Some(now));
    row.updated_at = Set(now);
    let patient = row.update(conn).await?;
    Ok((
        patient,
        Erasure {
            appointments,
            enquiries,
            emails,
        },
    ))
}

/// Scrubs up to `limit` copies of emails about erased patients' appointments that are sent
/// or dead but still hold content: the erasure's own cancellations, once delivered (or given
/// up on). Returns how many it scrubbed.
pub async fn scrub_erased_mail(conn: &impl ConnectionTrait, limit: u64) -> Result<u64, DbErr> {
    let erased_appointments = Query::select()
        .column(appointment::Column::Id)
        .from(appointment::Entity)
        .and_where(
            Expr::col(appointment::Column::PatientId).in_subquery(
                Query::select()
                    .column(patient::Column::Id)
                    .from(patient::Entity)
                    .and_where(Expr::col(patient::Column::ErasedAt).is_not_null())
                    .to_owned(),
            ),
        )
        .to_owned();
    let erased_seats = Query::select()
        .column(class_seat::Column::Id)
        .from(class_seat::Entity)
        .and_where(
            Expr::col(class_seat::Column::PatientId).in_subquery(
                Query::select()
                    .column(patient::Column::Id)
                    .from(patient::Entity)
                    .and_where(Expr::col(patient::Column::ErasedAt).is_not_null())
                    .to_owned(),
            ),
        )
        .to_owned();
    let rows: Vec<(Uuid, Option<Uuid>)> = outbox_message::Entity::find()
        .select_only()
        .column(outbox_message::Column::Id)
        .column(outbox_message::Column::AppointmentId)
        .filter(outbox_message::Column::Status.is_in([outbox::SENT, outbox::DEAD]))
        .filter(outbox_message::Column::Subject.ne(ERASED_TEXT))
        .filter(
            Condition::any()
                .add(outbox_message::Column::AppointmentId.in_subquery(erased_appointments))
                .add(outbox_message::Column::AppointmentId.in_subquery(erased_seats)),
        )
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    let appointment_ids: Vec<Uuid> = rows.iter().filter_map(|(_, a)| *a).collect();
    let mut owners: Vec<(Uuid, Uuid)> = appointment::Entity::find()
        .select_only()
        .column(appointment::Column::Id)
        .column(appointment::Column::PatientId)
        .filter(appointment::Column::Id.is_in(appointment_ids.clone()))
        .into_tuple()
        .all(conn)
        .await?;
    owners.extend(
        class_seat::Entity::find()
            .select_only()
            .column(class_seat::Column::Id)
            .column(class_seat::Column::PatientId)
            .filter(class_seat::Column::Id.is_in(appointment_ids))
            .into_tuple::<(Uuid, Uuid)>()
            .all(conn)
            .await?,
    );
    let mut by_patient: std::collections::HashMap<Uuid, Vec<Uuid>> = Default::default();
    for (message, appointment) in rows {
        if let Some((_, patient)) = owners.iter().find(|(a, _)| Some(*a) == appointment) {
            by_patient.entry(*patient).or_default().push(message);
        }
    }
    let mut scrubbed = 0;
    for (patient, messages) in by_patient {
        scrubbed += scrub_emails(conn, &messages, patient, None).await?;
    }
    Ok(scrubbed)
}

/// Deletes up to `limit` closed enquiries last changed before `closed_before` and spam
/// before `spam_before`, with their notes; returns how many enquiries went.
pub async fn purge_enquiries(
    conn: &impl ConnectionTrait,
    closed_before: DateTime<Utc>,
    spam_before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let expired = Condition::any()
        .add(
            Condition::all()
                .add(enquiry::Column::Status.eq("closed"))
                .add(enquiry::Column::UpdatedAt.lt(closed_before)),
        )
        .add(
            Condition::all()
                .add(enquiry::Column::Status.eq("spam"))
                .add(enquiry::Column::UpdatedAt.lt(spam_before)),
        );
    let ids: Vec<Uuid> = enquiry::Entity::find()
        .select_only()
        .column(enquiry::Column::Id)
        .filter(expired)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if ids.is_empty() {
        return Ok(0);
    }
    enquiry_note::Entity::delete_many()
        .filter(enquiry_note::Column::EnquiryId.is_in(ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(enquiry::Entity::delete_many()
        .filter(enquiry::Column::Id.is_in(ids))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Deletes up to `limit` expired idempotency keys (they hold copies of responses).
pub async fn purge_idempotency(
    conn: &impl ConnectionTrait,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    let keys: Vec<String> = idempotency_key::Entity::find()
        .select_only()
        .column(idempotency_key::Column::Key)
        .filter(idempotency_key::Column::ExpiresAt.lte(now))
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    if keys.is_empty() {
        return Ok(0);
    }
    Ok(idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::Key.is_in(keys))
        .exec(conn)
        .await?
        .rows_affected)
}

/// Deletes up to `limit` sent or void emails queued before `before`.
pub async fn purge_emails(
    conn: &impl ConnectionTrait,
    before: DateTime<Utc>,
    limit: u64,
) -> Result<u64, DbErr> {
    store::delete_batch::<outbox_message::Entity>(
        conn,
        outbox_message::Column::Id,
        Condition::all()
            .add(outbox_message::Column::Status.is_in([outbox::SENT, outbox::VOID]))
            .add(outbox_message::Column::CreatedAt.lt(before)),
        limit,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::codes_only;

    #[test]
    fn audit_details_keep_codes_ids_and_times_only() {
        let id = "6f1c1f2e-8d1a-4a53-9a7e-0a4f0b1c2d3e";
        let detail = format!(
            r#"{{"reason":"illness: MRI shows ACL tear","by":"{id}","at":"2026-01-05T10:00:00Z","note":"Call Jo on 07700 900123","n":3,"list":["keep","Free Text"]}}"#
        );
        let cleaned: serde_json::Value = serde_json::from_str(&codes_only(&detail)).expect("json");
        assert_eq!(
            cleaned,
            serde_json::json!({ "reason": "illness", "by": id, "at": "2026-01-05T10:00:00Z",
                                "note": null, "n": 3, "list": ["keep", null] })
        );
    }
}
