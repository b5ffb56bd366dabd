//! Staff notes on an enquiry, appended with author and time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("enquiry_notes")
                    .col(pk_uuid("id"))
                    .col(uuid("enquiry_id"))
                    .col(uuid_null("author_id"))
                    .col(string("author_name"))
                    .col(timestamp_with_time_zone("at"))
                    .col(text("text"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_enquiry_notes_enquiry")
                            .from("enquiry_notes", "enquiry_id")
                            .to("enquiries", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_enquiry_notes_enquiry")
                    .table("enquiry_notes")
                    .col("enquiry_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("enquiry_notes").to_owned())
            .await
    }
}
