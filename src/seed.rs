//! First-run data: a demo clinic for an empty development database, and a first admin.

use chrono::Utc;
use chrono_tz::Tz;
use entity::{class_series, class_session, practitioner, service};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::{
    accounts::{self, NewStaff},
    config::Settings,
    domain::{
        catalogue::{Discipline, Role, ServiceCategory},
        classes,
        hours::{WeeklyInterval, parse_clock},
        localtime,
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
    /// 1 for one-to-one; more for a group class.
    capacity: i32,
}

const SERVICES: [DemoService; 8] = [
    DemoService {
        slug: "physio-initial-assessment",
        name: "Physiotherapy initial assessment",
        description: "A full assessment of your injury or pain, a diagnosis and a treatment plan, with hands-on treatment where appropriate.",
        category: ServiceCategory::Physio,
        minutes: 45,
        before: 0,
        after: 15,
        pence: 7000,
        capacity: 1,
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
        capacity: 1,
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
        capacity: 1,
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
        capacity: 1,
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
        capacity: 1,
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
        capacity: 1,
    },
    DemoService {
        slug: "mat-pilates-class",
        name: "Mat Pilates class",
        description: "A small-group mat Pilates class for core strength, posture and mobility. All levels welcome.",
        category: ServiceCategory::Pilates,
        minutes: 55,
        before: 0,
        after: 5,
        pence: 1200,
        capacity: 10,
    },
    DemoService {
        slug: "back-care-circuit",
        name: "Back-care circuit class",
        description: "A supervised exercise circuit for people with back pain, led by a trainer with physiotherapy input.",
        category: ServiceCategory::Physio,
        minutes: 45,
        before: 0,
        after: 15,
        pence: 1500,
        capacity: 8,
    },
];

/// A weekly class of the demo timetable: (service slug, instructor slug, weekday 0=Mon,
/// local start).
const TIMETABLE: [(&str, &str, u32, &str); 3] = [
    ("mat-pilates-class", "hannah-lee", 1, "18:00"),
    ("mat-pilates-class", "hannah-lee", 3, "18:00"),
    ("back-care-circuit", "tom-reilly", 2, "12:00"),
];

/// How many weeks of the timetable the demo creates.
const TIMETABLE_WEEKS: i64 = 8;

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
        services: &["personal-training", "back-care-circuit"],
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
        services: &["pilates-1-1", "mat-pilates-class"],
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

/// Seeds the demo clinic in one transaction, with a weekly class timetable for the coming
/// weeks in the clinic's zone `tz`. Returns false (and does nothing) when the catalogue
/// already has data.
pub async fn seed_demo(db: &DatabaseConnection, tz: Tz) -> anyhow::Result<bool> {
    if !catalogue_is_empty(db).await? {
        return Ok(false);
    }
    let now = Utc::now();
    let txn = store::begin_write(db).await?;
    let mut service_ids = std::collections::HashMap::new();
    let mut practitioner_ids = std::collections::HashMap::new();
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
                capacity: s.capacity,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
    }
    for p in &PRACTITIONERS {
        let id = Uuid::new_v4();
        practitioner_ids.insert(p.slug, id);
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
    let sessions = seed_timetable(&txn, tz, &service_ids, &practitioner_ids).await?;
    store::audit::record(
        &txn,
        None,
        "seed_demo",
        "clinic",
        None,
        serde_json::json!({ "services": SERVICES.len(), "practitioners": PRACTITIONERS.len(),
                            "class_sessions": sessions }),
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Creates the demo timetable's weekly series from today; returns how many sessions.
async fn seed_timetable(
    txn: &sea_orm::DatabaseTransaction,
    tz: Tz,
    services: &std::collections::HashMap<&str, Uuid>,
    practitioners: &std::collections::HashMap<&str, Uuid>,
) -> anyhow::Result<usize> {
    let now = Utc::now();
    let from = localtime::local_date(tz, now);
    let until = from + chrono::Duration::weeks(TIMETABLE_WEEKS);
    let mut count = 0;
    for (service_slug, instructor, weekday, start) in TIMETABLE {
        let (Some(&service_id), Some(&practitioner_id), Some(start_minute)) = (
            services.get(service_slug),
            practitioners.get(instructor),
            parse_clock(start),
        ) else {
            continue;
        };
        let Some(service) = store::catalogue::find_service(txn, service_id).await? else {
            continue;
        };
        let series = store::classes::insert_series(
            txn,
            class_series::Model {
                id: Uuid::new_v4(),
                service_id,
                practitioner_id,
                weekday: weekday as i32,
                start_minute: start_minute as i32,
                valid_from: from,
                valid_until: until,
                capacity: service.capacity,
                created_at: now,
            },
        )
        .await?;
        for date in classes::weekly_dates(tz, weekday, start_minute, from, until) {
            if date.start <= now {
                continue;
            }
            let (end, blocked_from, blocked_until) =
                crate::classes::blocked_range(&service, date.start);
            store::classes::insert_session(
                txn,
                class_session::Model {
                    id: Uuid::new_v4(),
                    service_id,
                    practitioner_id,
                    series_id: Some(series.id),
                    starts_at: date.start,
                    ends_at: end,
                    blocked_from,
                    blocked_until,
                    capacity: service.capacity,
                    seats_taken: 0,
                    seats_held: 0,
                    status: classes::SessionStatus::Scheduled.as_str().to_string(),
                    cancel_reason: None,
                    sequence: 0,
                    created_at: now,
                    updated_at: now,
                },
            )
            .await?;
            count += 1;
        }
    }
    Ok(count)
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
