//! Weekly working hours, practitioner time off and clinic closures.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("working_hours")
                    .col(pk_uuid("id"))
                    .col(uuid("practitioner_id"))
                    // 0 = Monday … 6 = Sunday
                    .col(small_integer("weekday"))
                    // minutes after local midnight, in the clinic's time zone
                    .col(integer("start_minute"))
                    .col(integer("end_minute"))
                    .col(date_null("valid_from"))
                    .col(date_null("valid_until"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_working_hours_practitioner")
                            .from("working_hours", "practitioner_id")
                            .to("practitioners", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_working_hours_practitioner")
                    .table("working_hours")
                    .col("practitioner_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("time_off")
                    .col(pk_uuid("id"))
                    .col(uuid("practitioner_id"))
                    .col(timestamp_with_time_zone("starts_at"))
                    .col(timestamp_with_time_zone("ends_at"))
                    .col(string("reason"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_time_off_practitioner")
                            .from("time_off", "practitioner_id")
                            .to("practitioners", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_time_off_practitioner_range")
                    .table("time_off")
                    .col("practitioner_id")
                    .col("starts_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("closures")
                    .col(pk_uuid("id"))
                    .col(timestamp_with_time_zone("starts_at"))
                    .col(timestamp_with_time_zone("ends_at"))
                    .col(string("reason"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["closures", "time_off", "working_hours"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
