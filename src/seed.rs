//! First-run data: a demo clinic for an empty development database, and a first admin.

use chrono::Utc;
use entity::{practitioner, service};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::{
    accounts::{self, NewStaff},
    config::Settings,
    domain::{
        catalogue::{Discipline, Role, ServiceCategory},
        hours::{WeeklyInterval, parse_clock},
        text::{EmailAddress, PersonName},
    },
    store,
};

struct DemoService {
    slug: &'static str,
    name: &'static str,
    description: &'static str,
    category: ServiceCategory,
    minutes: i32,
    before: i32,
    after: i32,
    pence: i32,
}

const SERVICES: [DemoService; 6] = [
    DemoService {
        slug: "physio-initial-assessment",
        name: "Physiotherapy initial assessment",
        description: "A full assessment of your injury or pain, a diagnosis and a treatment plan, with hands-on treatment where appropriate.",
        category: ServiceCategory::Physio,
        minutes: 45,
        before: 0,
        after: 15,
        pence: 7000,
    },
    DemoService {
        slug: "physio-follow-up",
        name: "Physiotherapy follow-up",
        description: "Treatment and progression of your rehabilitation programme.",
        category: ServiceCategory::Physio,
        minutes: 30,
        before: 0,
        after: 10,
        pence: 5500,
    },
    DemoService {
        slug: "sports-massage",
        name: "Sports massage",
        description: "Deep tissue massage for recovery, training load and tight muscles.",
        category: ServiceCategory::SportsMassage,
        minutes: 60,
        before: 0,
        after: 15,
        pence: 6500,
    },
    DemoService {
        slug: "sports-injury-clinic",
        name: "Sports injury clinic",
        description: "Assessment and taping or strapping to get you back to training safely.",
        category: ServiceCategory::SportsMassage,
        minutes: 30,
        before: 0,
        after: 10,
        pence: 4500,
    },
    DemoService {
        slug: "personal-training",
        name: "Personal training (1:1)",
        description: "A one-to-one strength and conditioning session in our gym.",
        category: ServiceCategory::PersonalTraining,
        minutes: 60,
        before: 5,
        after: 10,
        pence: 5000,
    },
    DemoService {
        slug: "pilates-1-1",
        name: "1:1 Pilates",
        description: "Clinical Pilates on the reformer, tailored to you.",
        category: ServiceCategory::Pilates,
        minutes: 55,
        before: 0,
        after: 5,
        pence: 6000,
    },
];

struct DemoPractitioner {
    slug: &'static str,
    name: &'static str,
    discipline: Discipline,
    title: &'static str,
    bio: &'static str,
    services: &'static [&'static str],
    /// (weekday 0=Mon, start, end)
    hours: &'static [(u8, &'static str, &'static str)],
}

const PRACTITIONERS: [DemoPractitioner; 5] = [
    DemoPractitioner {
        slug: "amara-okafor",
        name: "Amara Okafor",
        discipline: Discipline::Physiotherapist,
        title: "Senior Physiotherapist, MCSP",
        bio: "Amara specialises in running injuries and post-operative knee rehabilitation.",
        services: &["physio-initial-assessment", "physio-follow-up"],
        hours: &[
            (0, "08:00", "13:00"),
            (0, "14:00", "18:00"),
            (1, "08:00", "13:00"),
            (1, "14:00", "18:00"),
            (2, "08:00", "13:00"),
            (3, "12:00", "20:00"),
            (4, "08:00", "13:00"),
            (4, "14:00", "17:00"),
        ],
    },
    DemoPractitioner {
        slug: "james-whitfield",
        name: "James Whitfield",
        discipline: Discipline::Physiotherapist,
        title: "Physiotherapist, MCSP",
        bio: "James treats back and neck pain and works with the local rugby club.",
        services: &["physio-initial-assessment", "physio-follow-up"],
        hours: &[
            (1, "10:00", "19:00"),
            (2, "10:00", "19:00"),
            (3, "10:00", "19:00"),
            (4, "10:00", "16:00"),
            (5, "08:30", "12:30"),
        ],
    },
    DemoPractitioner {
        slug: "sofia-marin",
        name: "Sofia Marin",
        discipline: Discipline::SportsTherapist,
        title: "Graduate Sports Therapist, GSR",
        bio: "Sofia combines sports massage with strength work for endurance athletes.",
        services: &["sports-massage", "sports-injury-clinic"],
        hours: &[
            (0, "12:00", "20:00"),
            (2, "12:00", "20:00"),
            (4, "12:00", "20:00"),
            (5, "09:00", "13:00"),
        ],
    },
    DemoPractitioner {
        slug: "tom-reilly",
        name: "Tom Reilly",
        discipline: Discipline::PersonalTrainer,
        title: "Personal Trainer, Level 4",
        bio: "Tom coaches strength training for beginners and return-to-sport clients.",
        services: &["personal-training"],
        hours: &[
            (0, "06:30", "10:30"),
            (0, "16:30", "20:30"),
            (1, "06:30", "10:30"),
            (2, "16:30", "20:30"),
            (3, "06:30", "10:30"),
            (3, "16:30", "20:30"),
            (4, "06:30", "10:30"),
            (5, "08:00", "12:00"),
        ],
    },
    DemoPractitioner {
        slug: "hannah-lee",
        name: "Hannah Lee",
        discipline: Discipline::PilatesInstructor,
        title: "Clinical Pilates Instructor",
        bio: "Hannah teaches reformer Pilates for rehabilitation and core strength.",
        services: &["pilates-1-1"],
        hours: &[
            (0, "09:00", "15:00"),
            (1, "09:00", "15:00"),
            (2, "09:00", "15:00"),
            (3, "09:00", "15:00"),
            (5, "09:00", "12:00"),
        ],
    },
];

