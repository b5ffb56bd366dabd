//! The patient's waitlist: `POST /api/v1/waitlist` (join), `GET /api/v1/waitlist/{token}`,
//! `POST …/{token}/leave`, and the offer link: `GET /api/v1/waitlist/offers/{offer_token}`,
//! `POST …/claim`, `POST …/decline`.

use std::sync::Arc;

use chrono::{DateTime, SecondsFormat, Utc};
use entity::waitlist_entry;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Path, payload::Json};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        booking::PatientDetails,
        hours, localtime,
        waitlist::{OfferStatus, SlotWish},
    },
    http::{
        client::ClientAddr,
        problem::{ApiError, ApiResult},
        rate_limit::Limit,
    },
    state::AppState,
    store,
    waitlist::{
        self, ClaimedPlace, JoinRequest, JoinWant, WaitlistError,
        offers::{self, OfferDetails},
    },
};

use super::{
    ApiTags,
    bookings::{Booking, ConsentInput, NamedRef, PatientInput, booking_object, booking_problem},
    classes::{Seat, SeatClass, class_problem, seat_object},
};

pub struct WaitlistApi {
    pub state: Arc<AppState>,
}

/// A request to join the waiting list: for a class session (`class_id`), or for a
/// one-to-one slot of a service (`service_id`, `from`, `to`, optionally a practitioner and a
/// time-of-day window).
#[derive(Debug, Object)]
pub struct JoinBody {
    /// A class session; send this or `service_id`.
    pub class_id: Option<Uuid>,
    /// A one-to-one service; send this or `class_id`.
    pub service_id: Option<Uuid>,
    /// Only this practitioner (one-to-one).
    pub practitioner_id: Option<Uuid>,
    /// First local date (YYYY-MM-DD) a slot may fall on (one-to-one; required with
    /// `service_id`).
    pub from: Option<String>,
    /// Last local date (YYYY-MM-DD), inclusive.
    pub to: Option<String>,
    /// Earliest local start time, HH:MM.
    pub earliest: Option<String>,
    /// Latest local start time, HH:MM (inclusive).
    pub latest: Option<String>,
    pub patient: PatientInput,
    pub consent: ConsentInput,
}

/// A waitlist entry as its manage link shows it.
#[derive(Debug, Object)]
pub struct WaitlistEntry {
    pub id: Uuid,
    /// waiting, offered, claimed, left or expired (its window or session passed).
    pub status: String,
    pub created_at: String,
    /// The class session waited for; null for a one-to-one entry.
    #[oai(nullable)]
    pub class_id: Option<Uuid>,
    /// The service waited for; null for a class entry.
    #[oai(nullable)]
    pub service: Option<NamedRef>,
    /// The one practitioner wanted; null for anyone.
    #[oai(nullable)]
    pub practitioner: Option<NamedRef>,
    /// First and last local dates (YYYY-MM-DD); null for a class entry.
    #[oai(nullable)]
    pub from: Option<String>,
    #[oai(nullable)]
    pub to: Option<String>,
    /// Local start time window (HH:MM); null when not limited.
    #[oai(nullable)]
    pub earliest: Option<String>,
    #[oai(nullable)]
    pub latest: Option<String>,
}

/// The new entry and its manage link; the token is shown only here and in the email.
#[derive(Debug, Object)]
pub struct WaitlistJoined {
    pub entry: WaitlistEntry,
    pub manage_token: String,
    /// `{public_url}/waitlist/{token}`: a page to see and leave the entry.
    pub manage_url: String,
}

