//! How delivery is going on this instance: why tries fail (counted per kind for `/metrics`)
//! and whether the mail server is currently out of reach (for `/health/ready`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Why a delivery try failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The server could not be reached (refused, unreachable, DNS).
    Connect,
    /// The server did not answer in time.
    Timeout,
    /// No usable greeting or EHLO answer.
    Greeting,
    /// STARTTLS or the TLS handshake failed (including an untrusted certificate).
    Tls,
    /// The server refused our credentials, or offers no mechanism we can use.
    Auth,
    /// An open connection broke (closed, reset, or the server said 421 and hung up).
    Connection,
    /// The server refused this message for now (a 4xx answer to MAIL, RCPT or DATA).
    Refused,
    /// The server refused this message for good (a 5xx answer to MAIL, RCPT or DATA).
    Rejected,
    /// The row cannot become a message (a bad address or header): retrying cannot help.
    Unbuildable,
    /// The `.eml` file could not be written.
    File,
}

impl FailureKind {
    /// The kinds counted by `frontdesk_smtp_failures_total`, in label order.
    pub const SMTP: [FailureKind; 8] = [
        FailureKind::Connect,
        FailureKind::Timeout,
        FailureKind::Greeting,
        FailureKind::Tls,
        FailureKind::Auth,
        FailureKind::Connection,
        FailureKind::Refused,
        FailureKind::Rejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::Connect => "connect",
            FailureKind::Timeout => "timeout",
            FailureKind::Greeting => "greeting",
            FailureKind::Tls => "tls",
            FailureKind::Auth => "auth",
            FailureKind::Connection => "connection",
            FailureKind::Refused => "refused",
            FailureKind::Rejected => "rejected",
            FailureKind::Unbuildable => "unbuildable",
            FailureKind::File => "file",
        }
    }

    /// A failure of the server or of the way to it, not of this message: the message waits
    /// (backing off) however long it lasts, and the try does not count toward
    /// `email.outbox.max_attempts`.
    pub fn is_server_level(self) -> bool {
        matches!(
            self,
            FailureKind::Connect
                | FailureKind::Timeout
                | FailureKind::Greeting
                | FailureKind::Tls
                | FailureKind::Auth
                | FailureKind::Connection
        )
    }

    /// Retrying cannot help: the message is dead at once.
    pub fn is_permanent(self) -> bool {
        matches!(self, FailureKind::Rejected | FailureKind::Unbuildable)
    }
}

/// Delivery outcomes seen by this instance.
#[derive(Default)]
pub struct DeliveryHealth {
    failing: AtomicBool,
    failures: [AtomicU64; FailureKind::SMTP.len()],
}

impl DeliveryHealth {
    /// A message went out.
    pub fn succeeded(&self) {
        self.failing.store(false, Ordering::Relaxed);
    }

    /// A try failed for `kind`. The server is `failing` from a server-level failure until
    /// the next try that reaches it (a delivery, or a refusal of one message).
    pub fn failed(&self, kind: FailureKind) {
        if let Some(i) = FailureKind::SMTP.iter().position(|k| *k == kind) {
            self.failures[i].fetch_add(1, Ordering::Relaxed);
        }
        match kind {
            k if k.is_server_level() => self.failing.store(true, Ordering::Relaxed),
            FailureKind::Refused | FailureKind::Rejected => {
                self.failing.store(false, Ordering::Relaxed)
            }
            _ => {}
        }
    }

    /// Whether this instance's last try failed for a server-level reason, with no try
    /// reaching the server since.
    pub fn is_failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }

    /// `(kind, count)` for every SMTP failure kind, zeros included.
    pub fn failure_counts(&self) -> Vec<(&'static str, u64)> {
        FailureKind::SMTP
            .iter()
            .zip(&self.failures)
            .map(|(kind, n)| (kind.as_str(), n.load(Ordering::Relaxed)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_level_failure_makes_it_failing_until_the_server_is_reached_again() {
        let health = DeliveryHealth::default();
        assert!(!health.is_failing());
        health.failed(FailureKind::Auth);
        assert!(health.is_failing());
        health.failed(FailureKind::Unbuildable);
        assert!(
            health.is_failing(),
            "a bad row says nothing about the server"
        );
        health.failed(FailureKind::Refused);
        assert!(
            !health.is_failing(),
            "a refusal is an answer from the server"
        );
        health.failed(FailureKind::Connect);
        health.succeeded();
        assert!(!health.is_failing());
        let counts = health.failure_counts();
        assert_eq!(counts.len(), 8);
        assert!(counts.contains(&("auth", 1)));
        assert!(counts.contains(&("connect", 1)));
        assert!(counts.contains(&("refused", 1)));
        assert!(counts.contains(&("timeout", 0)));
    }
}
