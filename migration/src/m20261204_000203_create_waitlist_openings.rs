//! Freed places waiting out `waitlist.grace_seconds` before the worker looks for an entry:
//! a class session with a seat free, or a practitioner's time that a cancellation, a move
//! or removed time off gave back. Workers take due rows with `FOR UPDATE SKIP LOCKED` (on
//! PostgreSQL) inside the transaction that offers them, so each is processed once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("waitlist_openings")
                    .col(pk_uuid("id"))
                    // class | slot
                    .col(string("kind"))
                    .col(uuid_null("class_session_id"))
                    .col(uuid_null("practitioner_id"))
                    .col(timestamp_with_time_zone_null("free_from"))
                    .col(timestamp_with_time_zone_null("free_until"))
                    .col(timestamp_with_time_zone("freed_at"))
                    // null: due once `waitlist.grace_seconds` after freed_at; set: due then (a
                    // place passed on by a decline or an expiry has served its grace period)
                    .col(timestamp_with_time_zone_null("due_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_waitlist_openings_due")
                    .table("waitlist_openings")
                    .col("freed_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("waitlist_openings").to_owned())
            .await
    }
}
