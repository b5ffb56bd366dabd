//! A small SMTP server on loopback for the tests: enough of RFC 5321 for lettre (EHLO/HELO,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT), and optionally STARTTLS (RFC 3207)
//! or implicit TLS with a certificate made for the test (`TestCa`), and AUTH PLAIN
//! (RFC 4954) demanded before MAIL. It records every accepted message with its envelope, can
//! refuse chosen recipients with a given code, hang up mid-transaction, and be stopped
//! (connections refused, open sessions dropped) and started again on the same port.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use base64::Engine;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::ring::default_provider,
        pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};

/// A certificate authority made for one test, and a server certificate it signed for
/// `localhost` and `127.0.0.1`.
pub struct TestCa {
    /// The authority's certificate, PEM: what `email.smtp.ca_file` names.
    pub ca_pem: String,
    acceptor: TlsAcceptor,
}

impl TestCa {
    pub fn generate() -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Frontdesk test relay CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("CA key"))
            .expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let mut params = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
            .expect("server params");
        params
            .distinguished_name
            .push(DnType::CommonName, "smtp.relay.test");
        let cert = params.signed_by(&key, &ca).expect("server certificate");
        let config = ServerConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .expect("protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("server TLS config");
        TestCa {
            ca_pem: ca.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }

    /// Writes the authority's certificate into `dir`; returns the file's path.
    pub fn write_ca(&self, dir: &Path) -> PathBuf {
        let path = dir.join("relay-ca.pem");
        std::fs::write(&path, &self.ca_pem).expect("write the CA file");
        path
    }
}

/// How a server protects its sessions.
#[derive(Clone)]
pub enum Security {
    Plain,
    /// Plain at first; STARTTLS is offered and required before AUTH and MAIL.
    Starttls(TlsAcceptor),
    /// TLS from the first byte (port 465 style).
    ImplicitTls(TlsAcceptor),
}

impl TestCa {
    pub fn starttls(&self) -> Security {
        Security::Starttls(self.acceptor.clone())
    }

    pub fn implicit_tls(&self) -> Security {
        Security::ImplicitTls(self.acceptor.clone())
    }
}

/// A byte stream a session runs over: TCP, or TLS over TCP.
trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as sent after DATA, dot-unstuffed, CRLF line endings.
    pub data: String,
    /// When the final dot arrived (read by `benches/outbox.rs`, which includes this file).
    #[allow(dead_code)]
    pub at: std::time::Instant,
    /// Whether the session was encrypted when the message was sent.
    pub encrypted: bool,
    /// The user the session had logged in as, if any.
    pub user: Option<String>,
}

impl Received {
    /// The message parsed as MIME.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default()
            .parse(self.data.as_bytes())
            .expect("the message parses as MIME")
    }

    /// The raw value of the first header called `name` (unfolded, trimmed).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
        unfolded.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_string())
        })
    }
}

#[derive(Default)]
struct Shared {
    messages: Mutex<Vec<Received>>,
    /// Recipient address (lower-case) → the code to refuse it with (550, 451…).
    refuse: Mutex<HashMap<String, u16>>,
    connections: AtomicUsize,
    /// Accept connections but never answer (a hung server).
    silent: std::sync::atomic::AtomicBool,
    /// Sessions to cut when the client says DATA (a connection lost mid-transaction).
    hang_ups: AtomicUsize,
    security: Option<Security>,
    /// The one user and password AUTH accepts; MAIL needs a login when set.
    login: Option<(String, String)>,
}

struct Running {
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
}

pub struct SmtpServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

impl SmtpServer {
    /// Starts on a free port of 127.0.0.1, plain and without AUTH.
    pub async fn start() -> SmtpServer {
        Self::start_with(Security::Plain, None).await
    }

