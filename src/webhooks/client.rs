//! One delivery attempt: resolve the target, keep only permitted addresses, connect to one of
//! them (TLS with the bundled web roots for `https://`), POST the body over HTTP/1.1 and read
//! the response head. Redirects are not followed: a 3xx is an answer like any other non-2xx.

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName},
};

use super::target::{self, Target};

/// The headers and body of one attempt.
pub struct Outgoing<'a> {
    pub webhook_id: &'a str,
    pub timestamp: i64,
    pub signature: &'a str,
    pub body: &'a str,
}

/// How an attempt ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The response status, when one arrived.
    pub status: Option<u16>,
    /// What went wrong, when no response arrived.
    pub error: Option<String>,
    pub duration: Duration,
}

/// Posts `msg` to `url`, within `timeout` from the first connect to the response head.
pub async fn post(
    url: &str,
    msg: &Outgoing<'_>,
    timeout: Duration,
    allow_private: bool,
) -> Outcome {
    let started = Instant::now();
    let result = tokio::time::timeout(timeout, attempt(url, msg, allow_private)).await;
    let duration = started.elapsed();
    match result {
        Ok(Ok(status)) => Outcome {
            status: Some(status),
            error: None,
            duration,
        },
        Ok(Err(error)) => Outcome {
            status: None,
            error: Some(error),
            duration,
        },
        Err(_) => Outcome {
            status: None,
            error: Some(format!("no answer within {} s", timeout.as_secs())),
            duration,
        },
    }
}

async fn attempt(url: &str, msg: &Outgoing<'_>, allow_private: bool) -> Result<u16, String> {
    let target = target::parse(url, allow_private).map_err(|e| e.to_string())?;
    let addrs = target::resolve(&target, allow_private).await?;
    let mut last_error = String::from("no address");
    for addr in addrs {
        let stream = match TcpStream::connect(addr).await {
            Ok(s) => s,
            Err(e) => {
                last_error = format!("cannot connect to {addr}: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        return if target.https {
            let name = ServerName::try_from(target.host.clone())
                .map_err(|_| format!("{} is not a valid TLS server name", target.host))?;
            let tls = TlsConnector::from(tls_config()?)
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS with {}: {e}", target.host))?;
            send(tls, &target, msg).await
        } else {
            send(stream, &target, msg).await
        };
    }
    Err(last_error)
}

async fn send<S>(io: S, target: &Target, msg: &Outgoing<'_>) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    // Drives the connection; it ends when the request is answered and `sender` is dropped.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let default_port = if target.https { 443 } else { 80 };
    let host = match (target.host.contains(':'), target.port == default_port) {
        (true, true) => format!("[{}]", target.host),
        (true, false) => format!("[{}]:{}", target.host, target.port),
        (false, true) => target.host.clone(),
        (false, false) => format!("{}:{}", target.host, target.port),
    };
    let request = Request::post(target.path.as_str())
        .header(header::HOST, host)
        .header(header::CONTENT_TYPE, "application/json")
        .header(
            header::USER_AGENT,
            concat!("Frontdesk-Webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", msg.webhook_id)
        .header("webhook-timestamp", msg.timestamp.to_string())
        .header("webhook-signature", msg.signature)
        .body(Full::new(Bytes::copy_from_slice(msg.body.as_bytes())))
        .map_err(|e| format!("building the request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    Ok(response.status().as_u16())
}

/// One TLS configuration for the process: the web PKI roots, ring, TLS 1.2 and 1.3.
fn tls_config() -> Result<Arc<ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| format!("TLS configuration: {e}"))
        })
        .clone()
}
