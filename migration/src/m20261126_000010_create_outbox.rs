//! The email outbox: every email is written here in the same transaction as the change that
//! causes it, and a worker sends it later. A row is also how a reminder waits for its time.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("outbox_messages")
                    .col(pk_uuid("id"))
                    // booking_confirmed | booking_rescheduled | booking_cancelled |
                    // practitioner_notice | staff_notice | reminder | enquiry_received | enquiry_ack
                    .col(string("kind"))
                    .col(string("to_address"))
                    .col(string("to_name"))
                    .col(string_null("reply_to"))
                    .col(string("subject"))
                    .col(text("text_body"))
                    .col(text("html_body"))
                    .col(text_null("ics"))
                    // REQUEST | CANCEL
                    .col(string_null("ics_method"))
                    .col(string_uniq("message_id"))
                    .col(uuid_null("appointment_id"))
                    // pending | sent | dead | void
                    .col(string("status"))
                    .col(integer("attempts"))
                    // when the row is next due; for a reminder, when it may first be sent
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    // a worker holds the row until then; an expired lease makes it claimable
                    .col(timestamp_with_time_zone_null("lease_until"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_messages_due")
                    .table("outbox_messages")
                    .col("status")
                    .col("next_attempt_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_messages_appointment")
                    .table("outbox_messages")
                    .col("appointment_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_messages_created")
                    .table("outbox_messages")
                    .col("created_at")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("outbox_messages").to_owned())
            .await
    }
}
