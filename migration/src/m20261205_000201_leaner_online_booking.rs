//! PostgreSQL: less work for the database in every online booking, with the same guarantee.
//!
//! - `appointments_no_overlap` is dropped. Since `m20261204_000103_create_practitioner_holds`,
//!   every appointment that is not cancelled has a `practitioner_holds` row with the same
//!   practitioner and blocked range, written by a trigger in the same statement, and
//!   `practitioner_holds_no_overlap` refuses any two that overlap (appointments, class sessions
//!   and offers alike). So the appointments' own constraint could never refuse anything the
//!   holds' constraint lets through; it only cost every booking a second GiST insert and
//!   search. An overlap is still SQLSTATE 23P01, raised by the same INSERT or UPDATE
//!   statement.
//! - `frontdesk_book_online` (the overload with the schedule version) creates a new patient in
//!   one statement: `INSERT … ON CONFLICT DO NOTHING RETURNING` gives the new record, and only
//!   when a concurrent booking created that email first is it read (and locked) again. It used
//!   to insert and then read the new record back with `FOR UPDATE`, which also wrote a lock
//!   for a row no other transaction can see before this one commits. A returning patient is
//!   still found and locked by the first statement, as before.
//!
//! `down` restores both. SQLite is untouched.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

use crate::m20261126_000007_appointments_no_overlap as appointments_constraint;
use crate::m20261205_000101_schedule_version as previous;

#[derive(DeriveMigrationName)]
pub struct Migration;

const INSERT_THEN_READ: &str = "            ON CONFLICT (email) DO NOTHING;
        SELECT * INTO pat FROM patients p WHERE p.email = p_email FOR UPDATE;
";
const INSERT_RETURNING: &str = "            ON CONFLICT (email) DO NOTHING
            RETURNING * INTO pat;
        -- Another booking created this email first: its record, once that one commits.
        IF NOT FOUND THEN
            SELECT * INTO pat FROM patients p WHERE p.email = p_email FOR UPDATE;
        END IF;
";

/// The schedule-version overload with the new patient created in one statement.
fn create() -> String {
    previous::create().replacen(INSERT_THEN_READ, INSERT_RETURNING, 1)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "ALTER TABLE appointments DROP CONSTRAINT IF EXISTS appointments_no_overlap",
        )
        .await?;
        db.execute_unprepared(&create()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&previous::create()).await?;
        db.execute_unprepared(appointments_constraint::ADD).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_patient_is_inserted_once_and_read_again_only_after_losing_the_race() {
        let sql = create();
        assert_ne!(sql, previous::create(), "the anchor matched");
        let insert = sql.find("RETURNING * INTO pat").expect("returning");
        let lost = sql
            .find("IF NOT FOUND THEN\n            SELECT * INTO pat")
            .expect("race");
        let gone = sql
            .find("'frontdesk: the patient record went away'")
            .expect("gone");
        assert!(insert < lost && lost < gone, "{sql}");
        assert_eq!(sql.matches("FOR UPDATE").count(), 2, "{sql}");
        // Everything else is the previous overload's.
        assert!(sql.contains("p_schedule_version bigint,"));
        assert!(sql.contains("pg_advisory_xact_lock"));
    }
}
