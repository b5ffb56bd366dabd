//! Waitlist offers: one place held for one entry until it is claimed, declined, expires or is
//! withdrawn. Two partial unique indexes are the database's word on "an entry is offered one
//! place at a time" and "a place is offered to one entry at a time" (same session or same
//! practitioner and start), whichever instance makes the offer.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("waitlist_offers")
                    .col(pk_uuid("id"))
                    .col(uuid("entry_id"))
                    // null once erased: the link opens nothing
                    .col(string_null("offer_token_hash"))
                    .col(uuid_null("class_session_id"))
                    // the held one-to-one slot: service, practitioner, time and blocked range
                    .col(uuid_null("service_id"))
                    .col(uuid_null("practitioner_id"))
                    .col(timestamp_with_time_zone_null("starts_at"))
                    .col(timestamp_with_time_zone_null("ends_at"))
                    .col(timestamp_with_time_zone_null("blocked_from"))
                    .col(timestamp_with_time_zone_null("blocked_until"))
                    // open | claimed | declined | expired | withdrawn
                    .col(string("status"))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("decided_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_waitlist_offers_entry")
                            .from("waitlist_offers", "entry_id")
                            .to("waitlist_entries", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_waitlist_offers_token")
                    .table("waitlist_offers")
                    .col("offer_token_hash")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_waitlist_offers_due")
                    .table("waitlist_offers")
                    .col("status")
                    .col("expires_at")
                    .to_owned(),
            )
            .await?;
        // The same statements on SQLite and PostgreSQL: both know partial indexes.
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE UNIQUE INDEX waitlist_offers_one_open_per_entry \
             ON waitlist_offers (entry_id) WHERE status = 'open'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE UNIQUE INDEX waitlist_offers_one_open_per_slot \
             ON waitlist_offers (practitioner_id, starts_at) WHERE status = 'open'",
        )
        .await?;
        db.execute_unprepared(
            "CREATE INDEX waitlist_offers_open_blocked \
             ON waitlist_offers (practitioner_id, blocked_from) WHERE status = 'open'",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("waitlist_offers").to_owned())
            .await
    }
}
