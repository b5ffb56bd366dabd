//! Waitlist entries: joining (with the confirmation email and its manage link), looking one
//! up by that link, leaving (an offer held by the entry is passed on), and the urgent mark.

use chrono::{DateTime, Utc};
use entity::waitlist_entry;
use sea_orm::{ConnectionTrait, DbErr};
use uuid::Uuid;

use crate::{
    auth::token,
    booking::{Context, ManageToken, patients},
    domain::{
        FieldError,
        booking::PatientDetails,
        waitlist::{EntryStatus, OfferStatus, SlotWish},
    },
    email::{self, Recipient},
    state::AppState,
    store,
};

use super::{WaitlistError, offers};

/// What a join request waits for, parsed at the edge.
#[derive(Debug, Clone)]
pub enum JoinWant {
    Class(Uuid),
    Slot(SlotWish),
}

/// A validated join request.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub want: JoinWant,
    pub patient: PatientDetails,
}

/// A new entry and its manage token (shown once, and emailed).
#[derive(Debug, Clone)]
pub struct Joined {
    pub entry: waitlist_entry::Model,
    pub manage_token: String,
}

/// Puts a patient on the waiting list, in one write transaction with the confirmation email.
pub async fn join(state: &AppState, request: JoinRequest) -> Result<Joined, WaitlistError> {
    let token = ManageToken::generate();
    let txn = state.writer.begin().await?;
    let joined = write_join(&txn, Context::of(state), &request, token, Utc::now()).await?;
    txn.commit().await?;
    Ok(joined)
}

/// The join's write: what the entry names is checked inside `txn`.
pub async fn write_join(
    txn: &sea_orm::DatabaseTransaction,
    ctx: Context<'_>,
    request: &JoinRequest,
    token: ManageToken,
    now: DateTime<Utc>,
) -> Result<Joined, WaitlistError> {
    let invalid =
        |field: &str, message: &str| WaitlistError::Invalid(vec![FieldError::new(field, message)]);
    let (wanted, row) = match &request.want {
        JoinWant::Class(session_id) => {
            let session = store::classes::find_session(txn, *session_id)
                .await?
                .ok_or_else(|| invalid("class_id", "no such class"))?;
            let class = crate::classes::session_details(txn, session).await?;
            if !(class.service.active && class.service.online_bookable) {
                return Err(invalid("class_id", "no such class"));
            }
            if class.session.status != "scheduled" || class.session.starts_at <= now {
                return Err(invalid(
                    "class_id",
                    "this class was cancelled or has started",
                ));
            }
            (
                format!(
                    "{} on {}",
                    class.service.name,
                    email::local_when(class.session.starts_at, ctx.tz)
                ),
                EntryRow {
                    class_session_id: Some(class.session.id),
                    service_id: None,
                    practitioner_id: None,
                    from_date: None,
                    to_date: None,
                    earliest_minute: None,
                    latest_minute: None,
                },
            )
        }
        JoinWant::Slot(wish) => {
            let service = store::catalogue::find_public_service(txn, wish.service_id)
                .await?
                .ok_or_else(|| invalid("service_id", "no such service"))?;
            if service.capacity > 1 {
                return Err(invalid(
                    "service_id",
                    "this is a class: join the waiting list of a session with class_id",
                ));
            }
            let practitioner = match wish.practitioner_id {
                None => None,
                Some(pid) => {
                    let offering =
                        store::catalogue::public_practitioner_ids_for(txn, service.id).await?;
                    if !offering.contains(&pid) {
                        return Err(invalid(
                            "practitioner_id",
                            "no such practitioner offering this service online",
                        ));
                    }
                    store::catalogue::find_practitioner(txn, pid).await?
                }
            };
            let mut wanted = format!(
                "{} between {} and {}",
                service.name,
                wish.from.format("%-d %B %Y"),
                wish.to.format("%-d %B %Y")
            );
            if let Some(p) = &practitioner {
                wanted.push_str(&format!(" with {}", p.name));
            }
            let minute = |m: Option<u32>| m.and_then(|m| i32::try_from(m).ok());
            (
                wanted,
                EntryRow {
                    class_session_id: None,
                    service_id: Some(service.id),
                    practitioner_id: wish.practitioner_id,
                    from_date: Some(wish.from.format("%Y-%m-%d").to_string()),
                    to_date: Some(wish.to.format("%Y-%m-%d").to_string()),
                    earliest_minute: minute(wish.earliest),
                    latest_minute: minute(wish.latest),
                },
            )
        }
    };
    let (patient, _) = patients::for_public_booking(txn, &request.patient, now).await?;
    store::patients::record_consents(
        txn,
        patient.id,
        true,
        request.patient.marketing_consent,
        "waitlist",
        now,
    )
    .await?;
    let entry = store::waitlist::insert_entry(
        txn,
        waitlist_entry::Model {
            id: Uuid::new_v4(),
            class_session_id: row.class_session_id,
            service_id: row.service_id,
            practitioner_id: row.practitioner_id,
            from_date: row.from_date,
            to_date: row.to_date,
            earliest_minute: row.earliest_minute,
            latest_minute: row.latest_minute,
            patient_id: patient.id,
            status: EntryStatus::Waiting.as_str().to_string(),
            urgent: false,
            manage_token_hash: Some(token.hash.clone()),
            created_at: now,
            updated_at: now,
            ended_at: None,
        },
    )
    .await?;
    // Addressed as this request gave the name, never the stored record's (as a booking is).
    let to = Recipient::new(
        request.patient.email.as_str(),
        request.patient.name.as_str(),
    );
    email::waitlist::joined(txn, ctx.settings, &to, &wanted, &token.plain).await?;
    Ok(Joined {
        entry,
        manage_token: token.plain,
    })
}