#[derive(ApiResponse)]
pub enum WaitlistJoinedResponse {
    /// On the list.
    #[oai(status = 201)]
    Created(Json<WaitlistJoined>, #[oai(header = "Location")] String),
}

#[derive(Debug, Object)]
pub struct EntryEnvelope {
    pub entry: WaitlistEntry,
}

/// The one-to-one slot an offer holds.
#[derive(Debug, Object)]
pub struct OfferedSlot {
    /// RFC 3339 in UTC.
    pub start: String,
    pub end: String,
    /// Start in the clinic's time zone, with its offset.
    pub local_start: String,
    pub service: NamedRef,
    pub practitioner: NamedRef,
}

/// A place held for a patient on the waiting list.
#[derive(Debug, Object)]
pub struct WaitlistOffer {
    /// open, claimed, declined, expired, or withdrawn (the clinic took the time back).
    pub status: String,
    /// When the hold ends (RFC 3339, UTC).
    pub expires_at: String,
    /// The one-to-one slot held; null for a class place.
    #[oai(nullable)]
    pub slot: Option<OfferedSlot>,
    /// The class a place is held in; null for a one-to-one slot.
    #[oai(nullable)]
    pub class: Option<SeatClass>,
}

#[derive(Debug, Object)]
pub struct OfferEnvelope {
    pub offer: WaitlistOffer,
}

/// A claimed offer: the booking or seat made (exactly one of the two), with its manage link
/// (shown only here and in emails).
#[derive(Debug, Object)]
pub struct OfferClaimed {
    /// The one-to-one booking made; absent for a class place.
    #[oai(skip_serializing_if_is_none)]
    pub booking: Option<Booking>,
    /// The class seat made; absent for a one-to-one slot.
    #[oai(skip_serializing_if_is_none)]
    pub seat: Option<Seat>,
    pub manage_token: String,
    pub manage_url: String,
}

#[derive(ApiResponse)]
pub enum OfferClaimedResponse {
    /// Booked.
    #[oai(status = 201)]
    Created(Json<OfferClaimed>, #[oai(header = "Location")] String),
}

fn utc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The entry object, with the names of what it waits for.
pub async fn entry_object(
    conn: &impl sea_orm::ConnectionTrait,
    e: &waitlist_entry::Model,
) -> ApiResult<WaitlistEntry> {
    let service = match e.service_id {
        Some(id) => store::catalogue::find_service(conn, id)
            .await?
            .map(|s| NamedRef {
                id: s.id,
                name: s.name,
            }),
        None => None,
    };
    let practitioner = match e.practitioner_id {
        Some(id) => store::catalogue::find_practitioner(conn, id)
            .await?
            .map(|p| NamedRef {
                id: p.id,
                name: p.name,
            }),
        None => None,
    };
    let clock = |m: Option<i32>| {
        m.and_then(|m| u32::try_from(m).ok())
            .map(hours::format_clock)
    };
    Ok(WaitlistEntry {
        id: e.id,
        status: e.status.clone(),
        created_at: utc(e.created_at),
        class_id: e.class_session_id,
        service,
        practitioner,
        from: e.from_date.clone(),
        to: e.to_date.clone(),
        earliest: clock(e.earliest_minute),
        latest: clock(e.latest_minute),
    })
}

fn offer_object(d: &OfferDetails, tz: chrono_tz::Tz, now: DateTime<Utc>) -> WaitlistOffer {
    let o = &d.offer;
    // An open offer whose hold has ended is expired, whether or not the worker got to it.
    let status = match OfferStatus::parse(&o.status) {
        Some(OfferStatus::Open) if o.expires_at <= now => OfferStatus::Expired.as_str(),
        _ => o.status.as_str(),
    };
    let slot = match (o.starts_at, o.ends_at, &d.service, &d.practitioner) {
        (Some(start), Some(end), Some(service), Some(practitioner)) => Some(OfferedSlot {
            start: utc(start),
            end: utc(end),
            local_start: start
                .with_timezone(&tz)
                .to_rfc3339_opts(SecondsFormat::Secs, false),
            service: NamedRef {
                id: service.id,
                name: service.name.clone(),
            },
            practitioner: NamedRef {
                id: practitioner.id,
                name: practitioner.name.clone(),
            },
        }),
        _ => None,
    };
    let class = d.class.as_ref().map(|c| SeatClass {
        id: c.session.id,
        service: NamedRef {
            id: c.service.id,
            name: c.service.name.clone(),
        },
        practitioner: NamedRef {
            id: c.practitioner.id,
            name: c.practitioner.name.clone(),
        },
        start: utc(c.session.starts_at),
        end: utc(c.session.ends_at),
        local_start: c
            .session
            .starts_at
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false),
    });
    WaitlistOffer {
        status: status.to_string(),
        expires_at: utc(o.expires_at),
        slot,
        class,
    }
}

/// Maps a refused waitlist request to its problem.
fn waitlist_problem(err: WaitlistError, clinic_phone: &str, what: &str) -> ApiError {
    match err {
        WaitlistError::Invalid(errors) => ApiError::validation(errors),
        WaitlistError::NotFound => ApiError::not_found(what),
        WaitlistError::OfferClosed => ApiError::conflict(
            "offer_closed",
            "Offer closed",
            "This offer is no longer open: it was claimed, declined or withdrawn, or its time ran out.",
        ),
        WaitlistError::Booking(e) => booking_problem(e, clinic_phone),
        WaitlistError::Class(e) => class_problem(e, clinic_phone),
        WaitlistError::Database(e) => ApiError::from(e),
    }
}

impl WaitlistApi {
    fn phone(&self) -> &str {
        &self.state.settings.clinic.phone
    }

