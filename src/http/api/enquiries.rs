//! The clinic website's contact form: `POST /api/v1/enquiries`, and the staff inbox under
//! `/api/v1/staff/enquiries`.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use entity::enquiry;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
};
use uuid::Uuid;

use crate::{
    domain::{
        catalogue::Role,
        enquiry::{EnquiryForm, EnquiryStatus, NewEnquiry, PreferredContact, Topic},
        text,
    },
    enquiry::{self as intake, IntakeError},
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        rate_limit::Limit,
        security::StaffAuth,
    },
    state::AppState,
    store::{self, enquiries::InboxFilter},
};

use super::{ApiTags, path_id};
use crate::http::client::ClientAddr;

pub struct EnquiriesApi {
    pub state: Arc<AppState>,
}

#[derive(Debug, Object)]
pub struct EnquiryConsent {
    /// Must be true.
    pub privacy: bool,
    #[oai(default)]
    pub marketing: bool,
}

/// A contact-form submission.
#[derive(Debug, Object)]
pub struct EnquiryRequest {
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub topic: Topic,
    /// A service the enquiry is about.
    pub service_id: Option<Uuid>,
    /// 10 to 5,000 characters.
    pub message: String,
    pub preferred_contact: PreferredContact,
    pub consent: EnquiryConsent,
    /// Leave empty. (A field people cannot see; forms filled in by robots fill it.)
    #[oai(default)]
    pub website: String,
}

#[derive(Debug, Object)]
pub struct EnquiryAccepted {
    /// Quote it when you call or write.
    pub reference: String,
}

#[derive(ApiResponse)]
pub enum EnquiryAcceptedResponse {
    /// Received.
    #[oai(status = 202)]
    Accepted(Json<EnquiryAccepted>),
}

/// A staff note on an enquiry.
#[derive(Debug, Object)]
pub struct EnquiryNote {
    pub author: String,
    pub at: String,
    pub text: String,
}

/// An enquiry as staff see it.
#[derive(Debug, Object)]
pub struct Enquiry {
    pub id: Uuid,
    pub reference: String,
    pub status: EnquiryStatus,
    pub name: String,
    pub email: String,
    #[oai(nullable)]
    pub phone: Option<String>,
    pub topic: Topic,
    #[oai(nullable)]
    pub service_id: Option<Uuid>,
    pub message: String,
    pub preferred_contact: PreferredContact,
    pub received_at: String,
    #[oai(nullable)]
    pub assignee_id: Option<Uuid>,
    pub notes: Vec<EnquiryNote>,
}

