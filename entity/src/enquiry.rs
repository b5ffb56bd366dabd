//! A contact-form enquiry.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "enquiries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub reference: String,
    pub status: String,
    pub name: String,
    pub email: String,
    pub phone: Option<String>,
    pub topic: String,
    pub service_id: Option<Uuid>,
    pub message: String,
    pub preferred_contact: String,
    pub marketing_consent: bool,
    pub ip_hash: String,
    pub assignee_id: Option<Uuid>,
    pub received_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
