//! Appointments: who sees whom for what and when, with the blocked range (start and end
//! widened by the service's buffers) that the no-double-booking guarantee is about.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("appointments")
                    .col(pk_uuid("id"))
                    .col(string_uniq("reference"))
                    .col(uuid("service_id"))
                    .col(uuid("practitioner_id"))
                    .col(uuid("patient_id"))
                    // confirmed | arrived | completed | no_show | cancelled
                    .col(string("status"))
                    .col(timestamp_with_time_zone("starts_at"))
                    .col(timestamp_with_time_zone("ends_at"))
                    .col(timestamp_with_time_zone("blocked_from"))
                    .col(timestamp_with_time_zone("blocked_until"))
                    // online | staff
                    .col(string("source"))
                    .col(text("notes"))
                    .col(string_null("manage_token_hash"))
                    .col(string_null("cancel_reason"))
                    // iCalendar SEQUENCE, incremented on every reschedule
                    .col(integer("sequence"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_appointments_service")
                            .from("appointments", "service_id")
                            .to("services", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_appointments_practitioner")
                            .from("appointments", "practitioner_id")
                            .to("practitioners", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_appointments_patient")
                            .from("appointments", "patient_id")
                            .to("patients", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_appointments_practitioner_blocked")
                    .table("appointments")
                    .col("practitioner_id")
                    .col("blocked_from")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_appointments_patient")
                    .table("appointments")
                    .col("patient_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_appointments_manage_token")
                    .table("appointments")
                    .col("manage_token_hash")
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("appointments").to_owned())
            .await
    }
}
