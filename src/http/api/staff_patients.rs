//! Patient records for staff: search, detail with booking history, the UK GDPR subject access
//! export and erasure (`/api/v1/staff/patients`).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, SecondsFormat, Utc};
use entity::{appointment, consent, patient};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
};
use uuid::Uuid;

use crate::{
    booking::{
        self, BookingDetails,
        patients::{PatientUpdate, PatientUpdateError},
    },
    domain::{
        FieldError,
        catalogue::Role,
        text::{EmailAddress, PersonName, PhoneNumber},
    },
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::{Staff, StaffAuth},
    },
    privacy::{self, erasure::ErasureError, export::Held},
    state::AppState,
    store::{self, patients::Scope},
};

use super::{
    ApiTags,
    bookings::{Booking, booking_object, booking_problem},
    classes::{Seat, class_problem, seat_object},
    enquiries::EnquiryNote,
    path_id,
};

pub struct StaffPatientsApi {
    pub state: Arc<AppState>,
}

/// A patient in a search result.
#[derive(Debug, Object)]
pub struct PatientItem {
    pub id: Uuid,
    /// "Erased patient" once erased.
    pub name: String,
    /// Null for patients booked by phone without one, and after erasure.
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
    pub created_at: String,
}

/// A change to a patient's stored details; omitted fields stay as they are, `null` clears
/// email or phone.
#[derive(Debug, Object)]
pub struct PatientPatch {
    pub name: MaybeUndefined<String>,
    /// null removes the address.
    pub email: MaybeUndefined<String>,
    /// null removes the number.
    pub phone: MaybeUndefined<String>,
}

/// Parses a patch into domain types, collecting every field error.
fn parse_patch(patch: &PatientPatch) -> Result<PatientUpdate, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut update = PatientUpdate::default();
    match &patch.name {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => errors.push(FieldError::new("name", "cannot be removed")),
        MaybeUndefined::Value(v) => match PersonName::parse("name", v) {
            Ok(name) => update.name = Some(name),
            Err(e) => errors.push(e),
        },
    }
    let blank = |v: &str| v.trim().is_empty();
    match &patch.email {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => update.email = Some(None),
        MaybeUndefined::Value(v) if blank(v) => update.email = Some(None),
        MaybeUndefined::Value(v) => match EmailAddress::parse("email", v.trim()) {
            Ok(email) => update.email = Some(Some(email)),
            Err(e) => errors.push(e),
        },
    }
    match &patch.phone {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => update.phone = Some(None),
        MaybeUndefined::Value(v) if blank(v) => update.phone = Some(None),
        MaybeUndefined::Value(v) => match PhoneNumber::parse("phone", v.trim()) {
            Ok(phone) => update.phone = Some(Some(phone)),
            Err(e) => errors.push(e),
        },
    }
    if errors.is_empty() {
        Ok(update)
    } else {
        Err(errors)
    }
}

/// A consent the patient gave or refused.
#[derive(Debug, Object)]
pub struct PatientConsent {
    /// privacy or marketing.
    pub kind: String,
    pub granted: bool,
    pub at: String,
    /// Where it was given: online_booking, enquiry, staff.
    pub source: String,
}

/// A patient with their bookings and consents.
#[derive(Debug, Object)]
pub struct PatientDetail {
    pub id: Uuid,
    pub name: String,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
    pub created_at: String,
    /// When the patient's personal data was erased; null while it is held.
    #[oai(nullable)]
    pub erased_at: Option<String>,
    /// Their bookings, latest start first (for a practitioner: only those with them).
    pub bookings: Vec<Booking>,
    /// Oldest first.
    pub consents: Vec<PatientConsent>,
}

/// The patient row as stored.
#[derive(Debug, Object)]
pub struct ExportedPatient {
    pub id: Uuid,
    pub name: String,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    #[oai(nullable)]
    pub erased_at: Option<String>,
}

/// One entry of a booking's history.
#[derive(Debug, Object)]
pub struct ExportedEvent {
    pub at: String,
    /// created, rescheduled, cancelled, arrived, completed, no_show.
    pub kind: String,
    /// patient or staff.
    pub actor: String,
    #[oai(nullable)]
    pub staff_id: Option<Uuid>,
    pub detail: serde_json::Value,
}

