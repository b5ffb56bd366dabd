//! The `frontdesk` command line: serve (default), migrate, create-staff, seed-demo.

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, Subcommand, ValueEnum};

use crate::{
    accounts::{self, NewStaff},
    config::Settings,
    domain::{
        catalogue::Role,
        text::{EmailAddress, PersonName},
    },
    seed, startup, store, telemetry,
};

#[derive(Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Clinic booking and enquiry service"
)]
pub struct Cli {
    /// Folder holding default.toml and {FRONTDESK_ENV}.toml.
    #[arg(
        long,
        global = true,
        default_value = "config",
        env = "FRONTDESK_CONFIG_DIR"
    )]
    pub config_dir: PathBuf,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a staff account and print its generated password once.
    CreateStaff {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        /// Required for the practitioner role.
        #[arg(long)]
        practitioner_id: Option<uuid::Uuid>,
    },
    /// Seed the demo clinic into an empty database.
    SeedDemo,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Reception,
    Practitioner,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Self {
        match r {
            RoleArg::Admin => Role::Admin,
            RoleArg::Reception => Role::Reception,
            RoleArg::Practitioner => Role::Practitioner,
        }
    }
}

/// Parses arguments, loads settings and runs the command; errors become one line on stderr.
pub fn main() -> ExitCode {
    crate::alloc::configure();
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config_dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("frontdesk: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("frontdesk: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command.unwrap_or(Command::Serve), settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("frontdesk: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve => {
            let app = startup::Application::build(settings).await?;
            app.run_until(startup::shutdown_signal()).await?;
        }
        Command::Migrate => {
            let db = store::connect(&settings.database).await?;
            store::migrate(&db).await?;
            println!("migrations applied");
        }
        Command::CreateStaff {
            email,
            name,
            role,
            practitioner_id,
        } => {
            let db = store::connect(&settings.database).await?;
            store::migrate(&db).await?;
            let email = EmailAddress::parse("--email", &email)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
            let name = PersonName::parse("--name", &name)
                .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?;
            let prepared = accounts::prepare_password(None).await?;
            let txn = store::begin_write(&db).await?;
            let (user, password) = accounts::create(
                &txn,
                NewStaff {
                    email,
                    name,
                    role: role.into(),
                    practitioner_id,
                },
                prepared,
            )
            .await?;
            store::audit::record(
                &txn,
                None,
                "create",
                "staff_user",
                Some(user.id),
                serde_json::json!({ "role": user.role, "via": "cli" }),
            )
            .await?;
            txn.commit().await?;
            println!("created {} ({})", user.email, user.role);
            if let Some(p) = password {
                println!("password: {p}\nThis password is shown only once.");
            }
        }
        Command::SeedDemo => {
            let db = store::connect(&settings.database).await?;
            store::migrate(&db).await?;
            if seed::seed_demo(&db, settings.time_zone()).await? {
                println!("seeded the demo clinic");
            } else {
                println!("the catalogue is not empty; nothing seeded");
            }
        }
    }
    Ok(())
}
