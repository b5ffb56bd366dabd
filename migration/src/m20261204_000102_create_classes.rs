//! Group classes: weekly series, sessions (with their capacity and seat counts) and seats.
//! The seat count is kept on the session and changed by one guarded UPDATE per seat; the
//! CHECK below is the database's last word on "never more seats than places", on both
//! databases. One active seat per patient per session is a partial unique index.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("class_series")
                    .col(pk_uuid("id"))
                    .col(uuid("service_id"))
                    .col(uuid("practitioner_id"))
                    // 0 = Monday … 6 = Sunday
                    .col(integer("weekday"))
                    // minutes after local midnight, in the clinic's zone
                    .col(integer("start_minute"))
                    .col(date("valid_from"))
                    .col(date("valid_until"))
                    .col(integer("capacity"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_class_series_service")
                            .from("class_series", "service_id")
                            .to("services", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_class_series_practitioner")
                            .from("class_series", "practitioner_id")
                            .to("practitioners", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("class_sessions")
                    .col(pk_uuid("id"))
                    .col(uuid("service_id"))
                    .col(uuid("practitioner_id"))
                    .col(uuid_null("series_id"))
                    .col(timestamp_with_time_zone("starts_at"))
                    .col(timestamp_with_time_zone("ends_at"))
                    .col(timestamp_with_time_zone("blocked_from"))
                    .col(timestamp_with_time_zone("blocked_until"))
                    .col(integer("capacity"))
                    // confirmed (and attended / no-show) seats
                    .col(integer("seats_taken").default(0))
                    // places held by open waitlist offers
                    .col(integer("seats_held").default(0))
                    // scheduled | cancelled
                    .col(string("status"))
                    .col(string_null("cancel_reason"))
                    // iCalendar SEQUENCE of every seat's invitation, raised on every change
                    .col(integer("sequence").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .check(Expr::cust(
                        "seats_taken >= 0 AND seats_held >= 0 \
                         AND seats_taken + seats_held <= capacity",
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_class_sessions_service")
                            .from("class_sessions", "service_id")
                            .to("services", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_class_sessions_practitioner")
                            .from("class_sessions", "practitioner_id")
                            .to("practitioners", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_class_sessions_series")
                            .from("class_sessions", "series_id")
                            .to("class_series", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_class_sessions_starts")
                    .table("class_sessions")
                    .col("starts_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_class_sessions_series")
                    .table("class_sessions")
                    .col("series_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("class_seats")
                    .col(pk_uuid("id"))
                    .col(string_uniq("reference"))
                    .col(uuid("class_session_id"))
                    .col(uuid("patient_id"))
                    // confirmed | cancelled | attended | no_show
                    .col(string("status"))
                    .col(text("notes"))
                    // online | staff | waitlist
                    .col(string("source"))
                    .col(string_null("manage_token_hash"))
                    .col(string_null("cancel_reason"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_class_seats_session")
                            .from("class_seats", "class_session_id")
                            .to("class_sessions", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_class_seats_patient")
                            .from("class_seats", "patient_id")
                            .to("patients", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_class_seats_patient")
                    .table("class_seats")
                    .col("patient_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_class_seats_manage_token")
                    .table("class_seats")
                    .col("manage_token_hash")
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Partial indexes read the same on both databases; sea-query has no builder for them.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX idx_class_seats_one_per_patient \
                 ON class_seats (class_session_id, patient_id) WHERE status <> 'cancelled'",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["class_seats", "class_sessions", "class_series"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