/// Changes to an enquiry; a note is appended with your name and the time.
#[derive(Debug, Object)]
pub struct EnquiryPatch {
    pub status: Option<EnquiryStatus>,
    /// A staff user to handle it; null unassigns.
    #[oai(nullable)]
    pub assignee_id: MaybeUndefined<Uuid>,
    /// Up to 2,000 characters.
    pub note: Option<String>,
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn enquiry_object(e: enquiry::Model, notes: Vec<entity::enquiry_note::Model>) -> Enquiry {
    Enquiry {
        id: e.id,
        status: EnquiryStatus::parse(&e.status).unwrap_or(EnquiryStatus::New),
        topic: Topic::parse(&e.topic).unwrap_or(Topic::General),
        preferred_contact: PreferredContact::parse(&e.preferred_contact)
            .unwrap_or(PreferredContact::Email),
        reference: e.reference,
        name: e.name,
        email: e.email,
        phone: e.phone,
        service_id: e.service_id,
        message: e.message,
        received_at: utc(e.received_at),
        assignee_id: e.assignee_id,
        notes: notes
            .into_iter()
            .map(|n| EnquiryNote {
                author: n.author_name,
                at: utc(n.at),
                text: n.text,
            })
            .collect(),
    }
}

impl EnquiriesApi {
    async fn load(&self, id: Uuid) -> ApiResult<Enquiry> {
        let e = store::enquiries::find(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("enquiry"))?;
        let notes = store::enquiries::notes(&self.state.db, id).await?;
        Ok(enquiry_object(e, notes))
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Enquiries")]
impl EnquiriesApi {
    /// Receives a contact-form enquiry. Staff are notified (Reply-To the enquirer) and the
    /// enquirer gets an acknowledgement by email.
    #[oai(path = "/enquiries", method = "post")]
    async fn submit(
        &self,
        body: Json<EnquiryRequest>,
        client: ClientAddr,
    ) -> ApiResult<EnquiryAcceptedResponse> {
        let state = &self.state;
        let ip = client.0;
        state.limits.check(Limit::Enquiries, ip)?;
        let form = body.0;
        let new = NewEnquiry::parse(EnquiryForm {
            name: &form.name,
            email: &form.email,
            phone: form.phone.as_deref(),
            topic: form.topic,
            message: &form.message,
            preferred_contact: form.preferred_contact,
            privacy_consent: form.consent.privacy,
            marketing_consent: form.consent.marketing,
        });
        let submission = intake::Submission {
            enquiry: new?,
            service_id: form.service_id,
            is_spam: !form.website.trim().is_empty(),
            ip_hash: state.ip_hasher.hash(ip),
        };
        let reference = intake::receive(state, submission)
            .await
            .map_err(|e| match e {
                IntakeError::Invalid(errors) => ApiError::validation(errors),
                IntakeError::Database(e) => ApiError::from(e),
            })?;
        Ok(EnquiryAcceptedResponse::Accepted(Json(EnquiryAccepted {
            reference,
        })))
    }

    /// The enquiry inbox, newest first (admin, reception).
    #[oai(path = "/staff/enquiries", method = "get")]
    async fn list(
        &self,
        auth: StaffAuth,
        status: Query<Option<EnquiryStatus>>,
        topic: Query<Option<Topic>>,
        /// Text to find in the name, email, phone, reference or message.
        q: Query<Option<String>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<Enquiry>>> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let filter = InboxFilter {
            status: status.0.map(|s| s.as_str().to_string()),
            topic: topic.0.map(|t| t.as_str().to_string()),
            q: q.0.map(|q| q.chars().take(100).collect()),
        };
        let (rows, total) =
            store::enquiries::page(&self.state.db, &filter, paging.page, paging.per_page).await?;
        // Notes are for the detail view; the list carries none.
        let items = rows
            .into_iter()
            .map(|e| enquiry_object(e, Vec::new()))
            .collect();
        Ok(Json(paging.wrap(items, total)))
    }

    /// One enquiry with its notes (admin, reception).
    #[oai(path = "/staff/enquiries/:id", method = "get")]
    async fn get(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<Enquiry>> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        Ok(Json(self.load(path_id(&id, "enquiry")?).await?))
    }

    /// Moves an enquiry along (new → in_progress → closed, or spam), assigns it, or adds a
    /// note (admin, reception).
    #[oai(path = "/staff/enquiries/:id", method = "patch")]
    async fn update(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<EnquiryPatch>,
    ) -> ApiResult<Json<Enquiry>> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        let id = path_id(&id, "enquiry")?;
        let patch = body.0;
        let note = match patch
            .note
            .as_deref()
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            Some(n) => Some(text::multi_line("note", n, 2000)?),
            None => None,
        };
        let now = Utc::now();
        let txn = store::begin_write(&self.state.db).await?;
        let mut row = store::enquiries::find(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("enquiry"))?;
        let before = row.status.clone();
        if let Some(next) = patch.status {
            let current = EnquiryStatus::parse(&row.status).unwrap_or(EnquiryStatus::New);
            if !current.may_become(next) {
                return Err(ApiError::rule(
                    "invalid_status_change",
                    "Status change not allowed",
                    format!(
                        "An enquiry that is {} cannot become {}.",
                        current.as_str(),
                        next.as_str()
                    ),
                ));
            }
            row.status = next.as_str().to_string();
        }
        match patch.assignee_id {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => row.assignee_id = None,
            MaybeUndefined::Value(user) => {
                let active = store::staff::find_user(&txn, user)
                    .await?
                    .is_some_and(|u| u.active);
                if !active {
                    return Err(ApiError::field("assignee_id", "no such active staff user"));
                }
                row.assignee_id = Some(user);
            }
        }
        row.updated_at = now;
        let row = store::enquiries::update(&txn, row).await?;
        if let Some(text) = &note {
            store::enquiries::add_note(&txn, id, auth.0.id, &auth.0.name, text, now).await?;
        }
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "update",
            "enquiry",
            Some(id),
            serde_json::json!({
                "from": before,
                "status": row.status,
                "assignee_id": row.assignee_id,
                "note_added": note.is_some(),
            }),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(self.load(id).await?))
    }
}
