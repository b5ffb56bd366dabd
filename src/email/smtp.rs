//! SMTP delivery over reused connections with Nagle's algorithm off.
//!
//! lettre 0.11's pooled `AsyncSmtpTransport` opens its sockets without `TCP_NODELAY`, and its
//! client writes a message body and the closing `\r\n.\r\n` as two writes: the second waits
//! for the server's delayed ACK, 40 ms per message on Linux (about 23 messages/s on one
//! connection, measured with `benches/outbox.rs`; fixed upstream in lettre PR #1159, not yet
//! released). So connections are opened here, with `TCP_NODELAY`, and handed to lettre's
//! SMTP client (`AsyncSmtpConnection`) for EHLO, STARTTLS, AUTH and the mail transaction.
//! Implicit TLS (`tls`, port 465) still connects through lettre and keeps Nagle on.
//! `email.smtp.ca_file` adds certificate authorities to the built-in (Mozilla) roots.

use std::{
    path::Path,
    time::{Duration, Instant},
};

use lettre::{
    address::Envelope,
    transport::smtp::{
        Error as SmtpError,
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, Certificate, TlsParameters},
        extension::ClientId,
    },
};
use secrecy::ExposeSecret;
use tokio::{net::TcpStream, sync::Mutex};

use crate::config::{SmtpSettings, SmtpTls};

use super::{
    health::{DeliveryHealth, FailureKind},
    transport::SendError,
};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 4;
/// A connection idle for longer than this is checked with NOOP before it is reused.
const CHECK_AFTER: Duration = Duration::from_secs(2);
/// A connection idle for longer than this is closed rather than reused.
const MAX_IDLE_TIME: Duration = Duration::from_secs(60);

/// Sends messages to one SMTP server, reusing connections between messages.
pub struct SmtpMailer {
    host: String,
    port: u16,
    tls: Option<(SmtpTls, TlsParameters)>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
    health: DeliveryHealth,
}

