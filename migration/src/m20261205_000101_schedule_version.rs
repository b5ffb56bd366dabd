//! PostgreSQL: a version number for everything an online booking is decided on apart from the
//! calendars, so that an instance may decide from its own copy and the database can tell
//! whether that copy was current.
//!
//! - `schedule_version` holds one row, whose `version` goes up with every statement that
//!   writes to `services`, `practitioners`, `practitioner_services`, `working_hours`,
//!   `time_off` or `closures` (a statement-level trigger, in the writer's own transaction). The
//!   trigger runs BEFORE the statement, so a staff transaction locks that row before the rows
//!   its first such statement writes: two staff changes queue on it rather than each holding
//!   a row the other needs (every staff transaction that writes these tables writes one of
//!   them first).
//! - `frontdesk_book_online` gains an overload whose first parameter is the version the
//!   caller's copy was read at (NULL: the caller read everything afresh). Right after claiming
//!   the idempotency key (so a request repeating a key always waits for the first one's
//!   answer), when that is not the current version, the function raises
//!   `frontdesk: schedule changed`, nothing is written, and the caller decides again on fresh
//!   reads. Such a caller never read the calendar, so the function then takes its turn at the
//!   practitioner's time (advisory locks on the quarter hours the booking blocks, taken in
//!   ascending order and held until commit: overlapping online bookings queue there instead of
//!   deadlocking inside the exclusion constraint) and refuses a slot that a committed hold
//!   already covers, with the constraint's own error. Everything else it does is the arrays
//!   overload's (`m20261204_000501_book_online_arrays`); both earlier overloads stay for
//!   instances of earlier releases during a rolling upgrade.
//!
//! The version is read after the function's own snapshot is taken, as the calendars always
//! were: a staff change committed before the booking's statement is seen, one committed after
//! it is ordered after the booking, as before.
//!
//! SQLite has neither: its single writer reads everything inside the booking's transaction.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

use crate::m20261204_000501_book_online_arrays as previous;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The tables whose writes change what a booking is decided on.
const WATCHED: [&str; 6] = [
    "services",
    "practitioners",
    "practitioner_services",
    "working_hours",
    "time_off",
    "closures",
];

const TABLE: &str = "
CREATE TABLE schedule_version (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    version bigint NOT NULL
);
INSERT INTO schedule_version (id, version) VALUES (true, 1);
CREATE FUNCTION frontdesk_bump_schedule_version() RETURNS trigger
LANGUAGE plpgsql AS $fn$
BEGIN
    UPDATE schedule_version SET version = version + 1;
    RETURN NULL;
END
$fn$;
";

pub(crate) const NEW_SIGNATURE: &str = "frontdesk_book_online(bigint, timestamptz, text, text, integer, \
     text, text, uuid, text, text, text, boolean, bigint, uuid, text, uuid, uuid, timestamptz, \
     timestamptz, timestamptz, timestamptz, text, text, text, text, text, text, text[], \
     text[], text[], text[], text[], text[], text[], text[], text[], text[], timestamptz[])";

const FIRST_PARAMETER: &str = "frontdesk_book_online(
    p_now timestamptz,";
const PATIENT_START: &str = "    -- Locked, so a booking racing an erasure";

/// The arrays overload with, after the idempotency key (a request repeating a key must find
/// it, not its own booking), the version check and the practitioner's time: the quarter hours
/// the booking would block are locked in turn (advisory locks held to the end of the
/// transaction), then the holds are looked at, and a taken slot is refused before anything is
/// written, with the exclusion constraint's own error. A caller deciding on a copy never read
/// the calendar; the constraint remains the guarantee.
pub(crate) fn create() -> String {
    previous::create()
        .replacen(
            FIRST_PARAMETER,
            "frontdesk_book_online(
    p_schedule_version bigint,
    p_now timestamptz,",
            1,
        )
        .replacen(
            PATIENT_START,
            "    -- Decided on a copy of the schedule that is no longer current: decide again.
    IF p_schedule_version IS NOT NULL
       AND p_schedule_version <> (SELECT v.version FROM schedule_version v) THEN
        RAISE EXCEPTION 'frontdesk: schedule changed' USING ERRCODE = 'P0001';
    END IF;

    -- Online bookings of overlapping times take turns: each locks the practitioner's
    -- quarter hours that its blocked time touches, in ascending order, until it commits, so two
    -- of them never wait on each other inside the exclusion constraint (a deadlock there
    -- costs a second before PostgreSQL breaks it). Overlapping ranges share a quarter hour.
    IF p_blocked_until - p_blocked_from <= interval '24 hours' THEN
        FOR quarter IN floor(extract(epoch FROM p_blocked_from) / 900)::integer
                    .. ceil(extract(epoch FROM p_blocked_until) / 900)::integer - 1 LOOP
            PERFORM pg_advisory_xact_lock(hashtext(p_practitioner_id::text), quarter);
        END LOOP;
    END IF;

    -- Taken by a booking that has committed (after the turn above, any earlier online
    -- booking of an overlapping time has): nothing to write. Other writers of holds are met
    -- by the exclusion constraint.
    IF EXISTS (SELECT 1 FROM practitioner_holds h
               WHERE h.practitioner_id = p_practitioner_id
                 AND tstzrange(h.blocked_from, h.blocked_until, '[)')
                     && tstzrange(p_blocked_from, p_blocked_until, '[)')) THEN
        RAISE EXCEPTION
            'conflicting key value violates exclusion constraint \"practitioner_holds_no_overlap\"'
            USING ERRCODE = 'exclusion_violation';
    END IF;

    -- Locked, so a booking racing an erasure",
            1,
        )
}

fn trigger_name(table: &str) -> String {
    format!("{table}_bump_schedule_version")
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(TABLE).await?;
        for table in WATCHED {
            db.execute_unprepared(&format!(
                "CREATE TRIGGER {} BEFORE INSERT OR UPDATE OR DELETE OR TRUNCATE ON {table} \
                 FOR EACH STATEMENT EXECUTE FUNCTION frontdesk_bump_schedule_version()",
                trigger_name(table)
            ))
            .await?;
        }
        db.execute_unprepared(&create()).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(&format!("DROP FUNCTION IF EXISTS {NEW_SIGNATURE}"))
            .await?;
        for table in WATCHED {
            db.execute_unprepared(&format!(
                "DROP TRIGGER IF EXISTS {} ON {table}",
                trigger_name(table)
            ))
            .await?;
        }
        db.execute_unprepared(
            "DROP FUNCTION IF EXISTS frontdesk_bump_schedule_version(); \
             DROP TABLE IF EXISTS schedule_version",
        )
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_the_key_the_new_function_checks_the_version_then_the_holds() {
        let sql = create();
        assert!(sql.contains("p_schedule_version bigint,\n    p_now timestamptz,"));
        let check = sql
            .find("'frontdesk: schedule changed'")
            .expect("the check");
        let key = sql.find("INSERT INTO idempotency_keys").expect("the key");
        let turn = sql.find("pg_advisory_xact_lock").expect("the turn");
        let taken = sql.find("FROM practitioner_holds h").expect("the holds");
        let patient = sql.find("SELECT * INTO pat").expect("the patient");
        assert!(
            key < check && check < turn && turn < taken && taken < patient,
            "{sql}"
        );
        assert!(sql.contains("FROM unnest(p_mail_kind"));
    }
}