/// An appointment with everything stored about it.
#[derive(Debug, Object)]
pub struct ExportedAppointment {
    pub booking: Booking,
    /// online or staff.
    pub source: String,
    #[oai(nullable)]
    pub cancel_reason: Option<String>,
    pub updated_at: String,
    /// Oldest first.
    pub events: Vec<ExportedEvent>,
}

/// A class seat with everything stored about it.
#[derive(Debug, Object)]
pub struct ExportedSeat {
    pub seat: Seat,
    /// online, staff or waitlist.
    pub source: String,
    pub notes: String,
    #[oai(nullable)]
    pub cancel_reason: Option<String>,
    pub updated_at: String,
}

/// An enquiry sent from the patient's email address.
#[derive(Debug, Object)]
pub struct ExportedEnquiry {
    pub id: Uuid,
    pub reference: String,
    pub status: String,
    pub name: String,
    pub email: String,
    #[oai(nullable)]
    pub phone: Option<String>,
    pub topic: String,
    #[oai(nullable)]
    pub service_id: Option<Uuid>,
    pub message: String,
    pub preferred_contact: String,
    pub marketing_consent: bool,
    pub received_at: String,
    /// Staff notes on the enquiry.
    pub notes: Vec<EnquiryNote>,
}

/// An email sent (or to be sent) to the patient or about their bookings.
#[derive(Debug, Object)]
pub struct ExportedEmail {
    pub id: Uuid,
    pub kind: String,
    pub to: String,
    pub subject: String,
    /// pending, sent, dead or void.
    pub status: String,
    pub created_at: String,
    #[oai(nullable)]
    pub sent_at: Option<String>,
    #[oai(nullable)]
    pub appointment_id: Option<Uuid>,
    /// The plain-text body as sent (or to be sent).
    pub text_body: String,
}

/// An audit-log entry about the patient or their bookings.
#[derive(Debug, Object)]
pub struct ExportedAuditEntry {
    pub at: String,
    #[oai(nullable)]
    pub actor_id: Option<Uuid>,
    pub action: String,
    /// patient or booking.
    pub entity: String,
    #[oai(nullable)]
    pub entity_id: Option<String>,
    /// Codes, ids and times only.
    pub detail: serde_json::Value,
}

/// A stored reply to one of the patient's idempotent booking requests (kept 24 hours).
#[derive(Debug, Object)]
pub struct ExportedStoredResponse {
    pub created_at: String,
    pub expires_at: String,
    pub status: i32,
    pub body: serde_json::Value,
}

/// Everything held about a patient (UK GDPR subject access).
#[derive(Debug, Object)]
pub struct PatientExport {
    pub exported_at: String,
    pub patient: ExportedPatient,
    /// Oldest first.
    pub consents: Vec<PatientConsent>,
    /// Latest start first.
    pub appointments: Vec<ExportedAppointment>,
    /// Class seats, newest first.
    pub seats: Vec<ExportedSeat>,
    /// Enquiries sent from the patient's email address, oldest first.
    pub enquiries: Vec<ExportedEnquiry>,
    /// Emails to the patient or about their bookings, oldest first.
    pub emails: Vec<ExportedEmail>,
    /// Audit-log entries about the patient or their bookings, oldest first.
    pub audit: Vec<ExportedAuditEntry>,
    /// Stored replies to their idempotent booking requests.
    pub stored_responses: Vec<ExportedStoredResponse>,
    /// Their waitlist entries, oldest first, with the offers made to each.
    pub waitlist: Vec<ExportedWaitlistEntry>,
}

/// A waitlist entry of the patient, with its offers.
#[derive(Debug, Object)]
pub struct ExportedWaitlistEntry {
    pub entry: super::waitlist::WaitlistEntry,
    pub urgent: bool,
    #[oai(nullable)]
    pub ended_at: Option<String>,
    pub offers: Vec<ExportedWaitlistOffer>,
}

/// A place offered to the patient from the waiting list.
#[derive(Debug, Object)]
pub struct ExportedWaitlistOffer {
    pub id: Uuid,
    /// open, claimed, declined, expired or withdrawn.
    pub status: String,
    #[oai(nullable)]
    pub class_id: Option<Uuid>,
    #[oai(nullable)]
    pub service_id: Option<Uuid>,
    #[oai(nullable)]
    pub practitioner_id: Option<Uuid>,
    #[oai(nullable)]
    pub start: Option<String>,
    pub expires_at: String,
    pub created_at: String,
    #[oai(nullable)]
    pub decided_at: Option<String>,
}

