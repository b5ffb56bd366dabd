//! Waitlist entries: a patient waiting for a place in a class session, or for a one-to-one
//! slot of a service (optionally with one practitioner, within local dates and a time of day).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("waitlist_entries")
                    .col(pk_uuid("id"))
                    // a class entry names its session (no foreign key: the classes tables
                    // are migrated separately)
                    .col(uuid_null("class_session_id"))
                    .col(uuid_null("service_id"))
                    .col(uuid_null("practitioner_id"))
                    // local dates, YYYY-MM-DD, inclusive (one-to-one entries)
                    .col(string_null("from_date"))
                    .col(string_null("to_date"))
                    // minutes after local midnight a slot may start from / until
                    .col(integer_null("earliest_minute"))
                    .col(integer_null("latest_minute"))
                    .col(uuid("patient_id"))
                    // waiting | offered | claimed | left | expired
                    .col(string("status"))
                    .col(boolean("urgent").default(false))
                    // null once erased: the link opens nothing
                    .col(string_null("manage_token_hash"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("ended_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_waitlist_entries_patient")
                            .from("waitlist_entries", "patient_id")
                            .to("patients", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_waitlist_entries_service")
                            .from("waitlist_entries", "service_id")
                            .to("services", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_waitlist_entries_practitioner")
                            .from("waitlist_entries", "practitioner_id")
                            .to("practitioners", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_waitlist_entries_status")
                    .table("waitlist_entries")
                    .col("status")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_waitlist_entries_token")
                    .table("waitlist_entries")
                    .col("manage_token_hash")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_waitlist_entries_patient")
                    .table("waitlist_entries")
                    .col("patient_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("waitlist_entries").to_owned())
            .await
    }
}
