//! Practitioners' calendar feeds: the public `GET /api/v1/feeds/{token}.ics` that calendar
//! apps subscribe to, and the staff endpoints that hand out and rotate its secret URL.
//!
//! The token is stored only as a SHA-256 hash, so its URL can be shown only when it is made:
//! by the first `GET …/feed` for a practitioner who has none, or by `POST …/feed`, which
//! replaces it. Afterwards `GET` answers `{"url": null}`.

use std::sync::Arc;

use chrono::{Duration, Utc};
use entity::practitioner;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::Path,
    payload::{Json, PlainText},
};
use uuid::Uuid;

use crate::{
    auth::token,
    email::ical::{self, FeedEvent},
    http::{
        problem::{ApiError, ApiResult},
        security::StaffAuth,
    },
    state::AppState,
    store::{
        self, calendar::CalendarAppointment, catalogue as catalogue_store, feeds as feeds_store,
        schedule as schedule_store,
    },
};

use super::{ApiTags, path_id};

/// How far back and ahead a feed reaches.
const FEED_PAST_DAYS: i64 = 30;
const FEED_FUTURE_DAYS: i64 = 365;

pub struct FeedsApi {
    pub state: Arc<AppState>,
}

/// A practitioner's calendar feed link.
#[derive(Debug, Object)]
pub struct FeedLink {
    /// The secret subscription URL (`{public_url}/api/v1/feeds/{token}.ics`), present only in
    /// the response that created it: the server keeps just a hash of the token. `null` when
    /// the practitioner already has a feed; `POST` makes a new URL (and ends the old one).
    #[oai(nullable)]
    pub url: Option<String>,
}

#[derive(ApiResponse)]
pub enum FeedBody {
    /// The practitioner's appointments and class sessions from 30 days ago to a year ahead
    /// (cancelled ones with `STATUS:CANCELLED`), their time off and the clinic's closures,
    /// as RFC 5545.
    #[oai(status = 200, content_type = "text/calendar; charset=utf-8")]
    Calendar(PlainText<String>, #[oai(header = "Cache-Control")] String),
}

/// "Initial assessment — Jo": what the feed says about an appointment. Only the patient's
/// first name: a feed is read by phones and third-party calendar services.
fn summary(a: &CalendarAppointment) -> String {
    match a.patient_name.split_whitespace().next() {
        Some(first) => format!("{} — {first}", a.service_name),
        None => a.service_name.clone(),
    }
}

fn with_reason(what: &str, reason: &str) -> String {
    if reason.trim().is_empty() {
        what.to_string()
    } else {
        format!("{what}: {}", reason.trim())
    }
}

impl FeedsApi {
    fn feed_url(&self, token: &str) -> String {
        format!(
            "{}/api/v1/feeds/{token}.ics",
            self.state.settings.server.public_url.trim_end_matches('/')
        )
    }

    /// The practitioner, if the caller may manage their feed.
    async fn target(&self, auth: &StaffAuth, raw_id: &str) -> ApiResult<practitioner::Model> {
        let id = path_id(raw_id, "practitioner")?;
        if !auth.0.may_manage_practitioner(id) {
            return Err(ApiError::forbidden());
        }
        catalogue_store::find_practitioner(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("practitioner"))
    }