/// The columns of an entry that say what it waits for.
struct EntryRow {
    class_session_id: Option<Uuid>,
    service_id: Option<Uuid>,
    practitioner_id: Option<Uuid>,
    from_date: Option<String>,
    to_date: Option<String>,
    earliest_minute: Option<i32>,
    latest_minute: Option<i32>,
}

/// The entry a manage token opens, if any.
pub async fn find_by_token(
    conn: &impl ConnectionTrait,
    token_value: &str,
) -> Result<Option<waitlist_entry::Model>, DbErr> {
    store::waitlist::find_entry_by_token_hash(conn, &token::hash(token_value)).await
}

/// Takes the entry off the list. An offer it holds is withdrawn and its place passed on to
/// the next entry. Leaving again changes nothing and succeeds; a claimed or expired entry
/// stays as it is.
pub async fn leave(
    state: &AppState,
    token_value: &str,
) -> Result<waitlist_entry::Model, WaitlistError> {
    let now = Utc::now();
    let hash = token::hash(token_value);
    let txn = state.writer.begin().await?;
    let entry = store::waitlist::find_entry_by_token_hash(&*txn, &hash)
        .await?
        .ok_or(WaitlistError::NotFound)?;
    let status = EntryStatus::parse(&entry.status).unwrap_or(EntryStatus::Left);
    if status.is_active() {
        if let Some(offer) = store::waitlist::open_offer_of(&*txn, entry.id).await? {
            offers::close_and_pass_on(&txn, &offer, OfferStatus::Withdrawn, now, None).await?;
        }
        store::waitlist::set_entry_status(
            &*txn,
            entry.id,
            &[EntryStatus::Waiting, EntryStatus::Offered],
            EntryStatus::Left,
            now,
        )
        .await?;
    }
    let entry = store::waitlist::find_entry(&*txn, entry.id)
        .await?
        .ok_or(WaitlistError::NotFound)?;
    txn.commit().await?;
    Ok(entry)
}

/// Marks an entry urgent (offered before everyone else) or not, audited.
pub async fn set_urgent(
    state: &AppState,
    staff_id: Uuid,
    entry_id: Uuid,
    urgent: bool,
) -> Result<waitlist_entry::Model, WaitlistError> {
    let now = Utc::now();
    let txn = state.writer.begin().await?;
    let entry = store::waitlist::find_entry(&*txn, entry_id)
        .await?
        .ok_or(WaitlistError::NotFound)?;
    store::waitlist::set_urgent(&*txn, entry.id, urgent, now).await?;
    store::audit::record(
        &*txn,
        Some(staff_id),
        "update",
        "waitlist_entry",
        Some(entry.id),
        serde_json::json!({ "urgent": urgent }),
    )
    .await?;
    let entry = store::waitlist::find_entry(&*txn, entry.id)
        .await?
        .ok_or(WaitlistError::NotFound)?;
    txn.commit().await?;
    Ok(entry)
}

/// Ends every active entry of a patient (erasure): offers they hold are withdrawn and their
/// places passed on; the entries are left. Pass the erasure's transaction.
pub async fn end_for_patient(
    txn: &sea_orm::DatabaseTransaction,
    patient_id: Uuid,
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    for entry in store::waitlist::entries_of_patient(txn, patient_id).await? {
        if let Some(offer) = store::waitlist::open_offer_of(txn, entry.id).await? {
            offers::close_and_pass_on(txn, &offer, OfferStatus::Withdrawn, now, None).await?;
        }
        store::waitlist::set_entry_status(
            txn,
            entry.id,
            &[EntryStatus::Waiting, EntryStatus::Offered],
            EntryStatus::Left,
            now,
        )
        .await?;
    }
    Ok(())
}
