//! The test harness: `spawn_app()` builds the real service from `config/test.toml` on port 0
//! with a fresh database — a SQLite file in a temp dir, or, when
//! `FRONTDESK_TEST_POSTGRES_URL` is set, a new PostgreSQL database that is dropped afterwards.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use frontdesk::{
    config::{EmailTransportKind, Settings, SmtpTls},
    startup::Application,
    state::AppState,
};
use reqwest::{Method, StatusCode};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};

pub const ADMIN_EMAIL: &str = "admin@clinic.test";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

pub fn config_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// Test settings, before the per-test database is filled in.
pub fn test_settings() -> Settings {
    Settings::load_for(&config_dir(), "test").expect("config/test.toml loads")
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub db: sea_orm::DatabaseConnection,
    pub settings: Settings,
    /// The running service's state, for driving the outbox worker by hand.
    pub state: Arc<AppState>,
    /// Holds the SQLite database (when not on PostgreSQL) and the `.eml` folder.
    _temp_dir: tempfile::TempDir,
    postgres: Option<PostgresDb>,
}

/// A throwaway PostgreSQL database, dropped (with its connections) when the test ends.
struct PostgresDb {
    admin_url: String,
    name: String,
}

impl Drop for PostgresDb {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a separate thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime for cleanup");
            rt.block_on(async {
                if let Ok(db) = Database::connect(&admin_url).await {
                    let _ = db
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Whether the database-backed tests run against PostgreSQL in this run.
pub fn postgres_url() -> Option<String> {
    std::env::var("FRONTDESK_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Spawns the app after letting the test adjust its settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings();
    let temp_dir = tempfile::tempdir().expect("temp dir");
    settings.email.file_dir = temp_dir.path().join("mail");
    let mut postgres = None;
    match postgres_url() {
        Some(admin_url) => {
            let name = format!("frontdesk_test_{}", uuid::Uuid::new_v4().simple());
            let admin = Database::connect(&admin_url)
                .await
                .expect("connect to FRONTDESK_TEST_POSTGRES_URL");
            admin
                .execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            admin.close().await.ok();
            let mut url = url::Url::parse(&admin_url).expect("postgres url");
            url.set_path(&name);
            settings.database.url = url.to_string();
            postgres = Some(PostgresDb { admin_url, name });
        }
        None => {
            settings.database.url = format!(
                "sqlite://{}?mode=rwc",
                temp_dir.path().join("frontdesk.db").display()
            );
        }
    }
    adjust(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let db = app.state.db.clone();
    let state = app.state.clone();
    tokio::spawn(app.run_until(std::future::pending()));
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client"),
        db,
        settings,
        state,
        _temp_dir: temp_dir,
        postgres,
    }
}

/// Spawns the app with email going by SMTP to `smtp` (plain, no credentials, short timeout),
/// after letting the test adjust its settings.
pub async fn spawn_app_with_smtp(
    smtp: &crate::smtp::SmtpServer,
    adjust: impl FnOnce(&mut Settings),
) -> TestApp {
    let port = smtp.port();
    spawn_app_with(move |s| {
        s.email.transport = EmailTransportKind::Smtp;
        s.email.smtp.host = "127.0.0.1".to_string();
        s.email.smtp.port = port;
        s.email.smtp.tls = SmtpTls::None;
        s.email.smtp.timeout_seconds = 5;
        adjust(s);
    })
    .await
}

/// A response with its status, headers and body parsed as JSON (Null when empty or not JSON).
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts an RFC 9457 problem with this status and code; returns the body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> &Value {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.body);
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "body: {}",
            self.body
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        assert_eq!(self.body["type"], format!("/problems/{code}"));
        assert!(self.body["title"].is_string());
        assert!(self.body["detail"].is_string());
        &self.body
    }

    /// The fields named in a validation problem's `errors`.
    pub fn error_fields(&self) -> Vec<String> {
        self.body["errors"]
            .as_array()
            .map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["field"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, None, Some(body)).await
    }

    pub async fn get_as(&self, token: &str, path: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None).await
    }

    pub async fn post_as(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn patch_as(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn put_as(&self, token: &str, path: &str, body: Value) -> Reply {
        self.send(Method::PUT, path, Some(token), Some(body)).await
    }

    pub async fn delete_as(&self, token: &str, path: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), None).await
    }

    /// Logs in and returns the bearer token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .post(
                "/api/v1/auth/login",
                json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(reply.status, 200, "login failed: {}", reply.body);
        reply.body["token"]
            .as_str()
            .expect("token in login reply")
            .to_string()
    }

    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_EMAIL, ADMIN_PASSWORD).await
    }

    /// Creates a staff account as admin and returns its token.
    pub async fn staff_token(
        &self,
        admin: &str,
        role: &str,
        practitioner_id: Option<&str>,
    ) -> String {
        let email = format!("{role}-{}@clinic.test", uuid::Uuid::new_v4().simple());
        let password = "a sufficiently long password";
        let reply = self
            .post_as(
                admin,
                "/api/v1/staff/users",
                json!({ "email": email, "name": "Staff Member", "role": role,
                        "practitioner_id": practitioner_id, "password": password }),
            )
            .await;
        assert_eq!(reply.status, 201, "create staff: {}", reply.body);
        self.login(&email, password).await
    }

    /// Creates a practitioner (admin) and returns its id.
    pub async fn create_practitioner(&self, admin: &str, name: &str) -> String {
        let reply = self
            .post_as(
                admin,
                "/api/v1/staff/practitioners",
                json!({ "name": name, "discipline": "physiotherapist", "title": "Physiotherapist" }),
            )
            .await;
        assert_eq!(reply.status, 201, "create practitioner: {}", reply.body);
        reply.body["id"].as_str().expect("id").to_string()
    }

    /// Creates a service (admin) offered by `practitioner_ids` and returns its id.
    pub async fn create_service(
        &self,
        admin: &str,
        name: &str,
        practitioner_ids: &[&str],
    ) -> String {
        let reply = self
            .post_as(
                admin,
                "/api/v1/staff/services",
                json!({ "name": name, "category": "physio", "duration_minutes": 45,
                        "buffer_after_minutes": 15, "price_pence": 6500,
                        "practitioner_ids": practitioner_ids }),
            )
            .await;
        assert_eq!(reply.status, 201, "create service: {}", reply.body);
        reply.body["id"].as_str().expect("id").to_string()
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Starts a second instance of the service on the same database and settings; its base
    /// address.
    pub async fn second_instance(&self) -> String {
        let second = Application::build(self.settings.clone())
            .await
            .expect("second instance");
        let address = format!("http://127.0.0.1:{}", second.port());
        tokio::spawn(second.run_until(std::future::pending()));
        address
    }
}

