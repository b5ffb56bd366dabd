//! Typed, validated settings: `config/default.toml`, then `config/{FRONTDESK_ENV}.toml`, then
//! `FRONTDESK__SECTION__KEY` environment variables. Invalid values stop start-up with one line.

use std::path::{Path, PathBuf};

use chrono_tz::Tz;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// A configuration problem, naming the key it is about.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

impl ConfigError {
    fn new(key: &str, message: impl Into<String>) -> Self {
        Self {
            key: key.to_string(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    /// The environment name the settings were loaded for (`development`, `test`, `production`).
    #[serde(default)]
    pub environment: String,
    pub server: ServerSettings,
    pub database: DatabaseSettings,
    pub clinic: ClinicSettings,
    pub policy: PolicySettings,
    pub booking: BookingSettings,
    #[serde(default)]
    pub availability: AvailabilitySettings,
    #[serde(default)]
    pub enquiries: EnquirySettings,
    pub rate_limit: RateLimitSettings,
    pub auth: AuthSettings,
    pub email: EmailSettings,
    #[serde(default)]
    pub webhooks: WebhookSettings,
    #[serde(default)]
    pub waitlist: WaitlistSettings,
    pub demo: DemoSettings,
    #[serde(default)]
    pub bootstrap: BootstrapSettings,
    #[serde(default)]
    pub branding: BrandingSettings,
    pub log: LogSettings,
    #[serde(default)]
    pub privacy: PrivacySettings,
}

/// How the patient pages look: the clinic's accent colour and logo.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct BrandingSettings {
    /// `#rrggbb` (or `#rgb`): buttons, links and the page header.
    pub accent_color: String,
    /// An http(s) URL of the clinic's logo, shown in the pages' header instead of the name.
    pub logo_url: Option<String>,
}

impl Default for BrandingSettings {
    fn default() -> Self {
        Self {
            accent_color: "#0f766e".to_string(),
            logo_url: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct ServerSettings {
    pub host: String,
    pub port: u16,
    pub public_url: String,
    pub body_limit_kb: usize,
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers are believed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Origins (scheme://host[:port]) of sites that may frame the patient pages and receive
    /// their messages; empty = the pages refuse to be framed.
    #[serde(default)]
    pub embed_origins: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct DatabaseSettings {
    pub url: String,
    /// Pool size; when unset, 8 on PostgreSQL and 4 on SQLite (one writer at a time anyway).
    #[serde(default)]
    pub max_connections: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ClinicSettings {
    pub name: String,
    pub phone: String,
    pub email: String,
    pub address: String,
    pub time_zone: String,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct PolicySettings {
    pub min_notice_minutes: u32,
    pub max_advance_days: u32,
    pub cancel_notice_hours: u32,
    pub reschedule_notice_hours: u32,
    pub slot_step_minutes: u32,
}

/// Slot search tuning.
#[derive(Debug, Clone, Deserialize)]
pub struct AvailabilitySettings {
    /// How long an instance may answer the same availability query from memory; every
    /// successful write on the instance clears it. 0 turns it off.
    #[serde(default = "default_answer_cache_ms")]
    pub answer_cache_ms: u64,
    /// Bound of the answer cache in bytes of kept answers (KiB).
    #[serde(default = "default_answer_cache_max_kb")]
    pub answer_cache_max_kb: usize,
}

fn default_answer_cache_max_kb() -> usize {
    16384
}

fn default_answer_cache_ms() -> u64 {
    1000
}

impl Default for AvailabilitySettings {
    fn default() -> Self {
        Self {
            answer_cache_ms: default_answer_cache_ms(),
            answer_cache_max_kb: default_answer_cache_max_kb(),
        }
    }
}

/// The enquiry inbox: what enquirers are told, and how long answered enquiries are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct EnquirySettings {
    /// Shown in the acknowledgement, e.g. "within one working day".
    pub response_time: String,
    /// Closed enquiries are deleted this many days after their last change.
    pub retention_closed_days: u32,
    /// Spam is deleted this many days after it arrived or was marked.
    pub retention_spam_days: u32,
}

impl Default for EnquirySettings {
    fn default() -> Self {
        Self {
            response_time: "within one working day".to_string(),
            retention_closed_days: 365,
            retention_spam_days: 30,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct BookingSettings {
    pub max_active_per_patient: u32,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub bookings_per_minute: u32,
    pub enquiries_per_minute: u32,
    pub login_per_minute: u32,
    /// IPv6 clients share one bucket per prefix of this many bits.
    #[serde(default = "default_ipv6_prefix")]
    pub ipv6_prefix: u8,
}

fn default_ipv6_prefix() -> u8 {
    64
}

#[derive(Debug, Clone, Deserialize)]
pub struct AuthSettings {
    pub session_hours: u32,
    /// Failed logins for one address within 15 minutes before that address is throttled.
    pub lockout_threshold: u32,
    /// Password hashes/verifications running at once; when unset, 2 × CPU cores.
    #[serde(default)]
    pub max_concurrent_hashes: Option<usize>,
}

impl AuthSettings {
    pub fn max_concurrent_hashes(&self) -> usize {
        self.max_concurrent_hashes.unwrap_or_else(|| {
            2 * std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
        })
    }
}

/// How personal data is protected at rest.
#[derive(Debug, Clone, Deserialize)]
pub struct PrivacySettings {
    /// Key of the HMAC that turns client IPs into stored hashes; when unset, one is generated
    /// at first start and kept in the database.
    #[serde(default)]
    pub ip_hash_key: Option<SecretString>,
    /// Waitlist entries and offers are deleted this many days after they end.
    #[serde(default = "default_waitlist_retention_days")]
    pub waitlist_retention_days: u32,
}

fn default_waitlist_retention_days() -> u32 {
    30
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self {
            ip_hash_key: None,
            waitlist_retention_days: default_waitlist_retention_days(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EmailTransportKind {
    Smtp,
    File,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Deserialize)]
pub struct EmailSettings {
    pub transport: EmailTransportKind,
    pub file_dir: PathBuf,
    pub from: String,
    pub staff_inbox: String,
    pub reminder_hours_before: u32,
    /// Folder of the email templates (`{kind}.subject`, `{kind}.txt`, `{kind}.html`), read at
    /// start-up so a clinic can restyle its emails without recompiling.
    #[serde(default = "default_templates_dir")]
    pub templates_dir: PathBuf,
    pub smtp: SmtpSettings,
    pub outbox: OutboxSettings,
}

fn default_templates_dir() -> PathBuf {
    PathBuf::from("templates")
}

#[derive(Debug, Clone, Deserialize)]
pub struct SmtpSettings {
    #[serde(default)]
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<SecretString>,
    pub timeout_seconds: u64,
    /// A PEM file of certificate authorities trusted in addition to the built-in roots (a
    /// relay with a private CA); checked at start-up.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct OutboxSettings {
    pub poll_interval_ms: u64,
    pub max_attempts: u32,
    pub backoff_base_seconds: u64,
    /// The longest wait between two tries of one message.
    #[serde(default = "default_backoff_max_seconds")]
    pub backoff_max_seconds: u64,
    /// Whether this instance runs the outbox worker (tests turn it off and drive it by hand).
    #[serde(default = "enabled")]
    pub worker_enabled: bool,
    /// Sent and voided emails (copies of what went out) are deleted this many days after.
    #[serde(default = "default_outbox_retention_days")]
    pub retention_days: u32,
}

fn enabled() -> bool {
    true
}

fn default_outbox_retention_days() -> u32 {
    90
}

fn default_backoff_max_seconds() -> u64 {
    900
}

/// Signed webhooks: where the worker may connect, how long it waits, when it retries.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WebhookSettings {
    /// Whether this instance runs the delivery worker.
    pub worker_enabled: bool,
    /// Permit loopback, private, link-local targets and plain `http://` (tests, local runs).
    pub allow_private_targets: bool,
    /// One attempt, from connect to the response head.
    pub timeout_seconds: u64,
    /// The waits after each failed attempt; when they are used up the delivery is `failed`.
    pub retry_schedule_seconds: Vec<u64>,
    /// Worker wake-up.
    pub poll_interval_ms: u64,
    /// Deliveries are deleted this many days after the event.
    pub retention_days: u32,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        Self {
            worker_enabled: true,
            allow_private_targets: false,
            timeout_seconds: 15,
            retry_schedule_seconds: vec![5, 300, 1800, 7200, 18000, 36000, 50400, 72000, 86400],
            poll_interval_ms: 1000,
            retention_days: 30,
        }
    }
}

/// The waitlist: how long a freed place waits before it is offered, how long an offer holds
/// it, and how close to the start no offer is made.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct WaitlistSettings {
    /// A freed place is offered only after this long, so an undo (a staff re-booking, a
    /// restored session) produces no offer.
    pub grace_seconds: u64,
    /// How long an offer holds its place for the patient.
    pub hold_minutes: u32,
    /// No offer within this many minutes of the start; a hold ends this long before it.
    pub cutoff_minutes: u32,
    /// Worker wake-up.
    pub poll_interval_ms: u64,
    /// Whether this instance runs the waitlist worker (tests drive it by hand).
    pub worker_enabled: bool,
}

impl Default for WaitlistSettings {
    fn default() -> Self {
        Self {
            grace_seconds: 120,
            hold_minutes: 30,
            cutoff_minutes: 60,
            poll_interval_ms: 1000,
            worker_enabled: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct DemoSettings {
    pub seed: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct BootstrapSettings {
    #[serde(default)]
    pub admin_email: Option<String>,
    #[serde(default)]
    pub admin_password: Option<SecretString>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
}

impl Settings {
    /// Loads settings for `FRONTDESK_ENV` (default `development`) from `config_dir` and the
    /// process environment.
    pub fn load(config_dir: &Path) -> Result<Settings, ConfigError> {
        let environment =
            std::env::var("FRONTDESK_ENV").unwrap_or_else(|_| "development".to_string());
        Self::load_for(config_dir, &environment)
    }

    /// Loads settings for a named environment.
    pub fn load_for(config_dir: &Path, environment: &str) -> Result<Settings, ConfigError> {
        let default_file = config_dir.join("default.toml");
        if !default_file.exists() {
            return Err(ConfigError::new(
                "config_dir",
                format!("{} not found", default_file.display()),
            ));
        }
        let layered = config::Config::builder()
            .add_source(config::File::from(default_file))
            .add_source(
                config::File::from(config_dir.join(format!("{environment}.toml"))).required(false),
            )
            .add_source(
                config::Environment::with_prefix("FRONTDESK")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("server.cors_origins")
                    .with_list_parse_key("server.trusted_proxies")
                    .with_list_parse_key("webhooks.retry_schedule_seconds")
                    .with_list_parse_key("server.embed_origins"),
            )
            .set_override("environment", environment)
            .map_err(|e| ConfigError::new("environment", e.to_string()))?
            .build()
            .map_err(config_error)?;
        let settings: Settings = layered.try_deserialize().map_err(config_error)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn is_production(&self) -> bool {
        self.environment == "production"
    }

    /// The clinic's time zone; validated at load time.
    pub fn time_zone(&self) -> Tz {
        self.clinic.time_zone.parse().unwrap_or(chrono_tz::UTC)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.clinic.time_zone.parse::<Tz>().is_err() {
            return Err(ConfigError::new(
                "clinic.time_zone",
                format!("unknown time zone {:?}", self.clinic.time_zone),
            ));
        }
        let db = &self.database.url;
        if !(db.starts_with("sqlite:")
            || db.starts_with("postgres://")
            || db.starts_with("postgresql://"))
            || url::Url::parse(db).is_err()
        {
            return Err(ConfigError::new(
                "database.url",
                "expected sqlite://<path> or postgres://<user>@<host>/<database>",
            ));
        }
        match url::Url::parse(&self.server.public_url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => {
                return Err(ConfigError::new(
                    "server.public_url",
                    "expected an http(s) URL",
                ));
            }
        }
        for proxy in &self.server.trusted_proxies {
            if let Err(e) = proxy.parse::<crate::http::client::Cidr>() {
                return Err(ConfigError::new("server.trusted_proxies", e));
            }
        }
        if !(1..=128).contains(&self.rate_limit.ipv6_prefix) {
            return Err(ConfigError::new(
                "rate_limit.ipv6_prefix",
                "must be between 1 and 128",
            ));
        }
        if self.auth.max_concurrent_hashes == Some(0) {
            return Err(ConfigError::new(
                "auth.max_concurrent_hashes",
                "must be positive",
            ));
        }
        if self.availability.answer_cache_max_kb == 0 {
            return Err(ConfigError::new(
                "availability.answer_cache_max_kb",
                "must be positive",
            ));
        }
        if let Some(key) = &self.privacy.ip_hash_key
            && key.expose_secret().len() < 16
        {
            return Err(ConfigError::new(
                "privacy.ip_hash_key",
                "must be at least 16 characters",
            ));
        }
        if self.auth.lockout_threshold == 0 {
            return Err(ConfigError::new(
                "auth.lockout_threshold",
                "must be positive",
            ));
        }
        if self.server.body_limit_kb == 0 {
            return Err(ConfigError::new("server.body_limit_kb", "must be positive"));
        }
        let step = self.policy.slot_step_minutes;
        if step == 0 || step > 240 {
            return Err(ConfigError::new(
                "policy.slot_step_minutes",
                "must be between 1 and 240",
            ));
        }
        if self.policy.max_advance_days == 0 || self.policy.max_advance_days > 730 {
            return Err(ConfigError::new(
                "policy.max_advance_days",
                "must be between 1 and 730",
            ));
        }
        if self.auth.session_hours == 0 {
            return Err(ConfigError::new("auth.session_hours", "must be positive"));
        }
        for (key, value) in [
            (
                "rate_limit.bookings_per_minute",
                self.rate_limit.bookings_per_minute,
            ),
            (
                "rate_limit.enquiries_per_minute",
                self.rate_limit.enquiries_per_minute,
            ),
            (
                "rate_limit.login_per_minute",
                self.rate_limit.login_per_minute,
            ),
        ] {
            if value == 0 {
                return Err(ConfigError::new(key, "must be positive"));
            }
        }
        if self.email.from.parse::<lettre::message::Mailbox>().is_err() {
            return Err(ConfigError::new(
                "email.from",
                "expected a mailbox such as \"Clinic <bookings@example.com>\"",
            ));
        }
        if self
            .email
            .staff_inbox
            .parse::<lettre::message::Mailbox>()
            .is_err()
        {
            return Err(ConfigError::new(
                "email.staff_inbox",
                "expected an email address",
            ));
        }
        if self.is_production() {
            if self.email.transport != EmailTransportKind::Smtp {
                return Err(ConfigError::new(
                    "email.transport",
                    "production requires smtp",
                ));
            }
            if self.email.smtp.host.trim().is_empty() {
                return Err(ConfigError::new(
                    "email.smtp.host",
                    "production requires an SMTP host",
                ));
            }
        }
        if self.email.outbox.poll_interval_ms == 0 {
            return Err(ConfigError::new(
                "email.outbox.poll_interval_ms",
                "must be positive",
            ));
        }
        if self.email.outbox.max_attempts == 0 {
            return Err(ConfigError::new(
                "email.outbox.max_attempts",
                "must be positive",
            ));
        }
        if self.email.outbox.backoff_max_seconds == 0 {
            return Err(ConfigError::new(
                "email.outbox.backoff_max_seconds",
                "must be positive",
            ));
        }
        if self.webhooks.timeout_seconds == 0 || self.webhooks.timeout_seconds > 300 {
            return Err(ConfigError::new(
                "webhooks.timeout_seconds",
                "must be between 1 and 300",
            ));
        }
        if self.webhooks.poll_interval_ms == 0 {
            return Err(ConfigError::new(
                "webhooks.poll_interval_ms",
                "must be positive",
            ));
        }
        if let (Some(email), None) = (&self.bootstrap.admin_email, &self.bootstrap.admin_password)
            && !email.is_empty()
            && self.is_production()
        {
            return Err(ConfigError::new(
                "bootstrap.admin_password",
                "required with bootstrap.admin_email in production",
            ));
        }
        self.validate_pages()?;
        if tracing_subscriber::EnvFilter::try_new(&self.log.level).is_err() {
            return Err(ConfigError::new(
                "log.level",
                "expected a level such as info or debug",
            ));
        }
        Ok(())
    }
}

impl Settings {
    /// `server.embed_origins` and `branding.*`: values that end up in the pages' CSP and CSS,
    /// so only exact, well-formed ones are accepted.
    fn validate_pages(&self) -> Result<(), ConfigError> {
        for origin in &self.server.embed_origins {
            if !is_origin(origin) {
                return Err(ConfigError::new(
                    "server.embed_origins",
                    format!("{origin:?} is not an origin such as https://www.example.com"),
                ));
            }
        }
        let color = self.branding.accent_color.trim();
        let hex = color.strip_prefix('#').unwrap_or("");
        if !(matches!(hex.len(), 3 | 6) && hex.chars().all(|c| c.is_ascii_hexdigit())) {
            return Err(ConfigError::new(
                "branding.accent_color",
                "expected a colour such as \"#0f766e\"",
            ));
        }
        if let Some(logo) = self.branding.logo_url.as_deref().filter(|l| !l.is_empty()) {
            let ok = url::Url::parse(logo)
                .map(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
                .unwrap_or(false);
            if !ok
                || logo
                    .chars()
                    .any(|c| c.is_whitespace() || c == ';' || c == '\'')
            {
                return Err(ConfigError::new(
                    "branding.logo_url",
                    "expected an http(s) URL",
                ));
            }
        }
        Ok(())
    }
}

/// Whether `value` is exactly an origin: http(s), a host, an optional port, nothing else.
fn is_origin(value: &str) -> bool {
    match url::Url::parse(value) {
        Ok(u) => {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
                && u.query().is_none()
                && u.fragment().is_none()
                && value.trim_end_matches('/') == u.origin().ascii_serialization()
        }
        Err(_) => false,
    }
}

/// The config crate names the key in its messages ("… for key `server.port`"); keep that.
fn config_error(e: config::ConfigError) -> ConfigError {
    let text = e.to_string();
    let key = text
        .split("key `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .unwrap_or("configuration")
        .to_string();
    ConfigError { key, message: text }
}
