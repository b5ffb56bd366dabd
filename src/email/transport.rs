//! Delivering one outbox row: building the MIME message from it and handing it to SMTP
//! (`smtp::SmtpMailer`, reused connections) or to `.eml` files. Nothing here panics on bad
//! data: a row that cannot become a message is a permanent failure.

use entity::outbox_message;
use lettre::{
    Address, AsyncFileTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Attachment, Mailbox, MultiPart, header::ContentType},
};

use crate::config::{EmailSettings, EmailTransportKind};

use super::{
    health::{DeliveryHealth, FailureKind},
    render::one_line,
    smtp::SmtpMailer,
};

/// Why a delivery failed: its kind decides whether it counts and whether retrying can help.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub kind: FailureKind,
    pub message: String,
}

impl SendError {
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        Self::new(FailureKind::Unbuildable, message)
    }

    /// A 5xx answer or a row that cannot become a message: retrying will not help.
    pub fn is_permanent(&self) -> bool {
        self.kind.is_permanent()
    }
}

/// The configured way out: SMTP in production, `.eml` files for local runs.
pub enum Mailer {
    Smtp(Box<SmtpMailer>),
    File(AsyncFileTransport<Tokio1Executor>),
}

impl Mailer {
    /// Builds the transport from `email.*`; the error names the key at fault.
    pub fn from_settings(email: &EmailSettings) -> Result<Mailer, String> {
        match email.transport {
            EmailTransportKind::File => {
                // Checked even when unused, so a bad value does not wait for a switch to SMTP.
                if let Some(path) = &email.smtp.ca_file {
                    super::smtp::load_ca_file(path)?;
                }
                std::fs::create_dir_all(&email.file_dir).map_err(|e| {
                    format!(
                        "email.file_dir: cannot create {}: {e}",
                        email.file_dir.display()
                    )
                })?;
                Ok(Mailer::File(AsyncFileTransport::new(&email.file_dir)))
            }
            EmailTransportKind::Smtp => {
                SmtpMailer::new(&email.smtp).map(|m| Mailer::Smtp(Box::new(m)))
            }
        }
    }

    /// What this instance has seen of the mail server; `None` for the file transport, which
    /// has no server to be out of reach.
    pub fn health(&self) -> Option<&DeliveryHealth> {
        match self {
            Mailer::Smtp(smtp) => Some(smtp.health()),
            Mailer::File(_) => None,
        }
    }

    /// The longest one delivery may take.
    pub fn max_delivery_time(&self) -> std::time::Duration {
        match self {
            Mailer::Smtp(smtp) => smtp.max_delivery_time(),
            Mailer::File(_) => std::time::Duration::from_secs(10),
        }
    }

    /// Builds the message of `row` and sends it.
    pub async fn deliver(
        &self,
        row: &outbox_message::Model,
        email: &EmailSettings,
    ) -> Result<(), SendError> {
        let message = build_message(row, email)?;
        match self {
            Mailer::Smtp(smtp) => smtp.send(message.envelope(), &message.formatted()).await,
            Mailer::File(file) => file
                .send(message)
                .await
                .map(|_| ())
                .map_err(|e| SendError::new(FailureKind::File, e.to_string())),
        }
    }
}

/// The MIME message of an outbox row: From `email.from`, To the row's recipient, Reply-To
/// when set, the row's Message-ID, multipart/alternative text and HTML, and the iCalendar
/// invitation as `invite.ics` when there is one.
pub fn build_message(
    row: &outbox_message::Model,
    email: &EmailSettings,
) -> Result<Message, SendError> {
    // lettre panics on some malformed header input; names are validated before they are
    // stored and cleaned again below, and this keeps any case we did not foresee from
    // taking the worker down with it.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| build(row, email))).unwrap_or_else(
        |_| {
            Err(SendError::permanent(
                "the message could not be built from this row",
            ))
        },
    )
}

fn build(row: &outbox_message::Model, email: &EmailSettings) -> Result<Message, SendError> {
    let from: Mailbox = email
        .from
        .parse()
        .map_err(|_| SendError::permanent("email.from is not a mailbox"))?;
    let to_address: Address = row
        .to_address
        .trim()
        .parse()
        .map_err(|_| SendError::permanent("the recipient address is not valid"))?;
    let to = Mailbox::new(display_name(&row.to_name), to_address);
    if !is_message_id(&row.message_id) {
        return Err(SendError::permanent("the Message-ID is not valid"));
    }
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(one_line(&row.subject))
        .message_id(Some(row.message_id.clone()));
    if let Some(reply_to) = row.reply_to.as_deref().filter(|r| !r.trim().is_empty()) {
        let mailbox: Mailbox = reply_to
            .parse()
            .map_err(|_| SendError::permanent("the Reply-To address is not valid"))?;
        builder = builder.reply_to(Mailbox::new(
            mailbox.name.as_deref().and_then(display_name),
            mailbox.email,
        ));
    }
    let alternative =
        MultiPart::alternative_plain_html(row.text_body.clone(), row.html_body.clone());
    let body = match (&row.ics, row.ics_method.as_deref()) {
        (Some(ics), Some(method @ ("REQUEST" | "CANCEL"))) => {
            let content_type =
                ContentType::parse(&format!("text/calendar; method={method}; charset=UTF-8"))
                    .map_err(|e| SendError::permanent(format!("calendar content type: {e}")))?;
            MultiPart::mixed().multipart(alternative).singlepart(
                Attachment::new("invite.ics".to_string()).body(ics.clone(), content_type),
            )
        }
        (Some(_), _) => {
            return Err(SendError::permanent(
                "the calendar method must be REQUEST or CANCEL",
            ));
        }
        (None, _) => alternative,
    };
    builder
        .multipart(body)
        .map_err(|e| SendError::permanent(format!("the message could not be built: {e}")))
}

/// A display name fit for a header: control characters dropped, white space collapsed;
/// `None` when nothing is left.
pub fn display_name(name: &str) -> Option<String> {
    let clean = one_line(name);
    (!clean.is_empty()).then_some(clean)
}

/// `<local@domain>` without white space, control characters or nested brackets.
fn is_message_id(id: &str) -> bool {
    let Some(inner) = id.strip_prefix('<').and_then(|s| s.strip_suffix('>')) else {
        return false;
    };
    inner.len() <= 250
        && inner
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
        && inner
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '<' | '>' | '"' | '\\'))
}

/// An error text with the local part of every address in it masked, for logs.
pub fn redact(text: &str) -> String {
    text.split(' ')
        .map(|word| match word.split_once('@') {
            Some((local, domain)) => {
                let keep: String = local
                    .chars()
                    .take_while(|c| matches!(c, '<' | '"' | '('))
                    .collect();
                format!("{keep}…@{domain}")
            }
            None => word.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_checked() {
        assert!(is_message_id("<0b4e@example.com>"));
        for bad in [
            "0b4e@example.com",
            "<0b4e>",
            "<a b@example.com>",
            "<a@example.com>\r\nBcc: x",
            "<@example.com>",
        ] {
            assert!(!is_message_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn redaction_keeps_only_domains() {
        assert_eq!(
            redact("permanent error (550): <pat.smith@example.com> unknown user"),
            "permanent error (550): <…@example.com> unknown user"
        );
    }

    #[test]
    fn display_names_lose_line_breaks() {
        assert_eq!(
            display_name("Pat\r\nBcc: eve@example.com").as_deref(),
            Some("Pat Bcc: eve@example.com")
        );
        assert_eq!(display_name(" \r\n "), None);
    }
}
