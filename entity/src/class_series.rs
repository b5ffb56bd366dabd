//! A weekly class series: one session a week at a local wall-clock time, between two dates.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "class_series")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub service_id: Uuid,
    pub practitioner_id: Uuid,
    /// 0 = Monday … 6 = Sunday.
    pub weekday: i32,
    /// Minutes after local midnight in the clinic's zone.
    pub start_minute: i32,
    pub valid_from: Date,
    pub valid_until: Date,
    pub capacity: i32,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
