//! The series (course of treatment) an appointment was booked in, if any.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

const INDEX: &str = "idx_appointments_series";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("appointments")
                    .add_column(uuid_null("series_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table("appointments")
                    .col("series_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(INDEX).table("appointments").to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("appointments")
                    .drop_column("series_id")
                    .to_owned(),
            )
            .await
    }
}