impl TestApp {
    /// Sends a body as-is with the given content type (for malformed or oversized bodies).
    pub async fn send_raw(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Reply::from_response(req.send().await.expect("request sent")).await
    }

    /// Sends `head` (request line and headers, without the blank line) and `body` over a
    /// plain HTTP/1.1 connection and returns the status line's code and the raw response.
    /// For what reqwest cannot express without extra features, such as a chunked upload.
    pub async fn send_over_tcp(&self, head: &str, body: Vec<u8>) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = self.address.trim_start_matches("http://").to_string();
        let stream = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        let (mut reader, mut writer) = stream.into_split();
        let request = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        // Write and read at once: the server may answer before it has read the whole body.
        let writing = tokio::spawn(async move {
            writer.write_all(request.as_bytes()).await?;
            writer.write_all(&body).await?;
            writer.flush().await
        });
        let mut response = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
                // A reset after the answer has arrived is fine: the server stopped reading.
                Err(_) if !response.is_empty() => break,
                Err(e) => panic!("reading the response: {e}"),
            }
        }
        let _ = writing.await;
        let text = String::from_utf8_lossy(&response).to_string();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line in {text:?}"));
        (status, text)
    }
}

impl Reply {
    pub async fn from_response(resp: reqwest::Response) -> Reply {
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body read");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }
}
