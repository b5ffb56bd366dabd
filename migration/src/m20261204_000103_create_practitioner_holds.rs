//! `practitioner_holds`: the one table that says "this practitioner's time is taken" — by an
//! appointment (not cancelled), a class session (scheduled) or a waitlist offer holding a
//! one-to-one slot. Rows for appointments and sessions are kept by triggers on those tables,
//! so the guarantee never depends on application code remembering; offers insert their rows
//! explicitly. No two holds of a practitioner overlap: on PostgreSQL an exclusion constraint
//! (`practitioner_holds_no_overlap`, SQLSTATE 23P01, decided across instances); on SQLite a
//! trigger that aborts the overlapping write with the same name (writes are serialised there).

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

const POSTGRES_UP: &[&str] = &[
    "ALTER TABLE practitioner_holds ADD CONSTRAINT practitioner_holds_no_overlap \
     EXCLUDE USING gist (practitioner_id WITH =, \
     tstzrange(blocked_from, blocked_until, '[)') WITH &&)",
    "CREATE OR REPLACE FUNCTION practitioner_holds_of_appointment() RETURNS trigger AS $$
     BEGIN
       IF TG_OP = 'UPDATE' THEN
         DELETE FROM practitioner_holds WHERE appointment_id = OLD.id;
       END IF;
       IF NEW.status <> 'cancelled' THEN
         INSERT INTO practitioner_holds
           (practitioner_id, blocked_from, blocked_until, kind, appointment_id)
         VALUES (NEW.practitioner_id, NEW.blocked_from, NEW.blocked_until, 'appointment', NEW.id);
       END IF;
       RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER appointments_practitioner_hold \
     AFTER INSERT OR UPDATE OF status, practitioner_id, blocked_from, blocked_until \
     ON appointments FOR EACH ROW EXECUTE FUNCTION practitioner_holds_of_appointment()",
    "CREATE OR REPLACE FUNCTION practitioner_holds_of_class_session() RETURNS trigger AS $$
     BEGIN
       IF TG_OP = 'UPDATE' THEN
         DELETE FROM practitioner_holds WHERE class_session_id = OLD.id;
       END IF;
       IF NEW.status = 'scheduled' THEN
         INSERT INTO practitioner_holds
           (practitioner_id, blocked_from, blocked_until, kind, class_session_id)
         VALUES (NEW.practitioner_id, NEW.blocked_from, NEW.blocked_until, 'class', NEW.id);
       END IF;
       RETURN NULL;
     END $$ LANGUAGE plpgsql",
    "CREATE TRIGGER class_sessions_practitioner_hold \
     AFTER INSERT OR UPDATE OF status, practitioner_id, blocked_from, blocked_until \
     ON class_sessions FOR EACH ROW EXECUTE FUNCTION practitioner_holds_of_class_session()",
];

const POSTGRES_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS class_sessions_practitioner_hold ON class_sessions",
    "DROP TRIGGER IF EXISTS appointments_practitioner_hold ON appointments",
    "DROP FUNCTION IF EXISTS practitioner_holds_of_class_session()",
    "DROP FUNCTION IF EXISTS practitioner_holds_of_appointment()",
];

