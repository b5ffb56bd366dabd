//! Staff management of services: list, create, read, change, deactivate.

use std::sync::Arc;

use chrono::Utc;
use entity::service;
use poem_openapi::{
    ApiResponse, Object, OpenApi,
    param::{Path, Query},
    payload::Json,
    types::MaybeUndefined,
};
use uuid::Uuid;

use crate::{
    domain::{
        FieldError,
        catalogue::{Role, ServiceCategory},
        text,
    },
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::StaffAuth,
    },
    state::AppState,
    store::{self, catalogue as catalogue_store},
};

use super::{ApiTags, catalogue::to_u32, path_id};

pub struct StaffServicesApi {
    pub state: Arc<AppState>,
}

/// Per-service overrides of the clinic's booking policy; null = the clinic's default.
#[derive(Debug, Clone, Default, Object)]
pub struct ServicePolicy {
    #[oai(nullable)]
    pub min_notice_minutes: Option<u32>,
    #[oai(nullable)]
    pub max_advance_days: Option<u32>,
    #[oai(nullable)]
    pub cancel_notice_hours: Option<u32>,
    #[oai(nullable)]
    pub reschedule_notice_hours: Option<u32>,
}

/// A service as staff see it.
#[derive(Debug, Object)]
pub struct StaffService {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: ServiceCategory,
    pub duration_minutes: u32,
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    pub price_pence: u32,
    /// 1 for a one-to-one service; more for a group class booked by seats.
    pub capacity: u32,
    /// All practitioners linked to the service (including inactive ones).
    pub practitioner_ids: Vec<Uuid>,
    pub active: bool,
    pub online_bookable: bool,
    /// Spacing of slot starts; null = the clinic's `policy.slot_step_minutes`.
    #[oai(nullable)]
    pub slot_step_minutes: Option<u32>,
    pub policy: ServicePolicy,
}

#[derive(Object)]
pub struct NewService {
    /// Derived from the name when absent.
    pub slug: Option<String>,
    pub name: String,
    #[oai(default)]
    pub description: String,
    pub category: ServiceCategory,
    /// 5–480.
    pub duration_minutes: u32,
    /// 0–120.
    #[oai(default)]
    pub buffer_before_minutes: u32,
    /// 0–120.
    #[oai(default)]
    pub buffer_after_minutes: u32,
    pub price_pence: u32,
    /// 1 (default) for a one-to-one service; 2–500 for a group class booked by seats.
    #[oai(default = "one")]
    pub capacity: u32,
    #[oai(default = "yes")]
    pub active: bool,
    #[oai(default = "yes")]
    pub online_bookable: bool,
    pub slot_step_minutes: Option<u32>,
    #[oai(default)]
    pub policy: ServicePolicy,
    #[oai(default)]
    pub practitioner_ids: Vec<Uuid>,
}

fn yes() -> bool {
    true
}

fn one() -> u32 {
    1
}

/// Fields to change; absent fields stay as they are, null resets an override.
#[derive(Object)]
pub struct ServicePatch {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<ServiceCategory>,
    pub duration_minutes: Option<u32>,
    pub buffer_before_minutes: Option<u32>,
    pub buffer_after_minutes: Option<u32>,
    pub price_pence: Option<u32>,
    /// 1–500; above 1 the service is a group class.
    pub capacity: Option<u32>,
    pub active: Option<bool>,
    pub online_bookable: Option<bool>,
    #[oai(nullable)]
    pub slot_step_minutes: MaybeUndefined<u32>,
    pub policy: Option<PolicyPatch>,
    /// Replaces the set of practitioners offering the service.
    pub practitioner_ids: Option<Vec<Uuid>>,
}

#[derive(Object)]
pub struct PolicyPatch {
    #[oai(nullable)]
    pub min_notice_minutes: MaybeUndefined<u32>,
    #[oai(nullable)]
    pub max_advance_days: MaybeUndefined<u32>,
    #[oai(nullable)]
    pub cancel_notice_hours: MaybeUndefined<u32>,
    #[oai(nullable)]
    pub reschedule_notice_hours: MaybeUndefined<u32>,
}