    /// Starts on a free port of 127.0.0.1 with `security`, demanding a login as `login`
    /// (user, password) before MAIL when given.
    pub async fn start_with(security: Security, login: Option<(&str, &str)>) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP server");
        let addr = listener.local_addr().expect("local address");
        let shared = Shared {
            security: Some(security),
            login: login.map(|(u, p)| (u.to_string(), p.to_string())),
            ..Shared::default()
        };
        let server = SmtpServer {
            addr,
            shared: Arc::new(shared),
            running: Mutex::new(None),
        };
        server.serve(listener);
        server
    }

    /// Cuts the next `n` sessions that reach DATA, without an answer.
    pub fn hang_up_at_data(&self, n: usize) {
        self.shared.hang_ups.store(n, Ordering::SeqCst);
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Everything accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        self.shared.messages.lock().expect("lock").clone()
    }

    /// Forgets the messages received so far.
    pub fn clear(&self) {
        self.shared.messages.lock().expect("lock").clear();
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Answers `RCPT TO:<address>` with `code` (e.g. 550 permanent, 451 temporary).
    pub fn refuse_recipient(&self, address: &str, code: u16) {
        self.shared
            .refuse
            .lock()
            .expect("lock")
            .insert(address.to_lowercase(), code);
    }

    /// Makes new sessions hang after the TCP handshake, without a greeting.
    pub fn go_silent(&self) {
        self.shared.silent.store(true, Ordering::SeqCst);
    }

    /// Accepts every recipient again.
    pub fn accept_all(&self) {
        self.shared.refuse.lock().expect("lock").clear();
    }

    /// Closes the listening socket and every open session: the server is "down".
    pub async fn stop(&self) {
        let running = self.running.lock().expect("lock").take();
        if let Some(running) = running {
            let _ = running.stop.send(true);
            let _ = running.accept.await;
        }
    }

    /// Listens on the same port again.
    pub async fn resume(&self) {
        let listener = TcpListener::bind(self.addr)
            .await
            .expect("bind the test SMTP server again on its port");
        self.serve(listener);
    }

    fn serve(&self, listener: TcpListener) {
        let (stop, mut stopped) = watch::channel(false);
        let shared = self.shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((stream, _)) = accepted else { continue };
                        shared.connections.fetch_add(1, Ordering::SeqCst);
                        let shared = shared.clone();
                        let stopped = stopped.clone();
                        tokio::spawn(session(stream, shared, stopped));
                    }
                    _ = stopped.changed() => break,
                }
            }
        });
        *self.running.lock().expect("lock") = Some(Running { stop, accept });
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(running) = self.running.get_mut().ok().and_then(Option::take) {
            let _ = running.stop.send(true);
            running.accept.abort();
        }
    }
}

/// Extracts the address from `FROM:<a@b> SIZE=…` or `TO:<a@b>`.
fn path_argument(rest: &str) -> String {
    let rest = rest.trim();
    match (rest.find('<'), rest.find('>')) {
        (Some(open), Some(close)) if close > open => rest[open + 1..close].to_string(),
        _ => rest.split_whitespace().next().unwrap_or("").to_string(),
    }
}

