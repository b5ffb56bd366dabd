//! PostgreSQL: an online booking's rows in one round trip. `frontdesk_book_online` claims the
//! idempotency key, finds (locking) or creates the patient, checks the patient's limit of
//! upcoming bookings, and inserts the consents, the appointment, its history entry, its
//! emails and a delivery for every active endpoint subscribed to `booking.created`. The
//! caller has already asked the rulebook where the appointment may go; the exclusion
//! constraint `appointments_no_overlap` (since `m20261205_000201_leaner_online_booking`, the
//! holds' `practitioner_holds_no_overlap`) still refuses an overlap (SQLSTATE 23P01) that a
//! concurrent booking slipped in since. Each statement of the function reads afresh (READ
//! COMMITTED), so the limit counts a booking that held the patient's lock before this one.
//! Any refusal raises, and nothing of the booking stays. It returns the patient record. SQLite has no such function: there the
//! single writer runs the same steps inside its transaction.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

pub(crate) const CREATE: &str = r#"
CREATE OR REPLACE FUNCTION frontdesk_book_online(
    p_now timestamptz,
    p_idempotency_key text,
    p_request_hash text,
    p_response_status integer,
    p_response_body text,
    p_response_location text,
    p_patient_id uuid,
    p_email text,
    p_name text,
    p_phone text,
    p_marketing boolean,
    p_limit bigint,
    p_appointment_id uuid,
    p_reference text,
    p_service_id uuid,
    p_practitioner_id uuid,
    p_starts_at timestamptz,
    p_ends_at timestamptz,
    p_blocked_from timestamptz,
    p_blocked_until timestamptz,
    p_notes text,
    p_token_hash text,
    p_event_detail text,
    p_webhook_event text,
    p_webhook_id text,
    p_webhook_payload text,
    p_mails jsonb
) RETURNS SETOF patients
LANGUAGE plpgsql VOLATILE AS $fn$
DECLARE
    pat patients%ROWTYPE;
    upcoming bigint;
BEGIN
    -- The key first: a concurrent request with the same key waits here for this one's answer.
    IF p_idempotency_key IS NOT NULL THEN
        DELETE FROM idempotency_keys k
            WHERE k.key = p_idempotency_key AND k.expires_at <= p_now;
        INSERT INTO idempotency_keys
            (key, request_hash, status_code, response_body, location, created_at, expires_at)
            VALUES (p_idempotency_key, p_request_hash, p_response_status, p_response_body,
                    p_response_location, p_now, p_now + interval '24 hours');
    END IF;

    -- Locked, so a booking racing an erasure either waits for it or makes it wait.
    SELECT * INTO pat FROM patients p WHERE p.email = p_email FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO patients (id, name, email, phone, created_at, updated_at, erased_at)
            VALUES (p_patient_id, p_name, p_email, p_phone, p_now, p_now, NULL)
            ON CONFLICT (email) DO NOTHING;
        SELECT * INTO pat FROM patients p WHERE p.email = p_email FOR UPDATE;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'frontdesk: the patient record went away';
        END IF;
    END IF;
    -- A record created just now has no other bookings to count.
    IF pat.id <> p_patient_id THEN
        -- Class seats count toward the limit as appointments do.
        SELECT (SELECT count(*) FROM appointments a
                    WHERE a.patient_id = pat.id AND a.status = 'confirmed'
                      AND a.starts_at > p_now)
             + (SELECT count(*) FROM class_seats s
                    JOIN class_sessions c ON c.id = s.class_session_id
                    WHERE s.patient_id = pat.id AND s.status = 'confirmed'
                      AND c.starts_at > p_now)
            INTO upcoming;
        IF upcoming >= p_limit THEN
            RAISE EXCEPTION 'frontdesk: booking limit reached' USING ERRCODE = 'P0001';
        END IF;
    END IF;

    INSERT INTO consents (id, patient_id, kind, granted, at, source) VALUES
        (gen_random_uuid(), pat.id, 'privacy', true, p_now, 'online_booking'),
        (gen_random_uuid(), pat.id, 'marketing', p_marketing, p_now, 'online_booking');

    INSERT INTO appointments
        (id, reference, service_id, practitioner_id, patient_id, status, starts_at, ends_at,
         blocked_from, blocked_until, source, notes, manage_token_hash, cancel_reason,
         sequence, created_at, updated_at, series_id, series_start)
        VALUES (p_appointment_id, p_reference, p_service_id, p_practitioner_id, pat.id,
                'confirmed', p_starts_at, p_ends_at, p_blocked_from, p_blocked_until, 'online',
                p_notes, p_token_hash, NULL, 0, p_now, p_now, NULL, NULL);

    INSERT INTO appointment_events (id, appointment_id, at, kind, actor, staff_id, detail)
        VALUES (gen_random_uuid(), p_appointment_id, p_now, 'created', 'patient', NULL,
                p_event_detail);

    INSERT INTO outbox_messages
        (id, kind, to_address, to_name, reply_to, subject, text_body, html_body, ics,
         ics_method, message_id, appointment_id, status, attempts, next_attempt_at,
         lease_until, last_error, created_at, sent_at, failures)
        SELECT gen_random_uuid(), m.kind, m.to_address, m.to_name, m.reply_to, m.subject,
               m.text_body, m.html_body, m.ics, m.ics_method, m.message_id, p_appointment_id,
               'pending', 0, m.send_after, NULL, NULL, p_now, NULL, 0
        FROM jsonb_to_recordset(p_mails)
            AS m(kind text, to_address text, to_name text, reply_to text, subject text,
                 text_body text, html_body text, ics text, ics_method text, message_id text,
                 send_after timestamptz);

    INSERT INTO webhook_deliveries
        (id, endpoint_id, event_type, webhook_id, payload, status, attempts, next_attempt_at,
         created_at)
        SELECT gen_random_uuid(), e.id, p_webhook_event, p_webhook_id, p_webhook_payload,
               'pending', 0, p_now, p_now
        FROM webhook_endpoints e
        WHERE e.active AND e.events LIKE '%"' || p_webhook_event || '"%';

    RETURN NEXT pat;
END
$fn$
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager.get_connection().execute_unprepared(CREATE).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != sea_orm_migration::sea_orm::DbBackend::Postgres {
            return Ok(());
        }
        manager
            .get_connection()
            .execute_unprepared("DROP FUNCTION IF EXISTS frontdesk_book_online")
            .await?;
        Ok(())
    }
}