const SQLITE_UP: &[&str] = &[
    "CREATE TRIGGER practitioner_holds_no_overlap_insert BEFORE INSERT ON practitioner_holds
     WHEN EXISTS (SELECT 1 FROM practitioner_holds h
                  WHERE h.practitioner_id = NEW.practitioner_id
                    AND h.blocked_from < NEW.blocked_until
                    AND h.blocked_until > NEW.blocked_from)
     BEGIN SELECT RAISE(ABORT, 'practitioner_holds_no_overlap'); END",
    "CREATE TRIGGER practitioner_holds_no_overlap_update BEFORE UPDATE ON practitioner_holds
     WHEN EXISTS (SELECT 1 FROM practitioner_holds h
                  WHERE h.id <> NEW.id
                    AND h.practitioner_id = NEW.practitioner_id
                    AND h.blocked_from < NEW.blocked_until
                    AND h.blocked_until > NEW.blocked_from)
     BEGIN SELECT RAISE(ABORT, 'practitioner_holds_no_overlap'); END",
    "CREATE TRIGGER appointments_practitioner_hold_insert AFTER INSERT ON appointments
     WHEN NEW.status <> 'cancelled'
     BEGIN
       INSERT INTO practitioner_holds
         (practitioner_id, blocked_from, blocked_until, kind, appointment_id)
       VALUES (NEW.practitioner_id, NEW.blocked_from, NEW.blocked_until, 'appointment', NEW.id);
     END",
    "CREATE TRIGGER appointments_practitioner_hold_update
     AFTER UPDATE OF status, practitioner_id, blocked_from, blocked_until ON appointments
     BEGIN
       DELETE FROM practitioner_holds WHERE appointment_id = OLD.id;
       INSERT INTO practitioner_holds
         (practitioner_id, blocked_from, blocked_until, kind, appointment_id)
       SELECT NEW.practitioner_id, NEW.blocked_from, NEW.blocked_until, 'appointment', NEW.id
       WHERE NEW.status <> 'cancelled';
     END",
    "CREATE TRIGGER appointments_practitioner_hold_delete AFTER DELETE ON appointments
     BEGIN DELETE FROM practitioner_holds WHERE appointment_id = OLD.id; END",
    "CREATE TRIGGER class_sessions_practitioner_hold_insert AFTER INSERT ON class_sessions
     WHEN NEW.status = 'scheduled'
     BEGIN
       INSERT INTO practitioner_holds
         (practitioner_id, blocked_from, blocked_until, kind, class_session_id)
       VALUES (NEW.practitioner_id, NEW.blocked_from, NEW.blocked_until, 'class', NEW.id);
     END",
    "CREATE TRIGGER class_sessions_practitioner_hold_update
     AFTER UPDATE OF status, practitioner_id, blocked_from, blocked_until ON class_sessions
     BEGIN
       DELETE FROM practitioner_holds WHERE class_session_id = OLD.id;
       INSERT INTO practitioner_holds
         (practitioner_id, blocked_from, blocked_until, kind, class_session_id)
       SELECT NEW.practitioner_id, NEW.blocked_from, NEW.blocked_until, 'class', NEW.id
       WHERE NEW.status = 'scheduled';
     END",
    "CREATE TRIGGER class_sessions_practitioner_hold_delete AFTER DELETE ON class_sessions
     BEGIN DELETE FROM practitioner_holds WHERE class_session_id = OLD.id; END",
];

const SQLITE_DOWN: &[&str] = &[
    "DROP TRIGGER IF EXISTS class_sessions_practitioner_hold_delete",
    "DROP TRIGGER IF EXISTS class_sessions_practitioner_hold_update",
    "DROP TRIGGER IF EXISTS class_sessions_practitioner_hold_insert",
    "DROP TRIGGER IF EXISTS appointments_practitioner_hold_delete",
    "DROP TRIGGER IF EXISTS appointments_practitioner_hold_update",
    "DROP TRIGGER IF EXISTS appointments_practitioner_hold_insert",
    "DROP TRIGGER IF EXISTS practitioner_holds_no_overlap_update",
    "DROP TRIGGER IF EXISTS practitioner_holds_no_overlap_insert",
];

/// Holds for what already blocks time when the table is created.
const BACKFILL: &[&str] = &[
    "INSERT INTO practitioner_holds
       (practitioner_id, blocked_from, blocked_until, kind, appointment_id)
     SELECT practitioner_id, blocked_from, blocked_until, 'appointment', id
     FROM appointments WHERE status <> 'cancelled'",
    "INSERT INTO practitioner_holds
       (practitioner_id, blocked_from, blocked_until, kind, class_session_id)
     SELECT practitioner_id, blocked_from, blocked_until, 'class', id
     FROM class_sessions WHERE status = 'scheduled'",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("practitioner_holds")
                    .col(pk_auto("id"))
                    .col(uuid("practitioner_id"))
                    .col(timestamp_with_time_zone("blocked_from"))
                    .col(timestamp_with_time_zone("blocked_until"))
                    // appointment | class | offer
                    .col(string("kind"))
                    .col(uuid_null("appointment_id").unique_key())
                    .col(uuid_null("class_session_id").unique_key())
                    .col(uuid_null("offer_id").unique_key())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_practitioner_holds_appointment")
                            .from("practitioner_holds", "appointment_id")
                            .to("appointments", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_practitioner_holds_class_session")
                            .from("practitioner_holds", "class_session_id")
                            .to("class_sessions", "id")
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_practitioner_holds_practitioner")
                    .table("practitioner_holds")
                    .col("practitioner_id")
                    // By end: a window's overlaps are found by scanning forward from its start,
                    // so the practitioner's past (years of diary) is never walked.
                    .col("blocked_until")
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for sql in BACKFILL {
            db.execute_unprepared(sql).await?;
        }
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS btree_gist")
                    .await?;
                POSTGRES_UP
            }
            _ => SQLITE_UP,
        };
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let statements = match manager.get_database_backend() {
            DbBackend::Postgres => POSTGRES_DOWN,
            _ => SQLITE_DOWN,
        };
        let db = manager.get_connection();
        for sql in statements {
            db.execute_unprepared(sql).await?;
        }
        manager
            .drop_table(Table::drop().table("practitioner_holds").to_owned())
            .await
    }
}
