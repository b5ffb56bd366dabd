//! The public catalogue: active, online-bookable services and practitioners.

use std::{collections::HashSet, sync::Arc};

use entity::{practitioner, service};
use poem_openapi::{Object, OpenApi, param::Path, param::Query, payload::Json};
use uuid::Uuid;

use crate::{
    domain::catalogue::{Discipline, ServiceCategory},
    state::AppState,
    store::catalogue as store,
};

use super::{ApiTags, path_id};
use crate::http::problem::{ApiError, ApiResult};

pub struct CatalogueApi {
    pub state: Arc<AppState>,
}

/// A service patients can book online.
#[derive(Debug, Object)]
pub struct Service {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub description: String,
    pub category: ServiceCategory,
    pub duration_minutes: u32,
    pub buffer_before_minutes: u32,
    pub buffer_after_minutes: u32,
    /// Price in pence (GBP).
    pub price_pence: u32,
    /// 1 for a one-to-one service (booked through `/availability`); more for a group class,
    /// booked by seats in its sessions (`/classes`).
    pub capacity: u32,
    /// Practitioners who offer it and can be booked online.
    pub practitioner_ids: Vec<Uuid>,
}

/// A member of the team patients can book online.
#[derive(Debug, Object)]
pub struct Practitioner {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    pub discipline: Discipline,
    /// Professional title, e.g. "Senior Physiotherapist, MCSP".
    pub title: String,
    pub bio: String,
    /// Online-bookable services they offer.
    pub service_ids: Vec<Uuid>,
}

pub fn to_u32(v: i32) -> u32 {
    u32::try_from(v).unwrap_or(0)
}

pub fn service_object(s: service::Model, practitioner_ids: Vec<Uuid>) -> Service {
    Service {
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
    }
}

pub fn practitioner_object(p: practitioner::Model, service_ids: Vec<Uuid>) -> Practitioner {
    Practitioner {
        id: p.id,
        discipline: Discipline::parse(&p.discipline).unwrap_or(Discipline::Other),
        slug: p.slug,
        name: p.name,
        title: p.title,
        bio: p.bio,
        service_ids,
    }
}

/// The public view: which services and practitioners are visible, and the links among them.
struct PublicCatalogue {
    services: Vec<service::Model>,
    practitioners: Vec<practitioner::Model>,
    links: Vec<entity::practitioner_service::Model>,
}

impl PublicCatalogue {
    async fn load(state: &AppState) -> ApiResult<Self> {
        let services = store::list_services(&state.db, true).await?;
        let practitioners = store::list_practitioners(&state.db, true).await?;
        let visible_s: HashSet<Uuid> = services.iter().map(|s| s.id).collect();
        let visible_p: HashSet<Uuid> = practitioners.iter().map(|p| p.id).collect();
        let links = store::links(&state.db)
            .await?
            .into_iter()
            .filter(|l| visible_s.contains(&l.service_id) && visible_p.contains(&l.practitioner_id))
            .collect();
        Ok(Self {
            services,
            practitioners,
            links,
        })
    }

    fn services(self) -> Vec<Service> {
        let mut by_service = store::practitioners_by_service(&self.links);
        self.services
            .into_iter()
            .map(|s| {
                let ids = by_service.remove(&s.id).unwrap_or_default();
                service_object(s, ids)
            })
            .collect()
    }

    fn practitioners(self) -> Vec<Practitioner> {
        let mut by_practitioner = store::services_by_practitioner(&self.links);
        self.practitioners
            .into_iter()
            .map(|p| {
                let ids = by_practitioner.remove(&p.id).unwrap_or_default();
                practitioner_object(p, ids)
            })
            .collect()
    }
}

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Catalogue")]
impl CatalogueApi {
    /// Services that can be booked online.
    #[oai(path = "/services", method = "get")]
    async fn list_services(&self) -> ApiResult<Json<Vec<Service>>> {
        Ok(Json(PublicCatalogue::load(&self.state).await?.services()))
    }

    /// One online-bookable service.
    #[oai(path = "/services/:id", method = "get")]
    async fn get_service(&self, id: Path<String>) -> ApiResult<Json<Service>> {
        let id = path_id(&id, "service")?;
        PublicCatalogue::load(&self.state)
            .await?
            .services()
            .into_iter()
            .find(|s| s.id == id)
            .map(Json)
            .ok_or_else(|| ApiError::not_found("service"))
    }

    /// Practitioners who can be booked online, optionally only those offering a service.
    #[oai(path = "/practitioners", method = "get")]
    async fn list_practitioners(
        &self,
        /// Only practitioners offering this service.
        service_id: Query<Option<Uuid>>,
    ) -> ApiResult<Json<Vec<Practitioner>>> {
        let all = PublicCatalogue::load(&self.state).await?.practitioners();
        Ok(Json(match service_id.0 {
            Some(sid) => all
                .into_iter()
                .filter(|p| p.service_ids.contains(&sid))
                .collect(),
            None => all,
        }))
    }

    /// One online-bookable practitioner.
    #[oai(path = "/practitioners/:id", method = "get")]
    async fn get_practitioner(&self, id: Path<String>) -> ApiResult<Json<Practitioner>> {
        let id = path_id(&id, "practitioner")?;
        PublicCatalogue::load(&self.state)
            .await?
            .practitioners()
            .into_iter()
            .find(|p| p.id == id)
            .map(Json)
            .ok_or_else(|| ApiError::not_found("practitioner"))
    }
}