    fn public_url(&self) -> &str {
        self.state.settings.server.public_url.trim_end_matches('/')
    }

    fn parse_join(&self, body: &JoinBody) -> ApiResult<JoinRequest> {
        let mut errors = Vec::new();
        let patient = PatientDetails::parse(
            &body.patient.name,
            &body.patient.email,
            body.patient.phone.as_deref(),
            body.consent.privacy,
            body.consent.marketing,
            &mut errors,
        );
        let want = match (body.class_id, body.service_id) {
            (Some(class_id), None) => Some(JoinWant::Class(class_id)),
            (None, Some(service_id)) => {
                let required = |field: &str, v: &Option<String>, errors: &mut Vec<FieldError>| {
                    if v.is_none() {
                        errors.push(FieldError::new(field, "is required with service_id"));
                    }
                    v.clone().unwrap_or_default()
                };
                let from = required("from", &body.from, &mut errors);
                let to = required("to", &body.to, &mut errors);
                let today = localtime::local_date(self.state.tz, Utc::now());
                if body.from.is_some() && body.to.is_some() {
                    SlotWish::parse(
                        service_id,
                        body.practitioner_id,
                        &from,
                        &to,
                        body.earliest.as_deref(),
                        body.latest.as_deref(),
                        today,
                        &mut errors,
                    )
                    .map(JoinWant::Slot)
                } else {
                    None
                }
            }
            _ => {
                errors.push(FieldError::new(
                    "class_id",
                    "send exactly one of class_id and service_id",
                ));
                None
            }
        };
        match (want, patient) {
            (Some(want), Some(patient)) if errors.is_empty() => Ok(JoinRequest { want, patient }),
            _ => Err(ApiError::validation(errors)),
        }
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Waitlist")]
impl WaitlistApi {
    /// Joins the waiting list for a class session or a one-to-one slot. When a matching place
    /// frees, the first waiting entry (staff-marked urgent first, then the oldest) is emailed
    /// an offer that holds the place for `waitlist.hold_minutes`.
    #[oai(path = "/waitlist", method = "post")]
    async fn join(
        &self,
        body: Json<JoinBody>,
        client: ClientAddr,
    ) -> ApiResult<WaitlistJoinedResponse> {
        self.state.limits.check(Limit::Bookings, client.0)?;
        let request = self.parse_join(&body.0)?;
        let joined = waitlist::join(&self.state, request)
            .await
            .map_err(|e| waitlist_problem(e, self.phone(), "entry"))?;
        let entry = entry_object(&self.state.db, &joined.entry).await?;
        let location = format!("/api/v1/waitlist/{}", joined.manage_token);
        Ok(WaitlistJoinedResponse::Created(
            Json(WaitlistJoined {
                entry,
                manage_url: format!("{}/waitlist/{}", self.public_url(), joined.manage_token),
                manage_token: joined.manage_token,
            }),
            location,
        ))
    }

    /// The entry a waitlist manage link opens.
    #[oai(path = "/waitlist/:token", method = "get")]
    async fn entry(&self, token: Path<String>) -> ApiResult<Json<EntryEnvelope>> {
        let entry = waitlist::entries::find_by_token(&self.state.db, &token)
            .await?
            .ok_or_else(|| ApiError::not_found("entry"))?;
        Ok(Json(EntryEnvelope {
            entry: entry_object(&self.state.db, &entry).await?,
        }))
    }

    /// Leaves the waiting list; a place held for the entry passes to the next one. Leaving
    /// again answers 200 with the same state.
    #[oai(path = "/waitlist/:token/leave", method = "post")]
    async fn leave(
        &self,
        token: Path<String>,
        client: ClientAddr,
    ) -> ApiResult<Json<EntryEnvelope>> {
        self.state.limits.check(Limit::Bookings, client.0)?;
        let entry = waitlist::entries::leave(&self.state, &token)
            .await
            .map_err(|e| waitlist_problem(e, self.phone(), "entry"))?;
        Ok(Json(EntryEnvelope {
            entry: entry_object(&self.state.db, &entry).await?,
        }))
    }

    /// The offer an offer link opens: the place held and until when.
    #[oai(path = "/waitlist/offers/:offer_token", method = "get")]
    async fn offer(&self, offer_token: Path<String>) -> ApiResult<Json<OfferEnvelope>> {
        let d = offers::find_by_token(&self.state.db, &offer_token)
            .await?
            .ok_or_else(|| ApiError::not_found("offer"))?;
        Ok(Json(OfferEnvelope {
            offer: offer_object(&d, self.state.tz, Utc::now()),
        }))
    }

    /// Takes the held place: books it by the same rules and guarantee as any booking or seat
    /// (without the minimum notice: the clinic made the offer), answering with the `booking`
    /// or the `seat`. 409 `offer_closed` when the offer is no longer open.
    #[oai(path = "/waitlist/offers/:offer_token/claim", method = "post")]
    async fn claim(
        &self,
        offer_token: Path<String>,
        client: ClientAddr,
    ) -> ApiResult<OfferClaimedResponse> {
        self.state.limits.check(Limit::Bookings, client.0)?;
        let claimed = waitlist::claim(&self.state, &offer_token)
            .await
            .map_err(|e| waitlist_problem(e, self.phone(), "offer"))?;
        let tz = self.state.tz;
        let (booking, seat, token) = match &claimed.placed {
            ClaimedPlace::Booking(b) => (
                Some(booking_object(&b.details, tz)),
                None,
                b.manage_token.clone(),
            ),
            ClaimedPlace::Seat(s) => (
                None,
                Some(seat_object(&s.details, tz)),
                s.manage_token.clone(),
            ),
        };
        Ok(OfferClaimedResponse::Created(
            Json(OfferClaimed {
                booking,
                seat,
                manage_url: format!("{}/manage/{token}", self.public_url()),
                manage_token: token.clone(),
            }),
            format!("/api/v1/manage/{token}"),
        ))
    }

    /// Passes the held place on to the next entry; the entry keeps waiting for other places.
    /// Declining again answers 200 with the same state; 409 `offer_closed` when the offer was
    /// claimed, withdrawn or ran out.
    #[oai(path = "/waitlist/offers/:offer_token/decline", method = "post")]
    async fn decline(
        &self,
        offer_token: Path<String>,
        client: ClientAddr,
    ) -> ApiResult<Json<OfferEnvelope>> {
        self.state.limits.check(Limit::Bookings, client.0)?;
        let d = waitlist::decline(&self.state, &offer_token)
            .await
            .map_err(|e| waitlist_problem(e, self.phone(), "offer"))?;
        Ok(Json(OfferEnvelope {
            offer: offer_object(&d, self.state.tz, Utc::now()),
        }))
    }
}
