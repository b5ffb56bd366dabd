//! Staff management of practitioners and their weekly working hours.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use entity::practitioner;
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
        catalogue::{Discipline, Role, vocabulary},
        hours::{self, WeeklyInterval},
        text::{self, EmailAddress},
    },
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::{Staff, StaffAuth},
    },
    state::AppState,
    store::{self, catalogue as catalogue_store, schedule as schedule_store},
};

use super::{ApiTags, path_id, staff_services::distinct};

pub struct StaffPractitionersApi {
    pub state: Arc<AppState>,
}

/// A practitioner as staff see it.
#[derive(Debug, Object)]
pub struct StaffPractitioner {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub discipline: Discipline,
    pub title: String,
    pub bio: String,
    /// Where booking notices for this practitioner go.
    #[oai(nullable)]
    pub email: Option<String>,
    pub active: bool,
    pub online_bookable: bool,
    /// All services linked to the practitioner.
    pub service_ids: Vec<Uuid>,
}

#[derive(Object)]
pub struct NewPractitioner {
    /// Derived from the name when absent.
    pub slug: Option<String>,
    pub name: String,
    pub discipline: Discipline,
    #[oai(default)]
    pub title: String,
    #[oai(default)]
    pub bio: String,
    pub email: Option<String>,
    #[oai(default = "yes")]
    pub active: bool,
    #[oai(default = "yes")]
    pub online_bookable: bool,
    #[oai(default)]
    pub service_ids: Vec<Uuid>,
}

fn yes() -> bool {
    true
}

/// Fields to change; absent fields stay as they are.
#[derive(Object)]
pub struct PractitionerPatch {
    pub slug: Option<String>,
    pub name: Option<String>,
    pub discipline: Option<Discipline>,
    pub title: Option<String>,
    pub bio: Option<String>,
    /// null removes the address.
    #[oai(nullable)]
    pub email: MaybeUndefined<String>,
    pub active: Option<bool>,
    pub online_bookable: Option<bool>,
    /// Replaces the set of services the practitioner offers.
    pub service_ids: Option<Vec<Uuid>>,
}

