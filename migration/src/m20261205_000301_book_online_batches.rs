//! PostgreSQL: several online bookings in one transaction. `frontdesk_book_online_try` takes
//! exactly the parameters of `frontdesk_book_online` (the overload with the schedule version)
//! and calls it inside a block of its own (a subtransaction): a booking that is refused (a
//! taken slot, a reached limit, a reused idempotency key, a changed schedule) undoes only its
//! own writes and comes back as a row with its SQLSTATE and message, instead of
//! ending the transaction. A booking that succeeds comes back as its patient record. An
//! instance sends the bookings waiting for the database as one statement of several such
//! calls, in order, each seeing the ones before it: one round trip and one commit for all of
//! them, each answered only after that commit (see `store::online_booking`). The function is
//! declared `PARALLEL UNSAFE` (the default, said outright): the calls of one statement must
//! run one after another in one process, never as a parallel plan.
//!
//! SQLite has no such function: there the single writer batches its own transactions.

use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

use crate::m20261205_000101_schedule_version as booking;

#[derive(DeriveMigrationName)]
pub struct Migration;

const SIGNATURE_START: &str = "frontdesk_book_online(";

/// The parameter types of `frontdesk_book_online` (the schedule-version overload), in order.
fn parameter_types() -> &'static str {
    booking::NEW_SIGNATURE
        .strip_prefix(SIGNATURE_START)
        .and_then(|s| s.strip_suffix(')'))
        .expect("the signature's shape")
}

/// The function; its parameters are positional, passed on to `frontdesk_book_online` as they
/// come.
pub(crate) fn create() -> String {
    let types = parameter_types();
    let arguments: Vec<String> = (1..=types.split(',').count())
        .map(|i| format!("${i}"))
        .collect();
    format!(
        "CREATE OR REPLACE FUNCTION frontdesk_book_online_try({types})
RETURNS TABLE (
    id uuid, name text, email text, phone text, created_at timestamptz,
    updated_at timestamptz, erased_at timestamptz,
    error_state text, error_message text
)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE AS $fn$
DECLARE
    pat patients%ROWTYPE;
BEGIN
    BEGIN
        SELECT * INTO pat FROM frontdesk_book_online({arguments});
    EXCEPTION WHEN OTHERS THEN
        -- Refused: this booking's writes (and its locks) are undone, the others' stay.
        GET STACKED DIAGNOSTICS error_state = RETURNED_SQLSTATE,
                                error_message = MESSAGE_TEXT;
        RETURN NEXT;
        RETURN;
    END;
    id := pat.id;
    name := pat.name;
    email := pat.email;
    phone := pat.phone;
    created_at := pat.created_at;
    updated_at := pat.updated_at;
    erased_at := pat.erased_at;
    RETURN NEXT;
END
$fn$",
        arguments = arguments.join(", ")
    )
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&create())
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "DROP FUNCTION IF EXISTS frontdesk_book_online_try({})",
                parameter_types()
            ))
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_is_passed_on_in_order() {
        let sql = create();
        let count = parameter_types().split(',').count();
        assert_eq!(count, 38);
        let call = format!(
            "frontdesk_book_online({})",
            (1..=count)
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        assert!(sql.contains(&call), "{sql}");
        assert!(sql.contains("frontdesk_book_online_try(bigint, timestamptz,"));
        assert!(sql.contains("EXCEPTION WHEN OTHERS"));
        assert!(sql.contains("VOLATILE PARALLEL UNSAFE"));
    }
}
