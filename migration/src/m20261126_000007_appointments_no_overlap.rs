//! The no-double-booking guarantee on PostgreSQL: an exclusion constraint over
//! (practitioner, blocked range) for every appointment that is not cancelled. A violation is
//! SQLSTATE 23P01. SQLite has no such constraint; there, bookings check and insert inside one
//! `BEGIN IMMEDIATE` transaction, which serialises writers.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The constraint. `m20261205_000201_leaner_online_booking` drops it (the holds' constraint
/// covers the same appointments) and puts it back in its `down`.
pub(crate) const ADD: &str = "ALTER TABLE appointments ADD CONSTRAINT appointments_no_overlap \
     EXCLUDE USING gist (practitioner_id WITH =, \
     tstzrange(blocked_from, blocked_until, '[)') WITH &&) \
     WHERE (status <> 'cancelled')";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS btree_gist")
            .await?;
        db.execute_unprepared(ADD).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(
                "ALTER TABLE appointments DROP CONSTRAINT IF EXISTS appointments_no_overlap",
            )
            .await?;
        Ok(())
    }
}