    /// Sets a new token (`replace`) or the first one; the URL when this call set it.
    async fn issue(&self, auth: &StaffAuth, id: Uuid, replace: bool) -> ApiResult<FeedLink> {
        let secret = token::generate();
        let hash = token::hash(&secret);
        let txn = store::begin_write(&self.state.db).await?;
        let set = if replace {
            feeds_store::replace_token(&txn, id, &hash).await?
        } else {
            feeds_store::create_token(&txn, id, &hash).await?
        };
        if set {
            store::audit::record(
                &txn,
                Some(auth.0.id),
                if replace {
                    "rotate_feed"
                } else {
                    "create_feed"
                },
                "practitioner",
                Some(id),
                serde_json::json!({}),
            )
            .await?;
        }
        txn.commit().await?;
        Ok(FeedLink {
            url: set.then(|| self.feed_url(&secret)),
        })
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Calendar")]
impl FeedsApi {
    /// The practitioner's iCalendar feed, for subscribing in Google Calendar, Outlook or
    /// Apple Calendar. No sign-in: the secret token in the URL is the key. An unknown or
    /// rotated token, or a practitioner who is no longer active, gets 404.
    #[oai(path = "/feeds/:token", method = "get")]
    async fn feed(
        &self,
        /// The feed token followed by `.ics`.
        token: Path<String>,
    ) -> ApiResult<FeedBody> {
        let not_found = || ApiError::not_found("calendar feed");
        let secret = token
            .0
            .strip_suffix(".ics")
            .filter(|t| !t.is_empty())
            .ok_or_else(not_found)?;
        let db = &self.state.db;
        let practitioner = feeds_store::practitioner_by_token_hash(db, &token::hash(secret))
            .await?
            .filter(|p| p.active)
            .ok_or_else(not_found)?;
        let now = Utc::now();
        let (from, until) = (
            now - Duration::days(FEED_PAST_DAYS),
            now + Duration::days(FEED_FUTURE_DAYS),
        );
        let ids = [practitioner.id];
        let appointments =
            store::calendar::appointments_between(db, Some(&ids), from, until, true).await?;
        let time_off = schedule_store::time_off_between(db, &ids, from, until).await?;
        let closures = schedule_store::closures_between(db, from, until).await?;
        let sessions = store::classes::sessions_between(db, from, until, Some(&ids), None).await?;
        let sessions = crate::classes::sessions_details(db, sessions).await?;

        let mut events: Vec<FeedEvent> = appointments
            .iter()
            .map(|a| FeedEvent {
                uid: ical::uid(a.id),
                sequence: a.sequence,
                stamp: a.updated_at,
                start: a.starts_at,
                end: a.ends_at,
                summary: summary(a),
                description: match a.series_id {
                    Some(_) => format!(
                        "Reference {} ({}). Part of a course of treatment.",
                        a.reference, a.status
                    ),
                    None => format!("Reference {} ({}).", a.reference, a.status),
                },
                cancelled: a.status == "cancelled",
            })
            .collect();
        events.extend(sessions.iter().map(|d| FeedEvent {
            uid: ical::class_uid(d.session.id),
            sequence: d.session.sequence,
            stamp: d.session.updated_at,
            start: d.session.starts_at,
            end: d.session.ends_at,
            summary: format!("{} — class", d.service.name),
            description: format!(
                "Group class: {} of {} places booked.",
                d.session.seats_taken, d.session.capacity
            ),
            cancelled: d.session.status == "cancelled",
        }));
        events.extend(time_off.into_iter().map(|t| FeedEvent {
            uid: ical::time_off_uid(t.id),
            sequence: 0,
            stamp: t.created_at,
            start: t.starts_at,
            end: t.ends_at,
            summary: with_reason("Time off", &t.reason),
            description: String::new(),
            cancelled: false,
        }));
        events.extend(closures.into_iter().map(|c| FeedEvent {
            uid: ical::closure_uid(c.id),
            sequence: 0,
            stamp: c.created_at,
            start: c.starts_at,
            end: c.ends_at,
            summary: with_reason("Clinic closed", &c.reason),
            description: String::new(),
            cancelled: false,
        }));
        events.sort_by_key(|e| e.start);
        let name = format!(
            "{} — {}",
            practitioner.name, self.state.settings.clinic.name
        );
        let body = ical::render_feed(&ical::Feed {
            name: &name,
            events: &events,
        });
        Ok(FeedBody::Calendar(
            PlainText(body),
            "private, max-age=300".to_string(),
        ))
    }

    /// The practitioner's feed link (admin, reception, or the practitioner). The first call
    /// for a practitioner without a feed creates one and returns its URL; the server keeps
    /// only a hash of the token, so later calls return `{"url": null}`. Use `POST` to get a
    /// new URL.
    #[oai(path = "/staff/practitioners/:id/feed", method = "get")]
    async fn feed_link(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<FeedLink>> {
        let practitioner = self.target(&auth, &id).await?;
        if practitioner.feed_token_hash.is_some() {
            return Ok(Json(FeedLink { url: None }));
        }
        Ok(Json(self.issue(&auth, practitioner.id, false).await?))
    }

    /// Replaces the practitioner's feed token and returns the new URL, once (admin,
    /// reception, or the practitioner). The old URL stops working at once; calendars
    /// subscribed to it must subscribe again.
    #[oai(path = "/staff/practitioners/:id/feed", method = "post")]
    async fn rotate_feed(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<FeedLink>> {
        let practitioner = self.target(&auth, &id).await?;
        Ok(Json(self.issue(&auth, practitioner.id, true).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn appointment(patient_name: &str) -> CalendarAppointment {
        CalendarAppointment {
            id: Uuid::nil(),
            reference: "ABCD2345".into(),
            status: "confirmed".into(),
            practitioner_id: Uuid::nil(),
            starts_at: Utc::now(),
            ends_at: Utc::now(),
            sequence: 0,
            updated_at: Utc::now(),
            service_id: Uuid::nil(),
            service_name: "Initial assessment".into(),
            patient_name: patient_name.into(),
            series_id: None,
        }
    }

    #[test]
    fn a_feed_names_only_the_patients_first_name() {
        assert_eq!(
            summary(&appointment("  Jo  Bloggs ")),
            "Initial assessment — Jo"
        );
        assert_eq!(summary(&appointment("")), "Initial assessment");
    }
}