#[derive(ApiResponse)]
pub enum ServiceCreated {
    #[oai(status = 201)]
    Created(Json<StaffService>, #[oai(header = "Location")] String),
}

/// Saturates rather than dropping values past `i32::MAX`, so the range checks refuse them.
fn opt_i32(v: Option<u32>) -> Option<i32> {
    v.map(to_i32)
}

/// A list of ids as a set: sorted, each once (the order the links are read back in).
pub fn distinct(ids: &[Uuid]) -> Vec<Uuid> {
    let mut ids = ids.to_vec();
    ids.sort();
    ids.dedup();
    ids
}

fn to_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn staff_service(s: service::Model, practitioner_ids: Vec<Uuid>) -> StaffService {
    StaffService {
        id: s.id,
        category: ServiceCategory::parse(&s.category).unwrap_or(ServiceCategory::Other),
        slug: s.slug,
        name: s.name,
        description: s.description,
        duration_minutes: to_u32(s.duration_minutes),
        buffer_before_minutes: to_u32(s.buffer_before_minutes),
        buffer_after_minutes: to_u32(s.buffer_after_minutes),
        price_pence: to_u32(s.price_pence),
        capacity: to_u32(s.capacity),
        practitioner_ids,
        active: s.active,
        online_bookable: s.online_bookable,
        slot_step_minutes: s.slot_step_minutes.map(to_u32),
        policy: ServicePolicy {
            min_notice_minutes: s.min_notice_minutes.map(to_u32),
            max_advance_days: s.max_advance_days.map(to_u32),
            cancel_notice_hours: s.cancel_notice_hours.map(to_u32),
            reschedule_notice_hours: s.reschedule_notice_hours.map(to_u32),
        },
    }
}

/// Range checks shared by create and patch, on the would-be stored row.
fn check_service(s: &service::Model) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let mut range = |field: &str, value: Option<i32>, min: i32, max: i32| {
        if let Some(v) = value
            && !(min..=max).contains(&v)
        {
            errors.push(FieldError::new(
                field,
                format!("must be between {min} and {max}"),
            ));
        }
    };
    range("duration_minutes", Some(s.duration_minutes), 5, 480);
    range(
        "buffer_before_minutes",
        Some(s.buffer_before_minutes),
        0,
        120,
    );
    range("buffer_after_minutes", Some(s.buffer_after_minutes), 0, 120);
    range("price_pence", Some(s.price_pence), 0, 1_000_000);
    range(
        "capacity",
        Some(s.capacity),
        1,
        crate::domain::classes::MAX_CAPACITY,
    );
    range("slot_step_minutes", s.slot_step_minutes, 5, 240);
    range(
        "policy.min_notice_minutes",
        s.min_notice_minutes,
        0,
        60 * 24 * 30,
    );
    range("policy.max_advance_days", s.max_advance_days, 1, 730);
    range(
        "policy.cancel_notice_hours",
        s.cancel_notice_hours,
        0,
        24 * 30,
    );
    range(
        "policy.reschedule_notice_hours",
        s.reschedule_notice_hours,
        0,
        24 * 30,
    );
    errors
}

async fn check_practitioners(
    conn: &impl sea_orm::ConnectionTrait,
    ids: &[Uuid],
) -> ApiResult<Vec<FieldError>> {
    let existing = catalogue_store::existing_practitioner_ids(conn, ids).await?;
    Ok(ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !existing.contains(id))
        .map(|(i, _)| FieldError::new(format!("practitioner_ids[{i}]"), "no such practitioner"))
        .collect())
}

fn slug_taken() -> ApiError {
    ApiError::conflict(
        "slug_taken",
        "Slug taken",
        "Another service already uses this slug.",
    )
}

