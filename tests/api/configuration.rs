//! Configuration through the real binary: layered files, environment overrides, and one clear
//! line naming the key when a setting is wrong. The environment is set on the child process
//! only, so these tests can run in parallel with everything else.

use std::{path::Path, process::Output};

use tokio::process::Command;

use frontdesk::config::Settings;
use serde_json::json;

use crate::helpers::{config_dir, spawn_app_with};

/// Runs `frontdesk <args>` in `dir` with a clean FRONTDESK_* environment plus `env`, against
/// a SQLite file in `dir` unless `env` names another database.
async fn frontdesk(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    for (key, _) in std::env::vars() {
        if key.starts_with("FRONTDESK") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir)
        .arg("--config-dir")
        .arg(config_dir())
        .args(args)
        .env("FRONTDESK__DATABASE__URL", sqlite_url(dir))
        .env("FRONTDESK__LOG__LEVEL", "warn");
    for (key, value) in env {
        cmd.env(key, value);
    }
    cmd.output().await.expect("the frontdesk binary runs")
}

fn sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}?mode=rwc", dir.join("frontdesk.db").display())
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

/// Asserts that the command failed with exactly one line on stderr naming `key`.
#[track_caller]
fn assert_refused_naming(output: &Output, key: &str) {
    let err = stderr(output);
    assert!(
        !output.status.success(),
        "expected a failure naming {key}; stdout: {}",
        stdout(output)
    );
    let lines: Vec<&str> = err.trim_end().lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stderr, got {err:?}");
    assert!(lines[0].contains(key), "{key} not named in {err:?}");
}

#[tokio::test]
async fn invalid_settings_stop_the_binary_with_one_line_naming_the_key() {
    let cases: [(&[(&str, &str)], &str); 8] = [
        (
            &[("FRONTDESK__CLINIC__TIME_ZONE", "Mars/Base")],
            "clinic.time_zone",
        ),
        (&[("FRONTDESK__DATABASE__URL", "mysql://x")], "database.url"),
        (
            &[("FRONTDESK__SERVER__PUBLIC_URL", "not a url")],
            "server.public_url",
        ),
        (&[("FRONTDESK__SERVER__PORT", "notaport")], "server.port"),
        (&[("FRONTDESK__SERVER__PORT", "70000")], "server.port"),
        (
            &[("FRONTDESK__EMAIL__TRANSPORT", "pigeon")],
            "email.transport",
        ),
        (
            &[
                ("FRONTDESK_ENV", "production"),
                ("FRONTDESK__EMAIL__TRANSPORT", "file"),
            ],
            "email.transport",
        ),
        (
            &[("FRONTDESK__POLICY__SLOT_STEP_MINUTES", "0")],
            "policy.slot_step_minutes",
        ),
    ];
    for (env, key) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = frontdesk(dir.path(), &["migrate"], env).await;
        assert_refused_naming(&output, key);
        assert!(
            !dir.path().join("frontdesk.db").exists(),
            "{key}: the database was opened despite invalid configuration"
        );
    }
}

#[tokio::test]
async fn production_without_an_smtp_host_is_refused() {
    // production.toml switches email to SMTP; an empty host is then a configuration error.
    let dir = tempfile::tempdir().expect("temp dir");
    let output = frontdesk(
        dir.path(),
        &["migrate"],
        &[
            ("FRONTDESK_ENV", "production"),
            ("FRONTDESK__EMAIL__SMTP__HOST", ""),
        ],
    )
    .await;
    assert_refused_naming(&output, "email.smtp.host");
}

#[tokio::test]
async fn a_missing_config_dir_is_refused_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_frontdesk"))
        .current_dir(dir.path())
        .env_remove("FRONTDESK_CONFIG_DIR")
        .args(["--config-dir", "no-such-folder", "migrate"])
        .output()
        .await
        .expect("the frontdesk binary runs");
    assert_refused_naming(&output, "config_dir");
}

#[tokio::test]
async fn with_good_settings_migrate_succeeds_and_is_repeatable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = frontdesk(dir.path(), &["migrate"], &[]).await;
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    assert!(dir.path().join("frontdesk.db").exists());
    assert!(stdout(&output).contains("migrations applied"));
    let again = frontdesk(dir.path(), &["migrate"], &[]).await;
    assert!(again.status.success(), "stderr: {}", stderr(&again));
}

#[tokio::test]
async fn production_settings_with_smtp_are_accepted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = frontdesk(
        dir.path(),
        &["migrate"],
        &[
            ("FRONTDESK_ENV", "production"),
            ("FRONTDESK__EMAIL__SMTP__HOST", "smtp.example.com"),
        ],
    )
    .await;
    assert!(output.status.success(), "stderr: {}", stderr(&output));
}

