//! The start an occurrence of a series was first booked at: its iCalendar RECURRENCE-ID, which
//! stays the same when the occurrence is moved.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("appointments")
                    .add_column(timestamp_with_time_zone_null("series_start"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("appointments")
                    .drop_column("series_start")
                    .to_owned(),
            )
            .await
    }
}
