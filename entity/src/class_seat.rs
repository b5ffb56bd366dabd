//! A patient's seat in a class session, with its own reference and manage token.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "class_seats")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub reference: String,
    pub class_session_id: Uuid,
    pub patient_id: Uuid,
    /// confirmed | cancelled | attended | no_show
    pub status: String,
    pub notes: String,
    /// online | staff | waitlist
    pub source: String,
    pub manage_token_hash: Option<String>,
    pub cancel_reason: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
