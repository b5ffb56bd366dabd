//! A small SMTP server on loopback for the tests: enough of RFC 5321 for lettre (EHLO/HELO,
//! MAIL, RCPT, DATA with dot-unstuffing, RSET, NOOP, QUIT). It records every accepted
//! message with its envelope, can refuse chosen recipients with a given code, and can be
//! stopped (connections refused, open sessions dropped) and started again on the same port.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

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
    /// Starts on a free port of 127.0.0.1.
    pub async fn start() -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the test SMTP server");
        let addr = listener.local_addr().expect("local address");
        let server = SmtpServer {
            addr,
            shared: Arc::new(Shared::default()),
            running: Mutex::new(None),
        };
        server.serve(listener);
        server
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

async fn session(stream: TcpStream, shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    if shared.silent.load(Ordering::SeqCst) {
        let _ = stopped.changed().await;
        return;
    }
    let (reader, mut writer) = stream.into_split();
    let mut reader = BufReader::new(reader);
    if writer
        .write_all(b"220 localhost ESMTP frontdesk-test\r\n")
        .await
        .is_err()
    {
        return;
    }
    let mut mail_from: Option<String> = None;
    let mut rcpt_to: Vec<String> = Vec::new();
    loop {
        let mut line = Vec::new();
        let read = tokio::select! {
            read = reader.read_until(b'\n', &mut line) => read,
            _ = stopped.changed() => return,
        };
        match read {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let upper = text.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-localhost\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 ENHANCEDSTATUSCODES\r\n".into()
        } else if upper.starts_with("HELO") {
            "250 localhost\r\n".into()
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = Some(path_argument(&text[10..]));
            rcpt_to.clear();
            "250 2.1.0 OK\r\n".into()
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
                if writer
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await
                    .is_err()
                {
                    return;
                }
                let mut data = Vec::new();
                loop {
                    let mut line = Vec::new();
                    let read = tokio::select! {
                        read = reader.read_until(b'\n', &mut line) => read,
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
            let _ = writer.write_all(b"221 2.0.0 Bye\r\n").await;
            return;
        } else {
            "502 5.5.2 Command not recognised\r\n".into()
        };
        if writer.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}
