//! A range of a practitioner's time that is taken: by an appointment, a class session or a
//! waitlist offer. Kept by database triggers for appointments and sessions.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "practitioner_holds")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i32,
    pub practitioner_id: Uuid,
    pub blocked_from: DateTimeUtc,
    pub blocked_until: DateTimeUtc,
    /// appointment | class | offer
    pub kind: String,
    #[sea_orm(unique)]
    pub appointment_id: Option<Uuid>,
    #[sea_orm(unique)]
    pub class_session_id: Option<Uuid>,
    #[sea_orm(unique)]
    pub offer_id: Option<Uuid>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
