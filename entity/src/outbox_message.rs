//! One outgoing email, rendered and waiting in the outbox (or sent, dead or void).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_messages")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub kind: String,
    pub to_address: String,
    pub to_name: String,
    pub reply_to: Option<String>,
    pub subject: String,
    #[sea_orm(column_type = "Text")]
    pub text_body: String,
    #[sea_orm(column_type = "Text")]
    pub html_body: String,
    #[sea_orm(column_type = "Text", nullable)]
    pub ics: Option<String>,
    /// `REQUEST` or `CANCEL` when `ics` is set.
    pub ics_method: Option<String>,
    /// `<uuid@domain>`: the same on every attempt, so a resend after a crash is recognisable.
    #[sea_orm(unique)]
    pub message_id: String,
    pub appointment_id: Option<Uuid>,
    /// pending | sent | dead | void
    pub status: String,
    /// Tries the mail server refused (a 4xx or 5xx answer to MAIL, RCPT or DATA), plus
    /// claims that ended without any recorded outcome (a worker died): these count toward
    /// `email.outbox.max_attempts`. Failing to reach, encrypt to or log in to the server
    /// does not.
    pub attempts: i32,
    /// When the row is next due; for a reminder, the earliest time it may be sent.
    pub next_attempt_at: DateTimeUtc,
    /// A worker holds the row until then; once it has passed, the row may be claimed again.
    pub lease_until: Option<DateTimeUtc>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// Failed tries in a row, whatever the cause: the backoff grows with them.
    pub failures: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
