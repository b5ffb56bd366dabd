//! Services, practitioners and which practitioner offers which service.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("services")
                    .col(pk_uuid("id"))
                    .col(string_uniq("slug"))
                    .col(string("name"))
                    .col(text("description"))
                    .col(string("category"))
                    .col(integer("duration_minutes"))
                    .col(integer("buffer_before_minutes"))
                    .col(integer("buffer_after_minutes"))
                    .col(integer("price_pence"))
                    .col(boolean("active"))
                    .col(boolean("online_bookable"))
                    .col(integer_null("slot_step_minutes"))
                    .col(integer_null("min_notice_minutes"))
                    .col(integer_null("max_advance_days"))
                    .col(integer_null("cancel_notice_hours"))
                    .col(integer_null("reschedule_notice_hours"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("practitioners")
                    .col(pk_uuid("id"))
                    .col(string_uniq("slug"))
                    .col(string("name"))
                    .col(string("discipline"))
                    .col(string("title"))
                    .col(text("bio"))
                    .col(string_null("email"))
                    .col(boolean("active"))
                    .col(boolean("online_bookable"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("practitioner_services")
                    .col(uuid("practitioner_id"))
                    .col(uuid("service_id"))
                    .primary_key(Index::create().col("practitioner_id").col("service_id"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_practitioner_services_practitioner")
                            .from("practitioner_services", "practitioner_id")
                            .to("practitioners", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_practitioner_services_service")
                            .from("practitioner_services", "service_id")
                            .to("services", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_practitioner_services_service")
                    .table("practitioner_services")
                    .col("service_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["practitioner_services", "practitioners", "services"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
