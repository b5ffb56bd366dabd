//! Building and running the service: database, migrations, first-run data, HTTP server.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use poem::{
    Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};

use crate::{config::Settings, email, seed, state::AppState, store};

/// A service that is bound to its port and ready to run.
pub struct Application {
    pub state: Arc<AppState>,
    acceptor: TcpAcceptor,
    addr: SocketAddr,
}

impl Application {
    /// Connects, migrates, seeds an empty database when `demo.seed` is on, creates the first
    /// admin when there are no staff, and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        email::check_templates(&settings.email.templates_dir)
            .map_err(|e| anyhow::anyhow!("email.templates_dir: {e}"))?;
        let mailer = email::Mailer::from_settings(&settings.email).map_err(anyhow::Error::msg)?;
        let db = store::connect(&settings.database)
            .await
            .map_err(|e| anyhow::anyhow!("database.url: cannot open the database: {e}"))?;
        store::migrate(&db).await?;
        let ip_hasher = crate::secrets::ip_hasher(&db, &settings.privacy)
            .await
            .map_err(|e| {
                anyhow::anyhow!("privacy.ip_hash_key: cannot read or keep the key: {e}")
            })?;
        if settings.demo.seed && seed::seed_demo(&db, settings.time_zone()).await? {
            tracing::info!("seeded a demo clinic into the empty database");
        }
        if let Some((email, password)) = seed::bootstrap_admin(&db, &settings).await? {
            // Printed, not logged: shown once to whoever started the service.
            println!(
                "\nCreated the first admin account.\n  email:    {email}\n  password: {password}\n\
                 This password is shown only once; change it after signing in.\n"
            );
        }
        let bind = format!("{}:{}", settings.server.host, settings.server.port);
        let acceptor = TcpListener::bind(bind.clone())
            .into_acceptor()
            .await
            .map_err(|e| anyhow::anyhow!("server.port: cannot listen on {bind}: {e}"))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .ok_or_else(|| anyhow::anyhow!("server.host: no local address after binding"))?;
        let mut state = AppState::new(db, settings, mailer);
        state.ip_hasher = ip_hasher;
        let state = Arc::new(state);
        Ok(Self {
            state,
            acceptor,
            addr,
        })
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish (up to 10 s).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        tracing::info!(address = %self.addr, "listening");
        let app = crate::http::app(self.state.clone());
        // Start-up (migrations, the OpenAPI document, templates) freed more than it keeps,
        // and ran through code it will not run again.
        give_back_memory();
        let housekeeping = tokio::spawn(housekeeping(self.state.clone()));
        let settle = tokio::spawn(settle_when_idle(self.state.clone()));
        let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
        let worker = self
            .state
            .settings
            .email
            .outbox
            .worker_enabled
            .then(|| tokio::spawn(email::worker::run(self.state.clone(), worker_stopped)));
        let (stop_webhooks, webhooks_stopped) = tokio::sync::watch::channel(false);
        let webhooks = self.state.settings.webhooks.worker_enabled.then(|| {
            tokio::spawn(crate::webhooks::worker::run(
                self.state.clone(),
                webhooks_stopped,
            ))
        });
        let (stop_waitlist, waitlist_stopped) = tokio::sync::watch::channel(false);
        let waitlist = self.state.settings.waitlist.worker_enabled.then(|| {
            tokio::spawn(crate::waitlist::worker::run(
                self.state.clone(),
                waitlist_stopped,
            ))
        });
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(app, shutdown, Some(Duration::from_secs(10)))
            .await;
        housekeeping.abort();
        settle.abort();
        if let Some(mut worker) = worker {
            // Let a delivery in progress finish and be recorded; a row cut off after that is
            // sent again once its lease expires.
            let _ = stop_worker.send(true);
            if tokio::time::timeout(Duration::from_secs(10), &mut worker)
                .await
                .is_err()
            {
                worker.abort();
            }
        }
        if let Some(mut webhooks) = webhooks {
            // An attempt cut off here is posted again (same webhook-id) once its lease ends.
            let _ = stop_webhooks.send(true);
            if tokio::time::timeout(Duration::from_secs(10), &mut webhooks)
                .await
                .is_err()
            {
                webhooks.abort();
            }
        }
        if let Some(mut waitlist) = waitlist {
            // A step cut off here rolls back; its openings are taken again by the next one.
            let _ = stop_waitlist.send(true);
            if tokio::time::timeout(Duration::from_secs(10), &mut waitlist)
                .await
                .is_err()
            {
                waitlist.abort();
            }
        }
        self.state.db.clone().close().await.ok();
        tracing::info!("stopped");
        result
    }
}

/// Periodic chores of one instance.
async fn housekeeping(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut minutes = 0u64;
    loop {
        tick.tick().await;
        state.limits.forget_idle();
        state
            .login_throttle
            .forget_expired(std::time::Instant::now());
        state.slot_answers.evict_expired();
        // Hourly, and once right after start.
        if minutes.is_multiple_of(60)
            && let Err(e) = crate::privacy::retention::purge(&state, chrono::Utc::now()).await
        {
            tracing::warn!(error = %e, "retention purge failed; will retry");
        }
        minutes += 1;
        // What the workers' and the chores' steps freed goes back to the system.
        give_back_memory();
    }
}

/// Freed heap memory and the pages of code and constants the process holds mapped go back to
/// the system (`alloc::trim`, `alloc::release_code`).
fn give_back_memory() {
    crate::alloc::trim();
    crate::alloc::release_code();
}

/// Once requests stop (none answered for a whole second after some were), gives back what
/// they freed and the code they ran through, so that an idle instance's resident memory is
/// what it uses while idle, not what its busiest moment touched.
async fn settle_when_idle(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = state.metrics.answered();
    let mut busy = false;
    loop {
        tick.tick().await;
        let answered = state.metrics.answered();
        if answered != seen {
            (seen, busy) = (answered, true);
        } else if busy {
            busy = false;
            give_back_memory();
        }
    }
}

/// Completes on ctrl-c or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
