//! Webhook endpoints registered by admins: where events are posted and the secrets that sign
//! them. A secret must be usable to sign, so it is stored as given out; treat it as a
//! credential.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("webhook_endpoints")
                    .col(pk_uuid("id"))
                    .col(text("url"))
                    // JSON array of event type names
                    .col(text("events"))
                    .col(string_null("description"))
                    .col(boolean("active"))
                    // whsec_<base64>
                    .col(string("secret"))
                    // the secret replaced by the last rotation, still signing until it expires
                    .col(string_null("previous_secret"))
                    .col(timestamp_with_time_zone_null("previous_secret_expires_at"))
                    .col(string_null("disabled_reason"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("webhook_endpoints").to_owned())
            .await
    }
}