async fn session(tcp: TcpStream, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    if shared.silent.load(Ordering::SeqCst) {
        let _ = stopped.changed().await;
        return;
    }
    let security = shared.security.clone().unwrap_or(Security::Plain);
    let mut encrypted = false;
    let stream: Box<dyn Stream> = match &security {
        Security::ImplicitTls(acceptor) => {
            let accepted = tokio::select! {
                accepted = acceptor.accept(tcp) => accepted,
                _ = stopped.changed() => return,
            };
            match accepted {
                Ok(tls) => {
                    encrypted = true;
                    Box::new(tls)
                }
                // The client did not trust us, or spoke no TLS: nothing more to say.
                Err(_) => return,
            }
        }
        _ => Box::new(tcp),
    };
    let mut conn = BufReader::new(stream);
    if reply(&mut conn, "220 localhost ESMTP frontdesk-test\r\n")
        .await
        .is_err()
    {
        return;
    }
    let starttls = matches!(security, Security::Starttls(_));
    let mut user: Option<String> = None;
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    loop {
        let Some(text) = read_line(&mut conn, &mut stopped).await else {
            return;
        };
        let upper = text.to_ascii_uppercase();
        let must_encrypt = starttls && !encrypted;
        let answer: String = if upper.starts_with("EHLO") {
            let mut lines = vec!["localhost", "8BITMIME", "SMTPUTF8"];
            if must_encrypt {
                lines.push("STARTTLS");
            } else if shared.login.is_some() {
                lines.push("AUTH PLAIN");
            }
            lines.push("ENHANCEDSTATUSCODES");
            let last = lines.len() - 1;
            lines
                .iter()
                .enumerate()
                .map(|(i, l)| format!("250{}{l}\r\n", if i == last { ' ' } else { '-' }))
                .collect()
        } else if upper.starts_with("HELO") {
            "250 localhost\r\n".into()
        } else if upper == "STARTTLS" {
            match (&security, encrypted) {
                (Security::Starttls(acceptor), false) => {
                    if reply(&mut conn, "220 2.0.0 Ready to start TLS\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    let plain = conn.into_inner();
                    let accepted = tokio::select! {
                        accepted = acceptor.accept(plain) => accepted,
                        _ = stopped.changed() => return,
                    };
                    let Ok(tls) = accepted else { return };
                    conn = BufReader::new(Box::new(tls));
                    encrypted = true;
                    // RFC 3207 §4.2: the client starts over, with EHLO.
                    user = None;
                    mail_from = None;
                    rcpt_to.clear();
                    continue;
                }
                _ => "503 5.5.1 TLS already active or not offered\r\n".into(),
            }
        } else if upper.starts_with("AUTH") {
            match &shared.login {
                None => "502 5.5.2 AUTH not offered\r\n".into(),
                Some(_) if must_encrypt => {
                    "530 5.7.0 Must issue a STARTTLS command first\r\n".into()
                }
                Some(_) if user.is_some() => "503 5.5.1 Already authenticated\r\n".into(),
                Some((expected_user, expected_password)) => {
                    let mut words = text.split_whitespace().skip(1);
                    let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
                    let initial = words.next().map(str::to_string);
                    if mechanism != "PLAIN" {
                        "504 5.5.4 Unrecognised authentication type\r\n".into()
                    } else {
                        let response = match initial {
                            Some(r) => r,
                            None => {
                                if reply(&mut conn, "334 \r\n").await.is_err() {
                                    return;
                                }
                                match read_line(&mut conn, &mut stopped).await {
                                    Some(r) => r,
                                    None => return,
                                }
                            }
                        };
                        let decoded = base64::engine::general_purpose::STANDARD
                            .decode(response.trim())
                            .unwrap_or_default();
                        let parts: Vec<_> = decoded.split(|b| *b == 0).collect();
                        match parts.as_slice() {
                            [_, u, p]
                                if *u == expected_user.as_bytes()
                                    && *p == expected_password.as_bytes() =>
                            {
                                user = Some(expected_user.clone());
                                "235 2.7.0 Authentication successful\r\n".into()
                            }
                            _ => "535 5.7.8 Authentication credentials invalid\r\n".into(),
                        }
                    }
                }
            }
        } else if upper.starts_with("MAIL FROM:") {
            if must_encrypt {
                "530 5.7.0 Must issue a STARTTLS command first\r\n".into()
            } else if shared.login.is_some() && user.is_none() {
                "530 5.7.0 Authentication required\r\n".into()
            } else {
                mail_from = Some(path_argument(&text[10..]));
                rcpt_to.clear();
                "250 2.1.0 OK\r\n".into()
            }
        } else if upper.starts_with("RCPT TO:") {
            let address = path_argument(&text[8..]);
            let refused = shared
                .refuse
                .lock()
                .expect("lock")
                .get(&address.to_lowercase())
                .copied();
            match (mail_from.is_some(), refused) {
                (false, _) => "503 5.5.1 MAIL first\r\n".into(),
                (true, Some(code)) if code >= 500 => {
                    format!("{code} 5.1.1 <{address}>: mailbox unavailable\r\n")
                }
                (true, Some(code)) => format!("{code} 4.2.0 <{address}>: try again later\r\n"),
                (true, None) => {
                    rcpt_to.push(address);
                    "250 2.1.5 OK\r\n".into()
                }
            }
        } else if upper == "DATA" {
            if mail_from.is_none() || rcpt_to.is_empty() {
                "503 5.5.1 RCPT first\r\n".into()
            } else {
                let cut = shared
                    .hang_ups
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok();
                if cut {
                    return;
                }
                if reply(&mut conn, "354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = Vec::new();
                loop {
                    let mut line = Vec::new();
                    let read = tokio::select! {
                        read = conn.read_until(b'\n', &mut line) => read,
                        _ = stopped.changed() => return,
                    };
                    match read {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == b".\r\n" || line == b".\n" {
                        break;
                    }
                    // Dot-unstuffing (RFC 5321 §4.5.2).
                    let line = if line.starts_with(b"..") {
                        &line[1..]
                    } else {
                        &line[..]
                    };
                    data.extend_from_slice(line);
                }
                shared.messages.lock().expect("lock").push(Received {
                    mail_from: mail_from.take().unwrap_or_default(),
                    rcpt_to: std::mem::take(&mut rcpt_to),
                    data: String::from_utf8_lossy(&data).into_owned(),
                    at: std::time::Instant::now(),
                    encrypted,
                    user: user.clone(),
                });
                "250 2.0.0 OK queued\r\n".into()
            }
        } else if upper == "RSET" {
            mail_from = None;
            rcpt_to.clear();
            "250 2.0.0 OK\r\n".into()
        } else if upper.starts_with("NOOP") {
            "250 2.0.0 OK\r\n".into()
        } else if upper == "QUIT" {
            let _ = reply(&mut conn, "221 2.0.0 Bye\r\n").await;
            return;
        } else {
            "502 5.5.2 Command not recognised\r\n".into()
        };
        if reply(&mut conn, &answer).await.is_err() {
            return;
        }
    }
}

/// Writes and flushes one reply (TLS holds writes until a flush).
async fn reply(conn: &mut BufReader<Box<dyn Stream>>, text: &str) -> std::io::Result<()> {
    let stream = conn.get_mut();
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}

/// The next command line without its line ending; `None` when the session is over.
async fn read_line(
    conn: &mut BufReader<Box<dyn Stream>>,
    stopped: &mut watch::Receiver<bool>,
) -> Option<String> {
    let mut line = Vec::new();
    let read = tokio::select! {
        read = conn.read_until(b'\n', &mut line) => read,
        _ = stopped.changed() => return None,
    };
    match read {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(
            String::from_utf8_lossy(&line)
                .trim_end_matches(['\r', '\n'])
                .to_string(),
        ),
    }
}
