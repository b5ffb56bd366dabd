//! Contact-form enquiries from the clinic website.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("enquiries")
                    .col(pk_uuid("id"))
                    .col(string_uniq("reference"))
                    // new | in_progress | closed | spam
                    .col(string("status"))
                    .col(string("name"))
                    .col(string("email"))
                    .col(string_null("phone"))
                    .col(string("topic"))
                    .col(uuid_null("service_id"))
                    .col(text("message"))
                    .col(string("preferred_contact"))
                    .col(boolean("marketing_consent"))
                    // SHA-256 of the client address, never the address itself
                    .col(string("ip_hash"))
                    .col(uuid_null("assignee_id"))
                    .col(timestamp_with_time_zone("received_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        for (name, cols) in [
            (
                "idx_enquiries_status_received",
                vec!["status", "received_at"],
            ),
            ("idx_enquiries_email_received", vec!["email", "received_at"]),
        ] {
            let mut index = Index::create();
            index.name(name).table("enquiries");
            for col in cols {
                index.col(col);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("enquiries").to_owned())
            .await
    }
}
