//! Webhook endpoints (admin): registering, changing, deleting, rotating secrets, the delivery
//! log and replays. Every change is audited with codes and ids only.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use entity::{webhook_delivery, webhook_endpoint};
use poem_openapi::{
    ApiResponse, Enum, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use uuid::Uuid;

use crate::{
    domain::{FieldError, catalogue::Role, text::single_line},
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::StaffAuth,
    },
    state::AppState,
    store,
    webhooks::{
        self, EventType,
        deliveries::{self, ReplayOutcome},
        endpoints,
        target::{self, TargetError},
    },
};

use super::{ApiTags, path_id};

pub struct StaffWebhooksApi {
    pub state: Arc<AppState>,
}

/// An event type an endpoint can subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
pub enum WebhookEvent {
    #[oai(rename = "booking.created")]
    BookingCreated,
    #[oai(rename = "booking.rescheduled")]
    BookingRescheduled,
    #[oai(rename = "booking.cancelled")]
    BookingCancelled,
    #[oai(rename = "booking.attendance")]
    BookingAttendance,
    #[oai(rename = "class_seat.booked")]
    ClassSeatBooked,
    #[oai(rename = "class_seat.cancelled")]
    ClassSeatCancelled,
    #[oai(rename = "class.cancelled")]
    ClassCancelled,
    #[oai(rename = "waitlist.offered")]
    WaitlistOffered,
    #[oai(rename = "waitlist.claimed")]
    WaitlistClaimed,
    #[oai(rename = "enquiry.received")]
    EnquiryReceived,
    #[oai(rename = "series.created")]
    SeriesCreated,
}

impl From<WebhookEvent> for EventType {
    fn from(e: WebhookEvent) -> Self {
        match e {
            WebhookEvent::BookingCreated => EventType::BookingCreated,
            WebhookEvent::BookingRescheduled => EventType::BookingRescheduled,
            WebhookEvent::BookingCancelled => EventType::BookingCancelled,
            WebhookEvent::BookingAttendance => EventType::BookingAttendance,
            WebhookEvent::ClassSeatBooked => EventType::ClassSeatBooked,
            WebhookEvent::ClassSeatCancelled => EventType::ClassSeatCancelled,
            WebhookEvent::ClassCancelled => EventType::ClassCancelled,
            WebhookEvent::WaitlistOffered => EventType::WaitlistOffered,
            WebhookEvent::WaitlistClaimed => EventType::WaitlistClaimed,
            WebhookEvent::EnquiryReceived => EventType::EnquiryReceived,
            WebhookEvent::SeriesCreated => EventType::SeriesCreated,
        }
    }
}

impl From<EventType> for WebhookEvent {
    fn from(e: EventType) -> Self {
        match e {
            EventType::BookingCreated => WebhookEvent::BookingCreated,
            EventType::BookingRescheduled => WebhookEvent::BookingRescheduled,
            EventType::BookingCancelled => WebhookEvent::BookingCancelled,
            EventType::BookingAttendance => WebhookEvent::BookingAttendance,
            EventType::ClassSeatBooked => WebhookEvent::ClassSeatBooked,
            EventType::ClassSeatCancelled => WebhookEvent::ClassSeatCancelled,
            EventType::ClassCancelled => WebhookEvent::ClassCancelled,
            EventType::WaitlistOffered => WebhookEvent::WaitlistOffered,
            EventType::WaitlistClaimed => WebhookEvent::WaitlistClaimed,
            EventType::EnquiryReceived => WebhookEvent::EnquiryReceived,
            EventType::SeriesCreated => WebhookEvent::SeriesCreated,
        }
    }
}

/// A URL that receives signed events.
#[derive(Debug, Object)]
pub struct WebhookEndpoint {
    pub id: Uuid,
    pub url: String,
    pub events: Vec<WebhookEvent>,
    #[oai(nullable)]
    pub description: Option<String>,
    /// Whether events are being delivered to it.
    pub active: bool,
    pub created_at: DateTime<Utc>,
    /// Why the service turned it off (a 410 answer); cleared when an admin turns it on.
    #[oai(nullable)]
    pub disabled_reason: Option<String>,
}

impl From<&webhook_endpoint::Model> for WebhookEndpoint {
    fn from(m: &webhook_endpoint::Model) -> Self {
        Self {
            id: m.id,
            url: m.url.clone(),
            events: endpoints::events_of(m)
                .into_iter()
                .map(Into::into)
                .collect(),
            description: m.description.clone(),
            active: m.active,
            created_at: m.created_at,
            disabled_reason: m.disabled_reason.clone(),
        }
    }
}