/// The outcome of an erasure.
#[derive(Debug, Object)]
pub struct PatientErased {
    /// The patient as now stored.
    pub patient: PatientItem,
    pub erased_at: String,
    /// True when the patient had been erased before; nothing was changed this time.
    pub already_erased: bool,
    /// References of the future bookings that were cancelled (with emails) before erasing.
    pub cancelled_bookings: Vec<String>,
    /// Appointments kept for the clinic's records, with notes blanked.
    pub appointments_kept: u64,
    /// Enquiries from the patient's address that were anonymised.
    pub enquiries_anonymised: u64,
    /// Copies of sent emails whose content was removed.
    pub emails_scrubbed: u64,
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn item(p: patient::Model) -> PatientItem {
    PatientItem {
        id: p.id,
        name: p.name,
        email: p.email,
        phone: p.phone,
        created_at: utc(p.created_at),
    }
}

fn consent_object(c: consent::Model) -> PatientConsent {
    PatientConsent {
        kind: c.kind,
        granted: c.granted,
        at: utc(c.at),
        source: c.source,
    }
}

/// Who the caller may see. A practitioner account without a practitioner sees nobody.
fn scope(staff: &Staff) -> Option<Scope> {
    match staff.role {
        Role::Admin | Role::Reception => Some(Scope::All),
        Role::Practitioner => staff.practitioner_id.map(Scope::Practitioner),
    }
}

impl StaffPatientsApi {
    /// The patient if the caller may see them, else 404.
    async fn visible(&self, staff: &Staff, id: Uuid) -> ApiResult<(patient::Model, Scope)> {
        let scope = scope(staff).ok_or_else(|| ApiError::not_found("patient"))?;
        let patient = store::patients::find_in_scope(&self.state.db, id, scope)
            .await?
            .ok_or_else(|| ApiError::not_found("patient"))?;
        Ok((patient, scope))
    }

    /// Booking objects for these appointments, with the same patient, in their order.
    async fn bookings(
        &self,
        patient: &patient::Model,
        appointments: &[appointment::Model],
    ) -> ApiResult<Vec<Booking>> {
        let (services, practitioners) =
            store::patients::appointment_names(&self.state.db, appointments).await?;
        appointments
            .iter()
            .map(|a| {
                let (Some(service), Some(practitioner)) = (
                    services.get(&a.service_id),
                    practitioners.get(&a.practitioner_id),
                ) else {
                    return Err(ApiError::internal(format!(
                        "appointment {} names a missing service or practitioner",
                        a.id
                    )));
                };
                let details = BookingDetails {
                    appointment: a.clone(),
                    service: service.clone(),
                    practitioner: practitioner.clone(),
                    patient: patient.clone(),
                };
                Ok(booking_object(&details, self.state.tz))
            })
            .collect()
    }

