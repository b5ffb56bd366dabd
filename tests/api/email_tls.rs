//! Production mail: STARTTLS with AUTH, implicit TLS, a private certificate authority given
//! through `email.smtp.ca_file`, and what a wrong password or an untrusted certificate does
//! (the email waits, the reason is in `last_error` and `/health/ready` says `degraded`).

use chrono::{Duration, Utc};
use frontdesk::config::SmtpTls;
use serde_json::json;

use crate::{
    email_outage::{enqueue_ack, metric, readiness, rows, step_at},
    helpers::{TestApp, spawn_app_with_smtp, test_settings},
    smtp::{SmtpServer, TestCa},
};

const USER: &str = "frontdesk@clinic.test";
const PASSWORD: &str = "relay password";

/// The app sending through `smtp` with `tls`, logging in with `password`, trusting `ca` when
/// given.
async fn app_for(
    smtp: &SmtpServer,
    tls: SmtpTls,
    password: &str,
    ca: Option<&TestCa>,
    dir: &tempfile::TempDir,
) -> TestApp {
    let ca_file = ca.map(|ca| ca.write_ca(dir.path()));
    let password = password.to_string();
    spawn_app_with_smtp(smtp, move |s| {
        s.email.smtp.tls = tls;
        s.email.smtp.username = Some(USER.to_string());
        s.email.smtp.password = Some(password.into());
        s.email.smtp.ca_file = ca_file;
        s.email.outbox.max_attempts = 2;
    })
    .await
}

#[tokio::test]
async fn mail_goes_through_a_relay_that_demands_starttls_and_auth_with_a_private_ca() {
    let ca = TestCa::generate();
    let smtp = SmtpServer::start_with(ca.starttls(), Some((USER, PASSWORD))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = app_for(&smtp, SmtpTls::Starttls, PASSWORD, Some(&ca), &dir).await;
    let id = enqueue_ack(&app, "alex@visitors.test").await;
    assert_eq!(step_at(&app, Utc::now()).await, 1);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 1, "{:?}", rows(&app).await);
    assert!(messages[0].encrypted, "sent after STARTTLS");
    assert_eq!(messages[0].user.as_deref(), Some(USER));
    assert_eq!(messages[0].rcpt_to, ["alex@visitors.test"]);
    let sent = rows(&app)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .expect("row");
    assert_eq!(sent.status, "sent");
    assert_eq!(
        readiness(&app).await,
        (
            200,
            json!({ "status": "ok", "database": "ok", "email": "ok" })
        )
    );
}

#[tokio::test]
async fn mail_goes_through_a_relay_on_implicit_tls_with_a_private_ca() {
    let ca = TestCa::generate();
    let smtp = SmtpServer::start_with(ca.implicit_tls(), Some((USER, PASSWORD))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = app_for(&smtp, SmtpTls::Tls, PASSWORD, Some(&ca), &dir).await;
    enqueue_ack(&app, "alex@visitors.test").await;
    enqueue_ack(&app, "sam@visitors.test").await;
    assert_eq!(step_at(&app, Utc::now()).await, 2);
    let messages = smtp.messages();
    assert_eq!(messages.len(), 2, "{:?}", rows(&app).await);
    assert!(
        messages
            .iter()
            .all(|m| m.encrypted && m.user.as_deref() == Some(USER))
    );
    assert_eq!(smtp.connections(), 1, "the TLS connection is reused");
}

#[tokio::test]
async fn a_wrong_password_keeps_emails_waiting_and_says_so() {
    let ca = TestCa::generate();
    let smtp = SmtpServer::start_with(ca.starttls(), Some((USER, PASSWORD))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = app_for(
        &smtp,
        SmtpTls::Starttls,
        "not the password",
        Some(&ca),
        &dir,
    )
    .await;
    let id = enqueue_ack(&app, "alex@visitors.test").await;
    // Far more tries than max_attempts (2): a login failure is not the message's fault.
    let mut now = Utc::now();
    for _ in 0..6 {
        assert_eq!(step_at(&app, now).await, 1);
        now += Duration::seconds(901);
    }
    let r = rows(&app)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .expect("row");
    assert_eq!(
        (r.status.as_str(), r.attempts, r.failures),
        ("pending", 0, 6)
    );
    let error = r.last_error.expect("last_error");
    assert!(
        error.contains("authentication failed") && error.contains("535"),
        "{error}"
    );
    assert!(smtp.messages().is_empty());
    assert_eq!(
        readiness(&app).await,
        (
            200,
            json!({ "status": "degraded", "database": "ok", "email": "failing" })
        )
    );
    assert_eq!(
        metric(&app, "frontdesk_smtp_failures_total{kind=\"auth\"}").await,
        6.0
    );
    let admin = app.admin_token().await;
    let listed = app
        .get_as(&admin, "/api/v1/staff/outbox?status=pending")
        .await;
    assert_eq!(listed.body["items"][0]["attempts"], 0);
    assert!(
        listed.body["items"][0]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("535")),
        "{}",
        listed.body
    );
}

#[tokio::test]
async fn without_the_private_ca_the_relay_is_not_trusted_and_emails_wait() {
    let ca = TestCa::generate();
    let smtp = SmtpServer::start_with(ca.implicit_tls(), Some((USER, PASSWORD))).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let app = app_for(&smtp, SmtpTls::Tls, PASSWORD, None, &dir).await;
    let id = enqueue_ack(&app, "alex@visitors.test").await;
    let now = Utc::now();
    for i in 0..3 {
        assert_eq!(step_at(&app, now + Duration::seconds(901 * i)).await, 1);
    }
    let r = rows(&app)
        .await
        .into_iter()
        .find(|r| r.id == id)
        .expect("row");
    assert_eq!((r.status.as_str(), r.attempts), ("pending", 0));
    let error = r.last_error.expect("last_error");
    assert!(error.contains("TLS handshake failed"), "{error}");
    assert!(smtp.messages().is_empty());
    assert_eq!(readiness(&app).await.1["email"], "failing");
    assert_eq!(
        metric(&app, "frontdesk_smtp_failures_total{kind=\"tls\"}").await,
        3.0
    );
}

#[tokio::test]
async fn a_missing_or_unusable_ca_file_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().expect("temp dir");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let broken = dir.path().join("broken.pem");
    std::fs::write(
        &broken,
        "-----BEGIN CERTIFICATE-----\nTm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    for (transport_smtp, path) in [
        (true, dir.path().join("missing.pem")),
        (true, garbage.clone()),
        (true, broken.clone()),
        (false, garbage),
    ] {
        let mut settings = test_settings();
        settings.database.url = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("frontdesk.db").display()
        );
        settings.email.file_dir = dir.path().join("mail");
        if transport_smtp {
            settings.email.transport = frontdesk::config::EmailTransportKind::Smtp;
            settings.email.smtp.tls = SmtpTls::Starttls;
        }
        settings.email.smtp.ca_file = Some(path.clone());
        let err = frontdesk::startup::Application::build(settings)
            .await
            .err()
            .unwrap_or_else(|| panic!("start-up accepted {}", path.display()));
        assert!(
            err.to_string().starts_with("email.smtp.ca_file: "),
            "{}: {err}",
            path.display()
        );
    }
}