/// A new endpoint and its signing secret, shown only in this answer.
#[derive(Debug, Object)]
pub struct WebhookEndpointCreated {
    #[oai(flatten)]
    pub endpoint: WebhookEndpoint,
    /// `whsec_` and the base64 of the signing key.
    pub secret: String,
}

/// The new signing secret, shown only in this answer. The previous one also signs for 24 h.
#[derive(Debug, Object)]
pub struct WebhookSecret {
    pub secret: String,
}

/// Registers an endpoint.
#[derive(Debug, Object)]
pub struct NewWebhook {
    /// `https://…` (plain `http://` and non-public addresses only with
    /// `webhooks.allow_private_targets`).
    pub url: String,
    /// At least one event type.
    pub events: Vec<WebhookEvent>,
    pub description: Option<String>,
}

/// Changes an endpoint; absent fields stay as they are.
#[derive(Debug, Object)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<WebhookEvent>>,
    pub description: Option<String>,
    /// `true` turns a disabled endpoint on again (clearing `disabled_reason`).
    pub active: Option<bool>,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Enum)]
#[oai(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Waiting for its first attempt or a retry.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up: the retry schedule was used up, or the endpoint answered 410.
    Failed,
}

impl DeliveryStatus {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => webhooks::PENDING,
            DeliveryStatus::Delivered => webhooks::DELIVERED,
            DeliveryStatus::Failed => webhooks::FAILED,
        }
    }

    fn parse(s: &str) -> Self {
        match s {
            webhooks::DELIVERED => DeliveryStatus::Delivered,
            webhooks::FAILED => DeliveryStatus::Failed,
            _ => DeliveryStatus::Pending,
        }
    }
}

/// One event for one endpoint, with the outcome of its last attempt.
#[derive(Debug, Object)]
pub struct WebhookDelivery {
    pub id: Uuid,
    pub event_type: String,
    /// The `webhook-id` header: the same on every retry and replay.
    pub webhook_id: String,
    pub status: DeliveryStatus,
    pub attempts: i32,
    /// The receiver's status code at the last attempt, if it answered.
    #[oai(nullable)]
    pub last_status_code: Option<i32>,
    /// What went wrong at the last attempt (a refused connection, a timeout, a non-2xx).
    #[oai(nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    #[oai(nullable)]
    pub delivered_at: Option<DateTime<Utc>>,
    /// When the last attempt ended.
    #[oai(nullable)]
    pub last_attempt_at: Option<DateTime<Utc>>,
    /// How long the last attempt took, from connecting to the response head.
    #[oai(nullable)]
    pub last_duration_ms: Option<i32>,
    /// When a pending delivery is next attempted.
    #[oai(nullable)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<webhook_delivery::Model> for WebhookDelivery {
    fn from(m: webhook_delivery::Model) -> Self {
        let status = DeliveryStatus::parse(&m.status);
        Self {
            id: m.id,
            event_type: m.event_type,
            webhook_id: m.webhook_id,
            status,
            attempts: m.attempts,
            last_status_code: m.last_status_code,
            last_error: m.last_error,
            created_at: m.created_at,
            delivered_at: m.delivered_at,
            last_attempt_at: m.last_attempt_at,
            last_duration_ms: m.last_duration_ms,
            next_attempt_at: (status == DeliveryStatus::Pending).then_some(m.next_attempt_at),
        }
    }
}

#[derive(ApiResponse)]
pub enum WebhookCreatedResponse {
    /// Registered; the secret is shown only here.
    #[oai(status = 201)]
    Created(
        Json<WebhookEndpointCreated>,
        #[oai(header = "Location")] String,
    ),
}

#[derive(ApiResponse)]
pub enum WebhookDeleted {
    /// Deleted, with its delivery log.
    #[oai(status = 204)]
    NoContent,
}

const ADMIN: &[Role] = &[Role::Admin];

fn events_field(field: &str, events: &[WebhookEvent]) -> Result<Vec<EventType>, FieldError> {
    let mut out: Vec<EventType> = events.iter().map(|e| EventType::from(*e)).collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(FieldError::new(field, "must name at least one event type"));
    }
    Ok(out)
}

fn description_field(value: Option<&str>) -> Result<Option<String>, FieldError> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => single_line("description", text, 200).map(Some),
    }
}

