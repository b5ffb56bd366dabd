//! The append-only history of each booking: created, rescheduled, cancelled, attendance.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("appointment_events")
                    .col(pk_uuid("id"))
                    .col(uuid("appointment_id"))
                    .col(timestamp_with_time_zone("at"))
                    .col(string("kind"))
                    // patient (through the manage link), staff or system
                    .col(string("actor"))
                    .col(uuid_null("staff_id"))
                    .col(text("detail"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_appointment_events_appointment")
                            .from("appointment_events", "appointment_id")
                            .to("appointments", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_appointment_events_appointment")
                    .table("appointment_events")
                    .col("appointment_id")
                    .col("at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("appointment_events").to_owned())
            .await
    }
}
