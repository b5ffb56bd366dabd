//! Patient records for staff: search, detail with booking history, the UK GDPR subject access
//! export and erasure (`/api/v1/staff/patients`).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, SecondsFormat, Utc};
use entity::{appointment, consent, patient};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use crate::{
    booking::{self, Actor, BookingDetails},
    domain::catalogue::Role,
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::{Staff, StaffAuth},
    },
    state::AppState,
    store::{self, patients::Scope},
};

use super::{
    ApiTags,
    bookings::{Booking, booking_object, booking_problem},
    enquiries::EnquiryNote,
    path_id,
};

/// The reason given on bookings cancelled by an erasure (shown in the cancellation email).
const ERASURE_CANCEL_REASON: &str = "Your personal data was erased from our records.";

/// How often erasure re-cancels when a new booking arrives while it runs.
const ERASURE_ROUNDS: usize = 3;

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
    /// Enquiries sent from the patient's email address, oldest first.
    pub enquiries: Vec<ExportedEnquiry>,
    /// Emails to the patient or about their bookings, oldest first.
    pub emails: Vec<ExportedEmail>,
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

    async fn export_document(&self, patient: patient::Model) -> ApiResult<PatientExport> {
        let db = &self.state.db;
        let appointments = store::patients::appointments(db, patient.id, Scope::All).await?;
        let ids: Vec<Uuid> = appointments.iter().map(|a| a.id).collect();
        let bookings = self.bookings(&patient, &appointments).await?;
        let mut events: HashMap<Uuid, Vec<ExportedEvent>> = HashMap::new();
        for e in store::patients::events_of(db, &ids).await? {
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
        let enquiries = match &patient.email {
            Some(email) => store::patients::enquiries_from(db, email)
                .await?
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
                .collect(),
            None => Vec::new(),
        };
        let emails = store::patients::emails(db, patient.email.as_deref(), &ids)
            .await?
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
            })
            .collect();
        let consents = store::patients::consents(db, patient.id)
            .await?
            .into_iter()
            .map(consent_object)
            .collect();
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
            consents,
            appointments,
            enquiries,
            emails,
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

    /// Everything held about a patient as one JSON document, for a UK GDPR subject access
    /// request (admin): the patient record, consents, every appointment with its history,
    /// enquiries sent from the same email address and the emails sent about them. Audited.
    #[oai(path = "/patients/:id/export", method = "get")]
    async fn export(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<PatientExport>> {
        auth.0.require(&[Role::Admin])?;
        let id = path_id(&id, "patient")?;
        let patient = store::patients::find(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("patient"))?;
        let document = self.export_document(patient).await?;
        let txn = store::begin_write(&self.state.db).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "export",
            "patient",
            Some(id),
            serde_json::json!({
                "appointments": document.appointments.len(),
                "enquiries": document.enquiries.len(),
            }),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(document))
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
        let state = &self.state;
        let mut cancelled = Vec::new();
        for _ in 0..ERASURE_ROUNDS {
            let patient = store::patients::find(&state.db, id)
                .await?
                .ok_or_else(|| ApiError::not_found("patient"))?;
            if let Some(erased_at) = patient.erased_at {
                return Ok(Json(PatientErased {
                    patient: item(patient),
                    erased_at: utc(erased_at),
                    already_erased: cancelled.is_empty(),
                    cancelled_bookings: cancelled,
                    appointments_kept: 0,
                    enquiries_anonymised: 0,
                    emails_scrubbed: 0,
                }));
            }
            let now = Utc::now();
            // Each cancellation is its own transaction with its emails, as when staff cancel.
            for appt in store::patients::upcoming_confirmed(&state.db, id, now).await? {
                let d = booking::cancel(
                    state,
                    appt.id,
                    Actor::Staff(auth.0.id),
                    Some(ERASURE_CANCEL_REASON.to_string()),
                    None,
                )
                .await
                .map_err(|e| booking_problem(e, &state.settings.clinic.phone))?;
                cancelled.push(d.appointment.reference);
            }
            let txn = store::begin_write(&state.db).await?;
            // Locked first: a booking for this patient either committed before (and is seen
            // below) or waits and then no longer finds the erased address.
            let Some(patient) = store::patients::find_for_update(&txn, id).await? else {
                return Err(ApiError::not_found("patient"));
            };
            if patient.erased_at.is_some() {
                txn.commit().await?;
                continue;
            }
            if !store::patients::upcoming_confirmed(&txn, id, now)
                .await?
                .is_empty()
            {
                // A booking arrived meanwhile: cancel it too, then try again.
                txn.rollback().await?;
                continue;
            }
            let (patient, erased) = store::patients::erase(&txn, patient, now).await?;
            store::audit::record(
                &txn,
                Some(auth.0.id),
                "erase",
                "patient",
                Some(id),
                serde_json::json!({
                    "cancelled_bookings": cancelled.len(),
                    "appointments_kept": erased.appointments,
                    "enquiries_anonymised": erased.enquiries,
                    "emails_scrubbed": erased.emails,
                }),
            )
            .await?;
            txn.commit().await?;
            return Ok(Json(PatientErased {
                patient: item(patient),
                erased_at: utc(now),
                already_erased: false,
                cancelled_bookings: cancelled,
                appointments_kept: erased.appointments,
                enquiries_anonymised: erased.enquiries,
                emails_scrubbed: erased.emails,
            }));
        }
        Err(ApiError::conflict(
            "erasure_interrupted",
            "Erasure interrupted",
            "New bookings kept arriving for this patient while erasing. Their future bookings \
             are cancelled but their personal data is not erased yet; please try again.",
        ))
    }
}
