//! Staff view of the waiting list: `GET /api/v1/staff/waitlist[?class_id|service_id]`
//! (admin and reception: every entry; a practitioner: the entries for their own services
//! and sessions) and `PATCH /api/v1/staff/waitlist/{id}` `{"urgent"}` (admin, reception;
//! audited).

use std::{collections::HashMap, sync::Arc};

use chrono::{DateTime, Utc};
use entity::{class_session, patient, waitlist_entry};
use poem_openapi::{
    Object, OpenApi,
    param::{Path, Query},
    payload::Json,
};
use sea_orm::{ColumnTrait, Condition};
use uuid::Uuid;

use crate::{
    domain::catalogue::Role,
    http::{
        pagination::{Page, PageRequest},
        problem::{ApiError, ApiResult},
        security::{Staff, StaffAuth},
    },
    state::AppState,
    store,
    waitlist::{self, WaitlistError},
};

use super::{ApiTags, path_id, waitlist::WaitlistEntry};

pub struct StaffWaitlistApi {
    pub state: Arc<AppState>,
}

/// The patient on a waitlist entry.
#[derive(Debug, Object)]
pub struct WaitlistPatient {
    pub id: Uuid,
    pub name: String,
    #[oai(nullable)]
    pub email: Option<String>,
    #[oai(nullable)]
    pub phone: Option<String>,
}

/// A waitlist entry as staff see it.
#[derive(Debug, Object)]
pub struct StaffWaitlistEntry {
    #[oai(flatten)]
    pub entry: WaitlistEntry,
    /// Offered places before everyone else.
    pub urgent: bool,
    pub updated_at: DateTime<Utc>,
    /// When it stopped waiting (claimed, left, expired); null while it waits.
    #[oai(nullable)]
    pub ended_at: Option<DateTime<Utc>>,
    #[oai(nullable)]
    pub patient: Option<WaitlistPatient>,
}

/// A change to an entry.
#[derive(Debug, Object)]
pub struct WaitlistPatch {
    /// Offer this entry places before everyone else.
    pub urgent: bool,
}

impl StaffWaitlistApi {
    async fn objects(
        &self,
        rows: Vec<waitlist_entry::Model>,
    ) -> ApiResult<Vec<StaffWaitlistEntry>> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.patient_id).collect();
        let patients: HashMap<Uuid, patient::Model> =
            store::patients::find_many(&self.state.db, &ids)
                .await?
                .into_iter()
                .map(|p| (p.id, p))
                .collect();
        let mut items = Vec::with_capacity(rows.len());
        for row in rows {
            let entry = super::waitlist::entry_object(&self.state.db, &row).await?;
            items.push(StaffWaitlistEntry {
                entry,
                urgent: row.urgent,
                updated_at: row.updated_at,
                ended_at: row.ended_at,
                patient: patients.get(&row.patient_id).map(|p| WaitlistPatient {
                    id: p.id,
                    name: p.name.clone(),
                    email: p.email.clone(),
                    phone: p.phone.clone(),
                }),
            });
        }
        Ok(items)
    }

    /// What a practitioner may read: entries for their own services (naming them or anyone)
    /// and for their own sessions.
    async fn scope(&self, staff: &Staff) -> ApiResult<Condition> {
        match (staff.role, staff.practitioner_id) {
            (Role::Admin | Role::Reception, _) => Ok(Condition::all()),
            (Role::Practitioner, None) => Err(ApiError::forbidden()),
            (Role::Practitioner, Some(me)) => {
                let services =
                    store::waitlist::services_of_practitioner(&self.state.db, me).await?;
                let sessions = sea_orm::sea_query::Query::select()
                    .column(class_session::Column::Id)
                    .from(class_session::Entity)
                    .and_where(class_session::Column::PractitionerId.eq(me))
                    .to_owned();
                Ok(Condition::any()
                    .add(waitlist_entry::Column::ClassSessionId.in_subquery(sessions))
                    .add(waitlist_entry::Column::PractitionerId.eq(me))
                    .add(
                        Condition::all()
                            .add(waitlist_entry::Column::PractitionerId.is_null())
                            .add(waitlist_entry::Column::ServiceId.is_in(services)),
                    ))
            }
        }
    }
}

#[OpenApi(prefix_path = "/api/v1/staff", tag = "ApiTags::StaffBookings")]
impl StaffWaitlistApi {
    /// The waiting list, urgent entries first, then the oldest; optionally for one class
    /// session or one service (admin, reception; a practitioner sees the entries for their
    /// own services and sessions).
    #[oai(path = "/waitlist", method = "get")]
    async fn list(
        &self,
        auth: StaffAuth,
        class_id: Query<Option<Uuid>>,
        service_id: Query<Option<Uuid>>,
        page: Query<Option<u64>>,
        per_page: Query<Option<u64>>,
    ) -> ApiResult<Json<Page<StaffWaitlistEntry>>> {
        let paging = PageRequest::parse(page.0, per_page.0)?;
        let mut filter = Condition::all().add(self.scope(&auth.0).await?);
        if let Some(id) = class_id.0 {
            filter = filter.add(waitlist_entry::Column::ClassSessionId.eq(id));
        }
        if let Some(id) = service_id.0 {
            filter = filter.add(waitlist_entry::Column::ServiceId.eq(id));
        }
        let (rows, total) = store::waitlist::page(
            &self.state.db,
            filter,
            store::page_offset(paging.page, paging.per_page),
            paging.per_page,
        )
        .await?;
        Ok(Json(paging.wrap(self.objects(rows).await?, total)))
    }

    /// Marks an entry urgent, or not (admin, reception; audited).
    #[oai(path = "/waitlist/:id", method = "patch")]
    async fn update(
        &self,
        auth: StaffAuth,
        id: Path<String>,
        body: Json<WaitlistPatch>,
    ) -> ApiResult<Json<StaffWaitlistEntry>> {
        auth.0.require(&[Role::Admin, Role::Reception])?;
        let id = path_id(&id, "waitlist entry")?;
        let entry = waitlist::entries::set_urgent(&self.state, auth.0.id, id, body.0.urgent)
            .await
            .map_err(|e| match e {
                WaitlistError::NotFound => ApiError::not_found("waitlist entry"),
                WaitlistError::Database(e) => ApiError::from(e),
                other => ApiError::internal(other),
            })?;
        let mut items = self.objects(vec![entry]).await?;
        items
            .pop()
            .map(Json)
            .ok_or_else(|| ApiError::not_found("waitlist entry"))
    }
}