impl StaffWebhooksApi {
    /// Checks a target URL as the worker will: its form, and (without
    /// `webhooks.allow_private_targets`) the scheme and every address it resolves to.
    async fn checked_url(&self, raw: &str) -> ApiResult<String> {
        let allow = self.state.settings.webhooks.allow_private_targets;
        let refused = |detail: String| {
            ApiError::rule(
                "webhook_target_refused",
                "Webhook target refused",
                format!("{detail}."),
            )
        };
        let parsed = match target::parse(raw, allow) {
            Ok(t) => t,
            Err(TargetError::Invalid(message)) => return Err(ApiError::field("url", message)),
            Err(TargetError::Refused(detail)) => return Err(refused(detail)),
        };
        if raw.trim().len() > 2000 {
            return Err(ApiError::field("url", "must be at most 2000 characters"));
        }
        if !allow {
            target::resolve(&parsed, allow).await.map_err(refused)?;
        }
        Ok(raw.trim().to_string())
    }

    async fn endpoint(&self, id: &str) -> ApiResult<webhook_endpoint::Model> {
        let id = path_id(id, "webhook endpoint")?;
        endpoints::find(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook endpoint"))
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffWebhooks")]
impl StaffWebhooksApi {
    /// Webhook endpoints, oldest first (admin).
    #[oai(path = "/webhooks", method = "get")]
    async fn list(
        &self,
        auth: StaffAuth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<WebhookEndpoint>>> {
        auth.0.require(ADMIN)?;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let (items, total) = endpoints::page(&self.state.db, paging.page, paging.per_page).await?;
        Ok(Json(paging.wrap(
            items.iter().map(WebhookEndpoint::from).collect(),
            total,
        )))
    }

    /// Registers an endpoint (admin). The answer carries its signing secret, shown only
    /// once. A target the service will not contact is 422 `webhook_target_refused`.
    #[oai(path = "/webhooks", method = "post")]
    async fn create(
        &self,
        auth: StaffAuth,
        body: Json<NewWebhook>,
    ) -> ApiResult<WebhookCreatedResponse> {
        auth.0.require(ADMIN)?;
        let mut errors = Vec::new();
        let events = events_field("events", &body.events).map_err(|e| errors.push(e));
        let description =
            description_field(body.description.as_deref()).map_err(|e| errors.push(e));
        let (Ok(events), Ok(description)) = (events, description) else {
            return Err(ApiError::validation(errors));
        };
        let url = self.checked_url(&body.url).await?;
        let now = Utc::now();
        let txn = store::begin_write(&self.state.db).await?;
        let row = endpoints::insert(&txn, &url, &events, description, now).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "create",
            "webhook_endpoint",
            Some(row.id),
            serde_json::json!({ "events": events.iter().map(|e| e.as_str()).collect::<Vec<_>>() }),
        )
        .await?;
        txn.commit().await?;
        self.state.webhook_subscribers.forget();
        let location = format!("/api/v1/staff/webhooks/{}", row.id);
        Ok(WebhookCreatedResponse::Created(
            Json(WebhookEndpointCreated {
                endpoint: WebhookEndpoint::from(&row),
                secret: row.secret.clone(),
            }),
            location,
        ))
    }

    /// One endpoint (admin).
    #[oai(path = "/webhooks/:id", method = "get")]
    async fn get(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<WebhookEndpoint>> {
        auth.0.require(ADMIN)?;
        let row = self.endpoint(&id).await?;
        Ok(Json(WebhookEndpoint::from(&row)))
    }

    /// Changes an endpoint's URL, events, description or whether it is active (admin).
    #[oai(path = "/webhooks/:id", method = "patch")]
    async fn update(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<WebhookChange>,
    ) -> ApiResult<Json<WebhookEndpoint>> {
        auth.0.require(ADMIN)?;
        let id = path_id(&id, "webhook endpoint")?;
        let mut errors = Vec::new();
        let events = match &body.events {
            Some(events) => events_field("events", events)
                .map(Some)
                .map_err(|e| errors.push(e)),
            None => Ok(None),
        };
        let description = match &body.description {
            Some(d) => description_field(Some(d))
                .map(Some)
                .map_err(|e| errors.push(e)),
            None => Ok(None),
        };
        let (Ok(events), Ok(description)) = (events, description) else {
            return Err(ApiError::validation(errors));
        };
        let url = match &body.url {
            Some(raw) => Some(self.checked_url(raw).await?),
            None => None,
        };
        let mut fields = Vec::new();
        for (name, present) in [
            ("url", url.is_some()),
            ("events", events.is_some()),
            ("description", description.is_some()),
            ("active", body.active.is_some()),
        ] {
            if present {
                fields.push(name);
            }
        }
        let txn = store::begin_write(&self.state.db).await?;
        let current = endpoints::find(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
        let change = endpoints::Change {
            url,
            events,
            description,
            active: body.active,
        };
        let row = endpoints::update(&txn, current, change, Utc::now()).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "update",
            "webhook_endpoint",
            Some(row.id),
            serde_json::json!({ "fields": fields, "active": row.active }),
        )
        .await?;
        txn.commit().await?;
        self.state.webhook_subscribers.forget();
        Ok(Json(WebhookEndpoint::from(&row)))
    }

    /// Deletes an endpoint and its delivery log (admin).
    #[oai(path = "/webhooks/:id", method = "delete")]
    async fn delete(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<WebhookDeleted> {
        auth.0.require(ADMIN)?;
        let id = path_id(&id, "webhook endpoint")?;
        let txn = store::begin_write(&self.state.db).await?;
        if !endpoints::delete(&txn, id).await? {
            return Err(ApiError::not_found("webhook endpoint"));
        }
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "delete",
            "webhook_endpoint",
            Some(id),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        self.state.webhook_subscribers.forget();
        Ok(WebhookDeleted::NoContent)
    }

    /// Gives the endpoint a new signing secret (admin). For 24 hours both the new and the
    /// previous secret sign every delivery (two `v1,` signatures), so the receiver can switch
    /// without losing an event.
    #[oai(path = "/webhooks/:id/rotate-secret", method = "post")]
    async fn rotate_secret(
        &self,
        auth: StaffAuth,
        id: Path<String>,
    ) -> ApiResult<Json<WebhookSecret>> {
        auth.0.require(ADMIN)?;
        let id = path_id(&id, "webhook endpoint")?;
        let txn = store::begin_write(&self.state.db).await?;
        let current = endpoints::find(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook endpoint"))?;
        let row = endpoints::rotate_secret(&txn, current, Utc::now()).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "rotate_secret",
            "webhook_endpoint",
            Some(row.id),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(WebhookSecret {
            secret: row.secret.clone(),
        }))
    }

    /// The endpoint's delivery log, newest first, optionally only one status (admin).
    #[oai(path = "/webhooks/:id/deliveries", method = "get")]
    async fn deliveries(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        status: Query<Option<DeliveryStatus>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<WebhookDelivery>>> {
        auth.0.require(ADMIN)?;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let endpoint = self.endpoint(&id).await?;
        let (items, total) = deliveries::page(
            &self.state.db,
            endpoint.id,
            status.0.map(DeliveryStatus::as_str),
            paging.page,
            paging.per_page,
        )
        .await?;
        Ok(Json(paging.wrap(
            items.into_iter().map(WebhookDelivery::from).collect(),
            total,
        )))
    }

    /// Sends a delivery again, with the same body and the same `webhook-id`, as soon as the
    /// worker runs (admin). A delivery being posted right now is 409 `delivery_in_progress`;
    /// one whose endpoint is inactive is 409 `webhook_inactive`.
    #[oai(path = "/webhook-deliveries/:id/replay", method = "post")]
    async fn replay(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<WebhookDelivery>> {
        auth.0.require(ADMIN)?;
        let id = path_id(&id, "webhook delivery")?;
        let now = Utc::now();
        let txn = store::begin_write(&self.state.db).await?;
        let delivery = deliveries::find(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
        let endpoint = endpoints::find(&txn, delivery.endpoint_id)
            .await?
            .ok_or_else(|| ApiError::not_found("webhook delivery"))?;
        if !endpoint.active {
            return Err(ApiError::conflict(
                "webhook_inactive",
                "Webhook endpoint inactive",
                "The endpoint is turned off; turn it on before replaying its deliveries.",
            ));
        }
        let row = match deliveries::replay(&txn, id, now).await? {
            ReplayOutcome::Queued(row) => row,
            ReplayOutcome::NotFound => return Err(ApiError::not_found("webhook delivery")),
            ReplayOutcome::InFlight => {
                return Err(ApiError::conflict(
                    "delivery_in_progress",
                    "Delivery in progress",
                    "This delivery is being posted right now; try again in a moment.",
                ));
            }
        };
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "replay",
            "webhook_delivery",
            Some(row.id),
            serde_json::json!({ "event_type": row.event_type, "endpoint_id": row.endpoint_id }),
        )
        .await?;
        txn.commit().await?;
        Ok(Json((*row).into()))
    }
}
