//! Courses of treatment: a weekly rule (first start, interval, count or end date, in the
//! clinic's zone) that a set of appointments was booked from.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("series")
                    .col(pk_uuid("id"))
                    .col(uuid("patient_id"))
                    .col(uuid("service_id"))
                    .col(uuid("practitioner_id"))
                    .col(timestamp_with_time_zone("first_start"))
                    .col(integer("every_weeks"))
                    .col(integer_null("count"))
                    // a local date, YYYY-MM-DD
                    .col(string_null("until"))
                    .col(string("time_zone"))
                    // active | cancelled
                    .col(string("status"))
                    .col(uuid_null("created_by"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_series_patient")
                            .from("series", "patient_id")
                            .to("patients", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_series_service")
                            .from("series", "service_id")
                            .to("services", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_series_practitioner")
                            .from("series", "practitioner_id")
                            .to("practitioners", "id"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("series").to_owned())
            .await
    }
}
