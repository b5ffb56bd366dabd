//! A course of treatment: the weekly rule a set of appointments was booked from.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "series")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub patient_id: Uuid,
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    pub first_start: DateTimeUtc,
    pub every_weeks: i32,
    pub count: Option<i32>,
    /// The last local date an occurrence may fall on (YYYY-MM-DD).
    pub until: Option<String>,
    pub time_zone: String,
    /// active | cancelled
    pub status: String,
    pub created_by: Option<Uuid>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