/// Whether the catalogue is empty (no services and no practitioners).
pub async fn catalogue_is_empty(db: &DatabaseConnection) -> Result<bool, sea_orm::DbErr> {
    Ok(service::Entity::find().count(db).await? == 0
        && practitioner::Entity::find().count(db).await? == 0)
}

/// Seeds the demo clinic in one transaction. Returns false (and does nothing) when the
/// catalogue already has data.
pub async fn seed_demo(db: &DatabaseConnection) -> anyhow::Result<bool> {
    if !catalogue_is_empty(db).await? {
        return Ok(false);
    }
    let now = Utc::now();
    let txn = store::begin_write(db).await?;
    let mut service_ids = std::collections::HashMap::new();
    for s in &SERVICES {
        let id = Uuid::new_v4();
        service_ids.insert(s.slug, id);
        store::catalogue::insert_service(
            &txn,
            service::Model {
                id,
                slug: s.slug.into(),
                name: s.name.into(),
                description: s.description.into(),
                category: s.category.as_str().into(),
                duration_minutes: s.minutes,
                buffer_before_minutes: s.before,
                buffer_after_minutes: s.after,
                price_pence: s.pence,
                active: true,
                online_bookable: true,
                slot_step_minutes: None,
                min_notice_minutes: None,
                max_advance_days: None,
                cancel_notice_hours: None,
                reschedule_notice_hours: None,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
    }
    for p in &PRACTITIONERS {
        let id = Uuid::new_v4();
        store::catalogue::insert_practitioner(
            &txn,
            practitioner::Model {
                id,
                slug: p.slug.into(),
                name: p.name.into(),
                discipline: p.discipline.as_str().into(),
                title: p.title.into(),
                bio: p.bio.into(),
                email: Some(format!("{}@example.com", p.slug)),
                active: true,
                online_bookable: true,
                created_at: now,
                updated_at: now,
                feed_token_hash: None,
            },
        )
        .await?;
        let offered: Vec<Uuid> = p
            .services
            .iter()
            .filter_map(|slug| service_ids.get(slug).copied())
            .collect();
        store::catalogue::set_practitioner_services(&txn, id, &offered).await?;
        let week: Vec<WeeklyInterval> = p
            .hours
            .iter()
            .filter_map(|(weekday, start, end)| {
                Some(WeeklyInterval {
                    weekday: *weekday,
                    start_minute: parse_clock(start)?,
                    end_minute: parse_clock(end)?,
                    valid_from: None,
                    valid_until: None,
                })
            })
            .collect();
        store::schedule::replace_week(&txn, id, &week).await?;
    }
    store::audit::record(
        &txn,
        None,
        "seed_demo",
        "clinic",
        None,
        serde_json::json!({ "services": SERVICES.len(), "practitioners": PRACTITIONERS.len() }),
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Creates the first admin when there are no staff accounts: from `bootstrap.*`, or
/// `admin@localhost` with a random password. Returns the (email, password) to print once when
/// the password was generated.
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    settings: &Settings,
) -> anyhow::Result<Option<(String, String)>> {
    if store::staff::count_users(db).await? > 0 {
        return Ok(None);
    }
    let email = match settings
        .bootstrap
        .admin_email
        .as_deref()
        .filter(|e| !e.trim().is_empty())
    {
        Some(e) => EmailAddress::parse("bootstrap.admin_email", e)
            .map_err(|e| anyhow::anyhow!("{}: {}", e.field, e.message))?,
        None => EmailAddress::local_admin(),
    };
    let password = settings
        .bootstrap
        .admin_password
        .as_ref()
        .map(|p| SecretString::from(p.expose_secret().to_string()));
    let prepared = accounts::prepare_password(password).await?;
    let txn = store::begin_write(db).await?;
    let (user, generated) = accounts::create(
        &txn,
        NewStaff {
            email,
            name: PersonName::parse("name", "Administrator")
                .map_err(|e| anyhow::anyhow!(e.message))?,
            role: Role::Admin,
            practitioner_id: None,
        },
        prepared,
    )
    .await?;
    store::audit::record(
        &txn,
        None,
        "bootstrap_admin",
        "staff_user",
        Some(user.id),
        serde_json::json!({}),
    )
    .await?;
    txn.commit().await?;
    Ok(generated.map(|p| (user.email, p)))
}