    /// The export document for what `privacy::export` gathered.
    async fn export_document(&self, held: Held) -> ApiResult<PatientExport> {
        let Held {
            patient,
            consents,
            appointments,
            events: history,
            seats,
            enquiries,
            emails,
            audit,
            idempotent_replies,
            waitlist,
        } = held;
        let bookings = self.bookings(&patient, &appointments).await?;
        let mut events: HashMap<Uuid, Vec<ExportedEvent>> = HashMap::new();
        for e in history {
            events
                .entry(e.appointment_id)
                .or_default()
                .push(ExportedEvent {
                    at: utc(e.at),
                    detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::Null),
                    kind: e.kind,
                    actor: e.actor,
                    staff_id: e.staff_id,
                });
        }
        let appointments = appointments
            .into_iter()
            .zip(bookings)
            .map(|(a, booking)| ExportedAppointment {
                booking,
                events: events.remove(&a.id).unwrap_or_default(),
                source: a.source,
                cancel_reason: a.cancel_reason,
                updated_at: utc(a.updated_at),
            })
            .collect();
        let seats = seats
            .into_iter()
            .map(|d| ExportedSeat {
                seat: seat_object(&d, self.state.tz),
                source: d.seat.source,
                notes: d.seat.notes,
                cancel_reason: d.seat.cancel_reason,
                updated_at: utc(d.seat.updated_at),
            })
            .collect();
        let enquiries = enquiries
            .into_iter()
            .map(|(e, notes)| ExportedEnquiry {
                id: e.id,
                reference: e.reference,
                status: e.status,
                name: e.name,
                email: e.email,
                phone: e.phone,
                topic: e.topic,
                service_id: e.service_id,
                message: e.message,
                preferred_contact: e.preferred_contact,
                marketing_consent: e.marketing_consent,
                received_at: utc(e.received_at),
                notes: notes
                    .into_iter()
                    .map(|n| EnquiryNote {
                        author: n.author_name,
                        at: utc(n.at),
                        text: n.text,
                    })
                    .collect(),
            })
            .collect();
        let emails = emails
            .into_iter()
            .map(|m| ExportedEmail {
                id: m.id,
                kind: m.kind,
                to: m.to_address,
                subject: m.subject,
                status: m.status,
                created_at: utc(m.created_at),
                sent_at: m.sent_at.map(utc),
                appointment_id: m.appointment_id,
                text_body: m.text_body,
            })
            .collect();
        let audit = audit
            .into_iter()
            .map(|a| ExportedAuditEntry {
                at: utc(a.at),
                actor_id: a.actor_id,
                action: a.action,
                entity: a.entity,
                entity_id: a.entity_id,
                detail: serde_json::from_str(&a.detail).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        let stored_responses = idempotent_replies
            .into_iter()
            .map(|r| ExportedStoredResponse {
                created_at: utc(r.created_at),
                expires_at: utc(r.expires_at),
                status: r.status_code,
                body: serde_json::from_str(&r.response_body).unwrap_or(serde_json::Value::Null),
            })
            .collect();
        let mut waitlist_entries = Vec::with_capacity(waitlist.len());
        for (entry, offers) in waitlist {
            waitlist_entries.push(ExportedWaitlistEntry {
                entry: super::waitlist::entry_object(&self.state.db, &entry).await?,
                urgent: entry.urgent,
                ended_at: entry.ended_at.map(utc),
                offers: offers
                    .into_iter()
                    .map(|o| ExportedWaitlistOffer {
                        id: o.id,
                        status: o.status,
                        class_id: o.class_session_id,
                        service_id: o.service_id,
                        practitioner_id: o.practitioner_id,
                        start: o.starts_at.map(utc),
                        expires_at: utc(o.expires_at),
                        created_at: utc(o.created_at),
                        decided_at: o.decided_at.map(utc),
                    })
                    .collect(),
            });
        }
        Ok(PatientExport {
            exported_at: utc(Utc::now()),
            patient: ExportedPatient {
                id: patient.id,
                name: patient.name,
                email: patient.email,
                phone: patient.phone,
                created_at: utc(patient.created_at),
                updated_at: utc(patient.updated_at),
                erased_at: patient.erased_at.map(utc),
            },
            consents: consents.into_iter().map(consent_object).collect(),
            appointments,
            seats,
            enquiries,
            emails,
            audit,
            stored_responses,
            waitlist: waitlist_entries,
        })
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffPatients")]
impl StaffPatientsApi {
    /// Patients by name (admin and reception: all patients; a practitioner: those who have or
    /// had an appointment with them).
    #[oai(path = "/patients", method = "get")]
    async fn list(
        &self,
        auth: StaffAuth,
        /// Part of the name, email address or phone number, ignoring case (a phone number
        /// matches with or without spaces).
        q: Query<Option<String>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<PatientItem>>> {
        auth.0
            .require(&[Role::Admin, Role::Reception, Role::Practitioner])?;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let Some(scope) = scope(&auth.0) else {
            return Ok(Json(paging.wrap(Vec::new(), 0)));
        };
        let q: Option<String> = q.0.map(|q| q.chars().take(100).collect());
        let (rows, total) = store::patients::search(
            &self.state.db,
            scope,
            q.as_deref(),
            paging.page,
            paging.per_page,
        )
        .await?;
        Ok(Json(
            paging.wrap(rows.into_iter().map(item).collect(), total),
        ))
    }

    /// A patient with their bookings (latest first) and consents. A practitioner sees only
    /// patients with an appointment with them, and only those appointments.
    #[oai(path = "/patients/:id", method = "get")]
    async fn get(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<PatientDetail>> {
        auth.0
            .require(&[Role::Admin, Role::Reception, Role::Practitioner])?;
        let id = path_id(&id, "patient")?;
        let (patient, scope) = self.visible(&auth.0, id).await?;
        let db = &self.state.db;
        let appointments = store::patients::appointments(db, id, scope).await?;
        let bookings = self.bookings(&patient, &appointments).await?;
        let consents = store::patients::consents(db, id)
            .await?
            .into_iter()
            .map(consent_object)
            .collect();
        Ok(Json(PatientDetail {
            id: patient.id,
            name: patient.name,
            email: patient.email,
            phone: patient.phone,
            created_at: utc(patient.created_at),
            erased_at: patient.erased_at.map(utc),
            bookings,
            consents,
        }))
    }

    /// Changes a patient's stored name, email or phone (admin, reception). Bookings never
    /// change an existing patient's details; this does. Audited with the changed field
    /// names only.
    #[oai(path = "/patients/:id", method = "patch")]
    async fn update(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<PatientPatch>,
    ) -> ApiResult<Json<PatientItem>> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        let id = path_id(&id, "patient")?;
        let change = parse_patch(&body.0)?;
        let patient = booking::patients::update(&self.state, id, change, auth.0.id)
            .await
            .map_err(|e| match e {
                PatientUpdateError::NotFound => ApiError::not_found("patient"),
                PatientUpdateError::Erased => ApiError::rule(
                    "patient_erased",
                    "Patient erased",
                    "This patient's personal data was erased; their details cannot be set again.",
                ),
                PatientUpdateError::EmailTaken => ApiError::conflict(
                    "email_taken",
                    "Email address in use",
                    "Another patient record has this email address.",
                ),
                PatientUpdateError::Invalid(errors) => ApiError::validation(errors),
                PatientUpdateError::Database(e) => ApiError::from(e),
            })?;
        Ok(Json(item(patient)))
    }

    /// Everything held about a patient as one JSON document, for a UK GDPR subject access
    /// request (admin): the patient record, consents, every appointment with its history,
    /// enquiries sent from the same email address and the emails sent about them. Audited.
    #[oai(path = "/patients/:id/export", method = "get")]
    async fn export(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<PatientExport>> {
        auth.0.require(&[Role::Admin])?;
        let id = path_id(&id, "patient")?;
        let held = privacy::export::export(&self.state, id, auth.0.id)
            .await?
            .ok_or_else(|| ApiError::not_found("patient"))?;
        Ok(Json(self.export_document(held).await?))
    }

    /// Erases a patient's personal data (admin). Their future confirmed bookings are first
    /// cancelled, with the usual emails, while the address is still known; then name, email
    /// and phone are removed, notes on their appointments blanked and enquiries from their
    /// address anonymised. Appointments are kept for the clinic's records. Erasing again
    /// changes nothing and answers 200. Audited without personal data.
    #[oai(path = "/patients/:id/erase", method = "post")]
    async fn erase(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<PatientErased>> {
        auth.0.require(&[Role::Admin])?;
        let id = path_id(&id, "patient")?;
        let erased = privacy::erasure::erase(&self.state, id, auth.0.id)
            .await
            .map_err(|e| match e {
                ErasureError::NotFound => ApiError::not_found("patient"),
                ErasureError::Interrupted => ApiError::conflict(
                    "erasure_interrupted",
                    "Erasure interrupted",
                    "New bookings kept arriving for this patient while erasing. Their future \
                     bookings are cancelled but their personal data is not erased yet; please \
                     try again.",
                ),
                ErasureError::Booking(e) => booking_problem(e, &self.state.settings.clinic.phone),
                ErasureError::Class(e) => class_problem(e, &self.state.settings.clinic.phone),
                ErasureError::Database(e) => ApiError::from(e),
            })?;
        Ok(Json(PatientErased {
            patient: item(erased.patient),
            erased_at: utc(erased.erased_at),
            already_erased: erased.already_erased,
            cancelled_bookings: erased.cancelled,
            appointments_kept: erased.changed.appointments,
            enquiries_anonymised: erased.changed.enquiries,
            emails_scrubbed: erased.changed.emails,
        }))
    }
}