#[derive(ApiResponse)]
pub enum PractitionerCreated {
    #[oai(status = 201)]
    Created(Json<StaffPractitioner>, #[oai(header = "Location")] String),
}

vocabulary!(
    /// A day of the week.
    Weekday {
        Monday = "monday",
        Tuesday = "tuesday",
        Wednesday = "wednesday",
        Thursday = "thursday",
        Friday = "friday",
        Saturday = "saturday",
        Sunday = "sunday",
    }
);

/// One working interval in the clinic's local time.
#[derive(Debug, Object)]
pub struct WorkingInterval {
    pub weekday: Weekday,
    /// Local start, `HH:MM`.
    pub start: String,
    /// Local end, `HH:MM` (`24:00` = midnight), after `start`.
    pub end: String,
    /// First date the interval applies (inclusive); none = always.
    #[oai(nullable)]
    pub valid_from: Option<NaiveDate>,
    /// Last date the interval applies (inclusive); none = open-ended.
    #[oai(nullable)]
    pub valid_until: Option<NaiveDate>,
}

/// A practitioner's whole week.
#[derive(Debug, Object)]
pub struct WorkingWeek {
    pub intervals: Vec<WorkingInterval>,
}

fn interval_object(iv: &WeeklyInterval) -> WorkingInterval {
    WorkingInterval {
        weekday: Weekday::parse(hours::WEEKDAYS[usize::from(iv.weekday) % 7])
            .unwrap_or(Weekday::Monday),
        start: hours::format_clock(iv.start_minute),
        end: hours::format_clock(iv.end_minute),
        valid_from: iv.valid_from,
        valid_until: iv.valid_until,
    }
}

/// Parses and validates a submitted week.
fn parse_week(week: &WorkingWeek) -> Result<Vec<WeeklyInterval>, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut intervals = Vec::new();
    if week.intervals.len() > 100 {
        return Err(vec![FieldError::new("intervals", "at most 100 intervals")]);
    }
    for (i, iv) in week.intervals.iter().enumerate() {
        let start = hours::parse_clock(&iv.start);
        let end = hours::parse_clock(&iv.end);
        if start.is_none() {
            errors.push(FieldError::new(
                format!("intervals[{i}].start"),
                "must be a time HH:MM",
            ));
        }
        if end.is_none() {
            errors.push(FieldError::new(
                format!("intervals[{i}].end"),
                "must be a time HH:MM",
            ));
        }
        if let (Some(start_minute), Some(end_minute)) = (start, end) {
            intervals.push(WeeklyInterval {
                weekday: hours::parse_weekday(iv.weekday.as_str()).unwrap_or(0),
                start_minute,
                end_minute,
                valid_from: iv.valid_from,
                valid_until: iv.valid_until,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    hours::validate_week(&intervals)?;
    Ok(intervals)
}

fn staff_practitioner(p: practitioner::Model, service_ids: Vec<Uuid>) -> StaffPractitioner {
    StaffPractitioner {
        id: p.id,
        discipline: Discipline::parse(&p.discipline).unwrap_or(Discipline::Other),
        slug: p.slug,
        name: p.name,
        title: p.title,
        bio: p.bio,
        email: p.email,
        active: p.active,
        online_bookable: p.online_bookable,
        service_ids,
    }
}

async fn check_services(
    conn: &impl sea_orm::ConnectionTrait,
    ids: &[Uuid],
) -> ApiResult<Vec<FieldError>> {
    let existing = catalogue_store::existing_service_ids(conn, ids).await?;
    Ok(ids
        .iter()
        .enumerate()
        .filter(|(_, id)| !existing.contains(id))
        .map(|(i, _)| FieldError::new(format!("service_ids[{i}]"), "no such service"))
        .collect())
}

fn map_write_error(e: sea_orm::DbErr) -> ApiError {
    if store::is_unique_violation(&e) {
        ApiError::conflict(
            "slug_taken",
            "Slug taken",
            "Another practitioner already uses this slug.",
        )
    } else {
        e.into()
    }
}

/// A practitioner may only see their own record; staff of other roles see all.
fn check_visible(staff: &Staff, practitioner_id: Uuid) -> ApiResult<()> {
    if staff.may_manage_practitioner(practitioner_id) {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

impl StaffPractitionersApi {
    async fn load(&self, id: Uuid) -> ApiResult<StaffPractitioner> {
        let p = catalogue_store::find_practitioner(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("practitioner"))?;
        let links = catalogue_store::links(&self.state.db).await?;
        let ids = catalogue_store::services_by_practitioner(&links)
            .remove(&id)
            .unwrap_or_default();
        Ok(staff_practitioner(p, ids))
    }

    async fn existing(&self, id: Uuid) -> ApiResult<practitioner::Model> {
        catalogue_store::find_practitioner(&self.state.db, id)
            .await?
            .ok_or_else(|| ApiError::not_found("practitioner"))
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffCatalogue")]
impl StaffPractitionersApi {
    /// The team, including inactive members. Practitioners see only themselves.
    #[oai(path = "/practitioners", method = "get")]
    async fn list(
        &self,
        auth: StaffAuth,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<StaffPractitioner>>> {
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let all = catalogue_store::list_practitioners(&self.state.db, false).await?;
        let links = catalogue_store::links(&self.state.db).await?;
        let mut by_practitioner = catalogue_store::services_by_practitioner(&links);
        let items = all
            .into_iter()
            .filter(|p| auth.0.may_manage_practitioner(p.id))
            .map(|p| {
                let ids = by_practitioner.remove(&p.id).unwrap_or_default();
                staff_practitioner(p, ids)
            })
            .collect();
        Ok(Json(paging.slice(items)))
    }

    /// Adds a practitioner to the team (admin).
    #[oai(path = "/practitioners", method = "post")]
    async fn create(
        &self,
        auth: StaffAuth,
        body: Json<NewPractitioner>,
    ) -> ApiResult<PractitionerCreated> {
        auth.0.require(&[Role::Admin])?;
        let body = body.0;
        let mut errors = Vec::new();
        let mut ok =
            |r: Result<String, FieldError>| r.map_err(|e| errors.push(e)).unwrap_or_default();
        let name = ok(text::single_line("name", &body.name, 100));
        let title = ok(text::multi_line("title", &body.title, 120).and_then(|t| {
            if t.contains('\n') {
                Err(FieldError::new("title", "must be a single line"))
            } else {
                Ok(t)
            }
        }));
        let bio = ok(text::multi_line("bio", &body.bio, 4000));
        let slug = ok(match &body.slug {
            Some(s) => text::slug("slug", s),
            None => text::slug("name", &text::slugify(&body.name)),
        });
        let email = match body.email.as_deref() {
            Some(e) => EmailAddress::parse("email", e)
                .map(|e| Some(e.into_inner()))
                .unwrap_or_else(|e| {
                    errors.push(e);
                    None
                }),
            None => None,
        };
        errors.extend(check_services(&self.state.db, &body.service_ids).await?);
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        let now = Utc::now();
        let model = practitioner::Model {
            id: Uuid::new_v4(),
            slug,
            name,
            discipline: body.discipline.as_str().to_string(),
            title,
            bio,
            email,
            active: body.active,
            online_bookable: body.online_bookable,
            created_at: now,
            updated_at: now,
            feed_token_hash: None,
        };
        let txn = store::begin_write(&self.state.db).await?;
        let created = catalogue_store::insert_practitioner(&txn, model)
            .await
            .map_err(map_write_error)?;
        let service_ids = distinct(&body.service_ids);
        catalogue_store::set_practitioner_services(&txn, created.id, &service_ids).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "create",
            "practitioner",
            Some(created.id),
            serde_json::json!({ "slug": created.slug, "name": created.name }),
        )
        .await?;
        txn.commit().await?;
        let location = format!("/api/v1/staff/practitioners/{}", created.id);
        Ok(PractitionerCreated::Created(
            Json(staff_practitioner(created, service_ids)),
            location,
        ))
    }

    /// One practitioner.
    #[oai(path = "/practitioners/:id", method = "get")]
    async fn get(&self, auth: StaffAuth, id: Path<String>) -> ApiResult<Json<StaffPractitioner>> {
        let id = path_id(&id, "practitioner")?;
        check_visible(&auth.0, id)?;
        Ok(Json(self.load(id).await?))
    }

    /// Changes a practitioner (admin). `active: false` takes them off the public side.
    #[oai(path = "/practitioners/:id", method = "patch")]
    async fn update(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<PractitionerPatch>,
    ) -> ApiResult<Json<StaffPractitioner>> {
        auth.0.require(&[Role::Admin])?;
        let id = path_id(&id, "practitioner")?;
        let patch = body.0;
        let txn = store::begin_write(&self.state.db).await?;
        let mut p = catalogue_store::find_practitioner(&txn, id)
            .await?
            .ok_or_else(|| ApiError::not_found("practitioner"))?;
        let mut errors = Vec::new();
        if let Some(v) = &patch.name {
            text::single_line("name", v, 100)
                .map(|v| p.name = v)
                .unwrap_or_else(|e| errors.push(e));
        }
        if let Some(v) = &patch.slug {
            text::slug("slug", v)
                .map(|v| p.slug = v)
                .unwrap_or_else(|e| errors.push(e));
        }
        if let Some(v) = &patch.title {
            text::single_line("title", v, 120)
                .map(|v| p.title = v)
                .unwrap_or_else(|e| errors.push(e));
        }
        if let Some(v) = &patch.bio {
            text::multi_line("bio", v, 4000)
                .map(|v| p.bio = v)
                .unwrap_or_else(|e| errors.push(e));
        }
        match &patch.email {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => p.email = None,
            MaybeUndefined::Value(v) => EmailAddress::parse("email", v)
                .map(|v| p.email = Some(v.into_inner()))
                .unwrap_or_else(|e| errors.push(e)),
        }
        if let Some(v) = patch.discipline {
            p.discipline = v.as_str().to_string();
        }
        if let Some(v) = patch.active {
            p.active = v;
        }
        if let Some(v) = patch.online_bookable {
            p.online_bookable = v;
        }
        if let Some(ids) = &patch.service_ids {
            errors.extend(check_services(&txn, ids).await?);
        }
        if !errors.is_empty() {
            return Err(ApiError::validation(errors));
        }
        p.updated_at = Utc::now();
        let updated = catalogue_store::update_practitioner(&txn, p)
            .await
            .map_err(map_write_error)?;
        if let Some(ids) = &patch.service_ids {
            catalogue_store::set_practitioner_services(&txn, id, &distinct(ids)).await?;
        }
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "update",
            "practitioner",
            Some(id),
            serde_json::json!({ "slug": updated.slug, "active": updated.active }),
        )
        .await?;
        txn.commit().await?;
        Ok(Json(self.load(id).await?))
    }

    /// The practitioner's weekly working hours.
    #[oai(path = "/practitioners/:id/working-hours", method = "get")]
    async fn working_hours(
        &self,
        auth: StaffAuth,
        id: Path<String>,
    ) -> ApiResult<Json<WorkingWeek>> {
        let id = path_id(&id, "practitioner")?;
        check_visible(&auth.0, id)?;
        self.existing(id).await?;
        let rows = schedule_store::working_hours_of(&self.state.db, &[id]).await?;
        Ok(Json(WorkingWeek {
            intervals: rows
                .iter()
                .map(|r| interval_object(&schedule_store::to_interval(r)))
                .collect(),
        }))
    }

    /// Replaces the practitioner's whole week (admin, reception, or the practitioner).
    #[oai(path = "/practitioners/:id/working-hours", method = "put")]
    async fn replace_working_hours(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<WorkingWeek>,
    ) -> ApiResult<Json<WorkingWeek>> {
        let id = path_id(&id, "practitioner")?;
        check_visible(&auth.0, id)?;
        self.existing(id).await?;
        let intervals = parse_week(&body.0)?;
        let txn = store::begin_write(&self.state.db).await?;
        schedule_store::replace_week(&txn, id, &intervals).await?;
        store::audit::record(
            &txn,
            Some(auth.0.id),
            "replace_working_hours",
            "practitioner",
            Some(id),
            serde_json::json!({ "intervals": intervals.len() }),
        )
        .await?;
        txn.commit().await?;
        let mut sorted = intervals;
        sorted.sort_by_key(|iv| (iv.weekday, iv.start_minute));
        Ok(Json(WorkingWeek {
            intervals: sorted.iter().map(interval_object).collect(),
        }))
    }
}