fn map_write_error(e: sea_orm::DbErr) -> ApiError {
    if store::is_unique_violation(&e) {
        slug_taken()
    } else {
        e.into()
    }
}

impl StaffServicesApi {
    async fn load(&self, id: Uuid) -> ApiResult<StaffService> {
        let s = catalogue_store::find_service(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("service"))?;
        let links = catalogue_store::links(&self.state.db).await?;
        let ids = catalogue_store::practitioners_by_service(&links)
            .remove(&id)
            .unwrap_or_default();
        Ok(staff_service(s, ids))
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffCatalogue")]
impl StaffServicesApi {
    /// All services, including inactive ones.
    #[oai(path = "/services", method = "get")]
    async fn list(
        &self,
        auth: StaffAuth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<StaffService>>> {
        let _ = auth;
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let services = catalogue_store::list_services(&self.state.db, false).await?;
        let links = catalogue_store::links(&self.state.db).await?;
        let mut by_service = catalogue_store::practitioners_by_service(&links);
        let items = services
            .into_iter()
            .map(|s| {
                let ids = by_service.remove(&s.id).unwrap_or_default();
                staff_service(s, ids)
            })
            .collect();
        Ok(Json(paging.slice(items)))
    }

    /// Creates a service (admin).
    #[oai(path = "/services", method = "post")]
    async fn create(&self, auth: StaffAuth, body: Json<NewService>) -> ApiResult<ServiceCreated> {
        auth.0.require(&[Role::Admin])?;
        let body = body.0;
        let mut errors = Vec::new();
        let name = text::single_line("name", &body.name, 120).map_err(|e| errors.push(e));
        let description =
            text::multi_line("description", &body.description, 2000).map_err(|e| errors.push(e));
        let slug = match &body.slug {
            Some(s) => text::slug("slug", s),
            None => text::slug("name", &text::slugify(&body.name)),
        }
        .map_err(|e| errors.push(e));
        let now = Utc::now();
        let model = service::Model {
            id: Uuid::new_v4(),
            slug: slug.unwrap_or_default(),
            name: name.unwrap_or_default(),
            description: description.unwrap_or_default(),
            category: body.category.as_str().to_string(),
            duration_minutes: to_i32(body.duration_minutes),
            buffer_before_minutes: to_i32(body.buffer_before_minutes),
            buffer_after_minutes: to_i32(body.buffer_after_minutes),
            price_pence: to_i32(body.price_pence),
            capacity: to_i32(body.capacity),
            active: body.active,
            online_bookable: body.online_bookable,
            slot_step_minutes: opt_i32(body.slot_step_minutes),
            min_notice_minutes: opt_i32(body.policy.min_notice_minutes),
            max_advance_days: opt_i32(body.policy.max_advance_days),
            cancel_notice_hours: opt_i32(body.policy.cancel_notice_hours),
            reschedule_notice_hours: opt_i32(body.policy.reschedule_notice_hours),
            created_at: now,
            updated_at: now,
        };
        errors.extend(check_service(&model));
        errors.extend(check_practitioners(&self.state.db, &body.practitioner_ids).await?);
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let txn = store::begin_write(&self.state.db).await?;
        let created = catalogue_store::insert_service(&txn, model)
            .await
            .map_err(map_write_error)?;
        let practitioner_ids = distinct(&body.practitioner_ids);
        catalogue_store::set_service_practitioners(&txn, created.id, &practitioner_ids).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "create",
            "service",
            Some(created.id),
            serde_json::json!({ "slug": created.slug, "name": created.name }),
        )
        .await?;
        txn.commit().await?;
        let location = format!("/api/v1/staff/services/{}", created.id);
        Ok(ServiceCreated::Created(
            Json(staff_service(created, practitioner_ids)),
            location,
        ))
    }

    /// One service.
    #[oai(path = "/services/:id", method = "get")]
    async fn get(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<StaffService>> {
        let _ = auth;
        Ok(Json(self.load(path_id(&id, "service")?).await?))
    }

    /// Changes a service (admin).
    #[oai(path = "/services/:id", method = "patch")]
    async fn update(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<ServicePatch>,
    ) -> ApiResult<Json<StaffService>> {
        auth.0.require(&[Role::Admin])?;
        let id = path_id(&id, "service")?;
        let patch = body.0;
        let txn = store::begin_write(&self.state.db).await?;
        let mut s = catalogue_store::find_service(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("service"))?;
        let mut errors = Vec::new();
        if let Some(v) = &patch.name {
            text::single_line("name", v, 120)
                .map(|v| s.name = v)
                .unwrap_or_else(|e| errors.push(e));
        }
        if let Some(v) = &patch.slug {
            text::slug("slug", v)
                .map(|v| s.slug = v)
                .unwrap_or_else(|e| errors.push(e));
        }
        if let Some(v) = &patch.description {
            text::multi_line("description", v, 2000)
                .map(|v| s.description = v)
                .unwrap_or_else(|e| errors.push(e));
        }
        if let Some(v) = patch.category {
            s.category = v.as_str().to_string();
        }
        if let Some(v) = patch.duration_minutes {
            s.duration_minutes = to_i32(v);
        }
        if let Some(v) = patch.buffer_before_minutes {
            s.buffer_before_minutes = to_i32(v);
        }
        if let Some(v) = patch.buffer_after_minutes {
            s.buffer_after_minutes = to_i32(v);
        }
        if let Some(v) = patch.price_pence {
            s.price_pence = to_i32(v);
        }
        if let Some(v) = patch.capacity {
            s.capacity = to_i32(v);
        }
        if let Some(v) = patch.active {
            s.active = v;
        }
        if let Some(v) = patch.online_bookable {
            s.online_bookable = v;
        }
        apply(&mut s.slot_step_minutes, patch.slot_step_minutes);
        if let Some(p) = patch.policy {
            apply(&mut s.min_notice_minutes, p.min_notice_minutes);
            apply(&mut s.max_advance_days, p.max_advance_days);
            apply(&mut s.cancel_notice_hours, p.cancel_notice_hours);
            apply(&mut s.reschedule_notice_hours, p.reschedule_notice_hours);
        }
        errors.extend(check_service(&s));
        if let Some(ids) = &patch.practitioner_ids {
            errors.extend(check_practitioners(&txn, ids).await?);
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        s.updated_at = Utc::now();
        let updated = catalogue_store::update_service(&txn, s)
            .await
            .map_err(map_write_error)?;
        if let Some(ids) = &patch.practitioner_ids {
            catalogue_store::set_service_practitioners(&txn, id, &distinct(ids)).await?;
        }
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "update",
            "service",
            Some(id),
            serde_json::json!({ "slug": updated.slug, "active": updated.active }),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(self.load(id).await?))
    }

    /// Deactivates a service (admin): it disappears from the public side; nothing is deleted.
    #[oai(path = "/services/:id", method = "delete")]
    async fn deactivate(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<StaffService>> {
        auth.0.require(&[Role::Admin])?;
        let id = path_id(&id, "service")?;
        let txn = store::begin_write(&self.state.db).await?;
        let mut s = catalogue_store::find_service(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("service"))?;
        s.active = false;
        s.updated_at = Utc::now();
        catalogue_store::update_service(&txn, s).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "deactivate",
            "service",
            Some(id),
            serde_json::json!({}),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(self.load(id).await?))
    }
}

/// Applies a nullable patch field: absent keeps, null clears, a value sets.
fn apply(target: &mut Option<i32>, patch: MaybeUndefined<u32>) {
    match patch {
        MaybeUndefined::Undefined => {}
        MaybeUndefined::Null => *target = None,
        MaybeUndefined::Value(v) => *target = Some(to_i32(v)),
    }
}
