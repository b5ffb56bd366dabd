//! SMTP delivery over reused connections with Nagle's algorithm off.
//!
//! lettre 0.11's pooled `AsyncSmtpTransport` opens its sockets without `TCP_NODELAY`, and its
//! client writes a message body and the closing `\r\n.\r\n` as two writes: the second waits
//! for the server's delayed ACK, 40 ms per message on Linux (about 23 messages/s on one
//! connection, measured with `benches/outbox.rs`; fixed upstream in lettre PR #1159, not yet
//! released). So connections are opened here, with `TCP_NODELAY`, and handed to lettre's
//! SMTP client (`AsyncSmtpConnection`) for EHLO, STARTTLS, AUTH and the mail transaction.
//! Implicit TLS (`tls`, port 465) still connects through lettre and keeps Nagle on.

use std::time::{Duration, Instant};

use lettre::{
    address::Envelope,
    transport::smtp::{
        Error as SmtpError,
        authentication::{Credentials, Mechanism},
        client::{AsyncSmtpConnection, TlsParameters},
        extension::ClientId,
    },
};
use secrecy::ExposeSecret;
use tokio::{net::TcpStream, sync::Mutex};

use crate::config::{SmtpSettings, SmtpTls};

use super::transport::SendError;

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
}

impl SmtpMailer {
    /// Checks the settings; the error names the key at fault.
    pub fn new(smtp: &SmtpSettings) -> Result<SmtpMailer, String> {
        let host = smtp.host.trim().to_string();
        if host.is_empty() {
            return Err("email.smtp.host: must not be empty with email.transport = smtp".into());
        }
        let tls = match smtp.tls {
            SmtpTls::None => None,
            mode => Some((
                mode,
                TlsParameters::new(host.clone()).map_err(|e| format!("email.smtp.host: {e}"))?,
            )),
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
        })
    }

    /// The longest one delivery may take: connecting, EHLO, STARTTLS, AUTH and the mail
    /// transaction, each within `email.smtp.timeout_seconds`.
    pub fn max_delivery_time(&self) -> Duration {
        self.timeout * 6
    }

    /// Sends one message. A 5xx answer to the mail transaction is permanent; failing to
    /// connect, greet, encrypt or authenticate is not (the server or our configuration may
    /// be fixed), nor is a timeout.
    pub async fn send(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        match tokio::time::timeout(self.max_delivery_time(), self.send_inner(envelope, message))
            .await
        {
            Ok(result) => result,
            Err(_) => Err(SendError {
                permanent: false,
                message: format!(
                    "no answer from {}:{} within {} s",
                    self.host,
                    self.port,
                    self.max_delivery_time().as_secs()
                ),
            }),
        }
    }

    async fn send_inner(&self, envelope: &Envelope, message: &[u8]) -> Result<(), SendError> {
        let mut conn = match self.reuse().await {
            Some(conn) => conn,
            None => self.connect().await.map_err(|message| SendError {
                permanent: false,
                message,
            })?,
        };
        match conn.send(envelope, message).await {
            Ok(_) => {
                let mut idle = self.idle.lock().await;
                if idle.len() < MAX_IDLE {
                    idle.push((conn, Instant::now()));
                } else {
                    drop(idle);
                    let _ = conn.quit().await;
                }
                Ok(())
            }
            // lettre closes the connection on any error, so it is not put back.
            Err(e) => Err(SendError {
                permanent: e.is_permanent(),
                message: e.to_string(),
            }),
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
    async fn connect(&self) -> Result<AsyncSmtpConnection, String> {
        let place = format!("{}:{}", self.host, self.port);
        let describe = |step: &str, e: SmtpError| format!("{step} {place}: {e}");
        let mut conn = match &self.tls {
            Some((SmtpTls::Tls, parameters)) => AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &self.hello,
                Some(parameters.clone()),
                None,
            )
            .await
            .map_err(|e| describe("cannot connect to", e))?,
            _ => {
                let tcp = tokio::time::timeout(
                    self.timeout,
                    TcpStream::connect((self.host.as_str(), self.port)),
                )
                .await
                .map_err(|_| format!("cannot connect to {place}: timed out"))?
                .map_err(|e| format!("cannot connect to {place}: {e}"))?;
                tcp.set_nodelay(true)
                    .map_err(|e| format!("cannot set TCP_NODELAY on {place}: {e}"))?;
                AsyncSmtpConnection::connect_with_transport(Box::new(tcp), &self.hello)
                    .await
                    .map_err(|e| describe("no SMTP greeting from", e))?
            }
        };
        if let Some((SmtpTls::Starttls, parameters)) = &self.tls {
            conn.starttls(parameters.clone(), &self.hello)
                .await
                .map_err(|e| describe("STARTTLS failed with", e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(&[Mechanism::Plain, Mechanism::Login], credentials)
                .await
                .map_err(|e| describe("authentication failed at", e))?;
        }
        Ok(conn)
    }
}