#[tokio::test]
async fn create_staff_prints_a_password_once_and_it_signs_in() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = frontdesk(
        dir.path(),
        &[
            "create-staff",
            "--email",
            "x@y.test",
            "--name",
            "X Y",
            "--role",
            "reception",
        ],
        &[],
    )
    .await;
    assert!(output.status.success(), "stderr: {}", stderr(&output));
    let out = stdout(&output);
    let passwords: Vec<&str> = out
        .lines()
        .filter_map(|l| l.trim().strip_prefix("password:"))
        .map(str::trim)
        .collect();
    assert_eq!(passwords.len(), 1, "{out}");
    let password = passwords[0];
    assert!(password.len() >= 12, "{password}");
    assert_eq!(out.matches(password).count(), 1, "printed once: {out}");

    // The account works against the same database.
    let url = sqlite_url(dir.path());
    let app = spawn_app_with(move |s| s.database.url = url).await;
    let token = app.login("x@y.test", password).await;
    let me = app.get_as(&token, "/api/v1/auth/me").await;
    assert_eq!(me.body["role"], "reception");
    assert_eq!(me.body["name"], "X Y");

    // A second account with the same email is refused, on one line.
    let again = frontdesk(
        dir.path(),
        &[
            "create-staff",
            "--email",
            "X@Y.test",
            "--name",
            "X Y",
            "--role",
            "admin",
        ],
        &[],
    )
    .await;
    assert!(!again.status.success());
    assert!(!stdout(&again).contains("password"), "{}", stdout(&again));
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    // The first account's password still works; nothing was changed.
    let reply = app
        .post(
            "/api/v1/auth/login",
            json!({ "email": "x@y.test", "password": password }),
        )
        .await;
    assert_eq!(reply.body["staff"]["role"], "reception");
}

#[tokio::test]
async fn create_staff_refuses_a_practitioner_without_a_practitioner_record() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = frontdesk(
        dir.path(),
        &[
            "create-staff",
            "--email",
            "p@y.test",
            "--name",
            "P",
            "--role",
            "practitioner",
        ],
        &[],
    )
    .await;
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("practitioner_id"),
        "{}",
        stderr(&output)
    );
    assert!(!stdout(&output).contains("password"));
}

#[tokio::test]
async fn environment_files_are_layered_over_the_defaults() {
    let dir = config_dir();
    let test = Settings::load_for(&dir, "test").expect("test settings");
    assert_eq!(test.environment, "test");
    assert_eq!(test.server.port, 0);
    assert!(!test.demo.seed);
    // Keys the test file does not name keep their defaults.
    assert_eq!(test.server.body_limit_kb, 64);
    assert_eq!(test.clinic.time_zone, "Europe/London");

    let production = Settings::load_for(&dir, "production").expect("production settings");
    assert!(production.is_production());
    assert_eq!(
        production.email.transport,
        frontdesk::config::EmailTransportKind::Smtp
    );
    assert_eq!(production.log.format, frontdesk::config::LogFormat::Json);
    assert!(!production.demo.seed);

    // An environment without a file of its own is just the defaults.
    let staging = Settings::load_for(&dir, "staging").expect("staging settings");
    assert_eq!(staging.server.port, 8080);
    assert!(staging.demo.seed);
    assert_eq!(
        staging.email.transport,
        frontdesk::config::EmailTransportKind::File
    );
}

#[tokio::test]
async fn abuse_settings_are_checked_at_start_and_lists_come_comma_separated() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ok = frontdesk(
        dir.path(),
        &["migrate"],
        &[(
            "FRONTDESK__SERVER__TRUSTED_PROXIES",
            "10.0.0.0/8,127.0.0.1/32, 2001:db8::/32",
        )],
    )
    .await;
    assert!(ok.status.success(), "{}", stderr(&ok));
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("FRONTDESK__SERVER__TRUSTED_PROXIES", "10.0.0.0/8,nonsense")],
            "server.trusted_proxies",
        ),
        (
            &[("FRONTDESK__SERVER__TRUSTED_PROXIES", "10.0.0.0/40")],
            "server.trusted_proxies",
        ),
        (
            &[("FRONTDESK__RATE_LIMIT__IPV6_PREFIX", "0")],
            "rate_limit.ipv6_prefix",
        ),
        (
            &[("FRONTDESK__AUTH__MAX_CONCURRENT_HASHES", "0")],
            "auth.max_concurrent_hashes",
        ),
        (
            &[("FRONTDESK__PRIVACY__IP_HASH_KEY", "short")],
            "privacy.ip_hash_key",
        ),
    ];
    for (env, key) in cases {
        let dir = tempfile::tempdir().expect("temp dir");
        let output = frontdesk(dir.path(), &["migrate"], env).await;
        assert_refused_naming(&output, key);
    }
}
