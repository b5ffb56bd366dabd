//! Patients (found or created by email) and the consents they gave, with time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("patients")
                    .col(pk_uuid("id"))
                    .col(string("name"))
                    // null for phone/walk-in patients without email, and after erasure
                    .col(string_null("email"))
                    .col(string_null("phone"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .col(timestamp_with_time_zone_null("erased_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_patients_email")
                    .table("patients")
                    .col("email")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("consents")
                    .col(pk_uuid("id"))
                    .col(uuid("patient_id"))
                    // privacy | marketing
                    .col(string("kind"))
                    .col(boolean("granted"))
                    .col(timestamp_with_time_zone("at"))
                    // where it was given: online_booking, enquiry, staff
                    .col(string("source"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_consents_patient")
                            .from("consents", "patient_id")
                            .to("patients", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_consents_patient")
                    .table("consents")
                    .col("patient_id")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["consents", "patients"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