/// Reads `email.smtp.ca_file`: PEM certificate authorities, at least one, each one usable as
/// a trust root. The error names the key.
pub fn load_ca_file(path: &Path) -> Result<Certificate, String> {
    let key = "email.smtp.ca_file";
    let pem =
        std::fs::read(path).map_err(|e| format!("{key}: cannot read {}: {e}", path.display()))?;
    let count = String::from_utf8_lossy(&pem)
        .matches("-----BEGIN CERTIFICATE-----")
        .count();
    if count == 0 {
        return Err(format!(
            "{key}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    let certificate = Certificate::from_pem(&pem)
        .map_err(|e| format!("{key}: {} is not valid PEM: {e}", path.display()))?;
    // Building parameters parses every certificate as a trust anchor.
    TlsParameters::builder("localhost".to_string())
        .add_root_certificate(certificate.clone())
        .build()
        .map_err(|e| {
            format!(
                "{key}: {} holds an unusable certificate: {e}",
                path.display()
            )
        })?;
    Ok(certificate)
}

impl SmtpMailer {
    /// Checks the settings; the error names the key at fault.
    pub fn new(smtp: &SmtpSettings) -> Result<SmtpMailer, String> {
        let host = smtp.host.trim().to_string();
        if host.is_empty() {
            return Err("email.smtp.host: must not be empty with email.transport = smtp".into());
        }
        let extra_roots = smtp.ca_file.as_deref().map(load_ca_file).transpose()?;
        let tls = match smtp.tls {
            SmtpTls::None => None,
            mode => {
                let mut builder = TlsParameters::builder(host.clone());
                if let Some(roots) = extra_roots {
                    builder = builder.add_root_certificate(roots);
                }
                Some((
                    mode,
                    builder
                        .build()
                        .map_err(|e| format!("email.smtp.host: {e}"))?,
                ))
            }
        };
        let credentials = smtp
            .username
            .as_deref()
            .filter(|u| !u.is_empty())
            .map(|user| {
                let password = smtp
                    .password
                    .as_ref()
                    .map(|p| p.expose_secret().to_string())
                    .unwrap_or_default();
                Credentials::new(user.to_string(), password)
            });
        Ok(SmtpMailer {
            host,
            port: smtp.port,
            tls,
            credentials,
            timeout: Duration::from_secs(smtp.timeout_seconds.max(1)),
            hello: ClientId::default(),
            idle: Mutex::new(Vec::new()),
            health: DeliveryHealth::default(),
        })
    }

    /// What this mailer has seen of its server.
    pub fn health(&self) -> &DeliveryHealth {
        &self.health
    }

    /// The longest one delivery may take: connecting, EHLO, STARTTLS, AUTH and the mail
    /// transaction, each within `email.smtp.timeout_seconds`.
    pub fn max_delivery_time(&self) -> Duration {
        self.timeout * 6
    }

    /// Sends one message. The error's kind says whose fault it was: a 4xx or 5xx answer to
    /// the mail transaction is about this message (`Refused`, `Rejected`); failing to
    /// connect, greet, encrypt or authenticate, a timeout, or a connection that breaks is
    /// about the server (the message waits, however long that lasts).
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let result = match tokio::time::timeout(
            self.max_delivery_time(),
            self.send_inner(envelope, message),
        )
        .await
        {
            Ok(result) => result,
            Err(_) => Err(SendError::new(
                FailureKind::Timeout,
                format!(
                    "no answer from {}:{} within {} s",
                    self.host,
                    self.port,
                    self.max_delivery_time().as_secs()
                ),
            )),
        };
        match &result {
            Ok(()) => self.health.succeeded(),
            Err(e) => self.health.failed(e.kind),
        }
        result
    }

    async fn send_inner(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        if let Some(mut conn) = self.reuse().await {
            match conn.send(envelope, message).await {
                Ok(_) => {
                    self.keep(conn).await;
                    return Ok(());
                }
                Err(e) => {
                    let kind = transaction_failure(&e);
                    if kind != FailureKind::Connection {
                        return Err(SendError::new(kind, e.to_string()));
                    }
                    // The reused connection had broken (the server restarted or dropped it
                    // while idle): that says nothing about this message. Try once more on a
                    // fresh connection, as part of the same attempt.
                    self.health.failed(kind);
                    tracing::debug!(error = %e, "a reused SMTP connection had broken");
                }
            }
        }
        let mut conn = self.connect().await?;
        match conn.send(envelope, message).await {
            Ok(_) => {
                self.keep(conn).await;
                Ok(())
            }
            // lettre closes the connection on any error, so it is not put back.
            Err(e) => Err(SendError::new(transaction_failure(&e), e.to_string())),
        }
    }

    /// Puts a connection that just worked back for reuse.
    async fn keep(&self, mut conn: AsyncSmtpConnection) {
        let mut idle = self.idle.lock().await;
        if idle.len() < MAX_IDLE {
            idle.push((conn, Instant::now()));
        } else {
            drop(idle);
            let _ = conn.quit().await;
        }
    }

    /// An idle connection that still answers, if there is one.
    async fn reuse(&self) -> Option<AsyncSmtpConnection> {
        loop {
            let (mut conn, since) = self.idle.lock().await.pop()?;
            let idle_for = since.elapsed();
            if idle_for > MAX_IDLE_TIME {
                conn.abort().await;
                continue;
            }
            if idle_for <= CHECK_AFTER || conn.test_connected().await {
                return Some(conn);
            }
            conn.abort().await;
        }
    }

    /// Opens, greets, encrypts and authenticates a new connection.
    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let place = format!("{}:{}", self.host, self.port);
        let fail = |kind: FailureKind, step: &str, e: &dyn std::fmt::Display| {
            SendError::new(kind, format!("{step} {place}: {e}"))
        };
        let timed_out = |step: &str| {
            SendError::new(
                FailureKind::Timeout,
                format!(
                    "no answer from {place} within {} s ({step})",
                    self.timeout.as_secs()
                ),
            )
        };
        let mut conn = match &self.tls {
            Some((SmtpTls::Tls, parameters)) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                Some(parameters.clone()),
                None,
            )
            .await
            .map_err(|e| {
                let kind = implicit_tls_failure(&e);
                let step = match kind {
                    FailureKind::Tls => "TLS handshake failed with",
                    FailureKind::Greeting => "no SMTP greeting from",
                    _ => "cannot connect to",
                };
                fail(kind, step, &e)
            })?,
            _ => {
                let tcp = tokio::time::timeout(
                    self.timeout,
                    TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| timed_out("connecting"))?
                .map_err(|e| fail(FailureKind::Connect, "cannot connect to", &e))?;
                tcp.set_nodelay(true)
                    .map_err(|e| fail(FailureKind::Connect, "cannot set TCP_NODELAY on", &e))?;
                tokio::time::timeout(
                    self.timeout,
                    AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello),
                )
                .await
                .map_err(|_| timed_out("greeting"))?
                .map_err(|e| fail(FailureKind::Greeting, "no SMTP greeting from", &e))?
            }
        };
        if let Some((SmtpTls::Starttls, parameters)) = &self.tls {
            tokio::time::timeout(self.timeout, conn.starttls(parameters.clone(), &self.hello))
                .await
                .map_err(|_| timed_out("STARTTLS"))?
                .map_err(|e| fail(FailureKind::Tls, "STARTTLS failed with", &e))?;
        }
        if let Some(credentials) = &self.credentials {
            tokio::time::timeout(
                self.timeout,
                conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials),
            )
            .await
            .map_err(|_| timed_out("authentication"))?
            .map_err(|e| fail(FailureKind::Auth, "authentication failed at", &e))?;
        }
        Ok(conn)
    }
}

/// Whose fault a failed mail transaction (MAIL, RCPT, DATA and the message) was.
fn transaction_failure(e: &SmtpError) -> FailureKind {
    match e.status() {
        // 421: the service is closing the channel; nothing was said about this message.
        Some(code) if code.to_string() == "421" => FailureKind::Connection,
        Some(_) if e.is_permanent() => FailureKind::Rejected,
        Some(_) => FailureKind::Refused,
        // The message needs an extension this server lacks (SMTPUTF8, 8BITMIME).
        None if e.is_client() => FailureKind::Refused,
        None if e.is_timeout() => FailureKind::Timeout,
        // Reset, closed, or an answer cut short.
        None => FailureKind::Connection,
    }
}

/// Which step of an implicit-TLS connection failed, from the I/O error underneath.
fn implicit_tls_failure(e: &SmtpError) -> FailureKind {
    if e.status().is_some() || e.is_response() {
        return FailureKind::Greeting;
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        if let Some(io) = inner.downcast_ref::<std::io::Error>() {
            return match io.kind() {
                std::io::ErrorKind::TimedOut => FailureKind::Timeout,
                // How tokio-rustls reports a failed handshake (a rustls error inside).
                std::io::ErrorKind::InvalidData => FailureKind::Tls,
                _ => FailureKind::Connect,
            };
        }
        source = inner.source();
    }
    if e.is_tls() {
        FailureKind::Tls
    } else {
        FailureKind::Connect
    }
}
