//! The availability engine on a busy clinic: 10 practitioners over 28 days in Europe/London
//! (across the spring change), 2,000 appointments, 100 time-off blocks and three closures.

use std::hint::black_box;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use chrono_tz::{Europe::London, Tz};
use criterion::{Criterion, criterion_group, criterion_main};
use frontdesk::domain::{
    availability::{PractitionerSchedule, Range, ServiceRules, SlotQuery, free_slots},
    hours::WeeklyInterval,
    localtime::instant_at,
};
use uuid::Uuid;

const TZ: Tz = London;
const DAYS: u64 = 28;
const PRACTITIONERS: u128 = 10;
const APPOINTMENTS: usize = 2_000;
const TIME_OFF: usize = 100;

/// A small deterministic generator, so every run measures the same clinic.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

fn first_day() -> NaiveDate {
    // Monday; the 28 days include the change to BST on 2026-03-29 and Easter.
    NaiveDate::from_ymd_opt(2026, 3, 16).unwrap_or_default()
}

fn day(i: u64) -> NaiveDate {
    first_day() + Duration::days(i64::try_from(i).unwrap_or(0))
}

fn interval(weekday: u8, start: u32, end: u32) -> WeeklyInterval {
    WeeklyInterval {
        weekday,
        start_minute: start,
        end_minute: end,
        valid_from: None,
        valid_until: None,
    }
}

/// Weekdays with a lunch break, staggered starts; two evenings for odd ids, Saturday
/// mornings for even ids.
fn week_of(n: u128) -> Vec<WeeklyInterval> {
    let shift = u32::try_from(n % 3).unwrap_or(0) * 30;
    let mut week = Vec::new();
    for weekday in 0..5 {
        week.push(interval(weekday, 8 * 60 + shift, 13 * 60));
        week.push(interval(weekday, 14 * 60, 18 * 60 + shift));
    }
    if n % 2 == 1 {
        week.push(interval(1, 18 * 60 + 30 + shift, 21 * 60));
        week.push(interval(3, 18 * 60 + 30 + shift, 21 * 60));
    } else {
        week.push(interval(5, 9 * 60, 13 * 60));
    }
    week
}

fn at(date: NaiveDate, minute: u32) -> DateTime<Utc> {
    instant_at(TZ, date, minute)
}

fn minutes(m: u64) -> Duration {
    Duration::minutes(i64::try_from(m).unwrap_or(0))
}

/// Packs each working interval with appointments of mixed lengths and small gaps, then
/// keeps a random 2,000 of them: a clinic that is most of the way to full.
fn clinic() -> (Vec<PractitionerSchedule>, Vec<Range>) {
    let mut rng = Lcg(2026);
    let mut schedules: Vec<PractitionerSchedule> = (1..=PRACTITIONERS)
        .map(|n| PractitionerSchedule {
            practitioner_id: Uuid::from_u128(n),
            week: week_of(n),
            appointments: Vec::new(),
            time_off: Vec::new(),
        })
        .collect();
    let mut booked: Vec<(usize, Range)> = Vec::new();
    for (p, schedule) in schedules.iter().enumerate() {
        for d in 0..DAYS {
            let date = day(d);
            for iv in schedule.week.iter().filter(|iv| iv.applies_on(date)) {
                let (mut cursor, end) = (at(date, iv.start_minute), at(date, iv.end_minute));
                loop {
                    let gap = minutes([0, 0, 0, 0, 15, 30][rng.below(6) as usize]);
                    let length = minutes([20, 30, 30, 45, 60][rng.below(5) as usize]);
                    let buffer = minutes([0, 5, 10, 15][rng.below(4) as usize]);
                    let (start, until) = (cursor + gap, cursor + gap + length + buffer);
                    if until > end {
                        break;
                    }
                    booked.push((p, Range { start, end: until }));
                    cursor = until;
                }
            }
        }
    }
    assert!(booked.len() >= APPOINTMENTS, "only {} packed", booked.len());
    for i in 0..APPOINTMENTS {
        let j = i + rng.below((booked.len() - i) as u64) as usize;
        booked.swap(i, j);
    }
    for (p, range) in booked.into_iter().take(APPOINTMENTS) {
        schedules[p].appointments.push(range);
    }
    for k in 0..TIME_OFF {
        let schedule = &mut schedules[rng.below(PRACTITIONERS as u64) as usize];
        let date = day(rng.below(DAYS));
        let range = if k % 5 == 0 {
            Range {
                start: at(date, 0),
                end: at(date, 24 * 60),
            }
        } else {
            let start = at(date, 8 * 60 + 30 * rng.below(18) as u32);
            Range {
                start,
                end: start + minutes(60 * (1 + rng.below(3))),
            }
        };
        schedule.time_off.push(range);
    }
    let good_friday = NaiveDate::from_ymd_opt(2026, 4, 3).unwrap_or_default();
    let easter_monday = NaiveDate::from_ymd_opt(2026, 4, 6).unwrap_or_default();
    let training = NaiveDate::from_ymd_opt(2026, 3, 25).unwrap_or_default();
    let closures = vec![
        Range {
            start: at(good_friday, 0),
            end: at(good_friday, 24 * 60),
        },
        Range {
            start: at(easter_monday, 0),
            end: at(easter_monday, 24 * 60),
        },
        Range {
            start: at(training, 13 * 60),
            end: at(training, 18 * 60),
        },
    ];
    (schedules, closures)
}

fn query(from: NaiveDate, to: NaiveDate) -> SlotQuery {
    SlotQuery {
        tz: TZ,
        now: at(first_day(), 7 * 60),
        from,
        to,
        rules: ServiceRules {
            duration_minutes: 45,
            buffer_before_minutes: 0,
            buffer_after_minutes: 15,
            step_minutes: 15,
            min_notice_minutes: 120,
            max_advance_days: 90,
        },
    }
}

/// What the store would load for a query: busy ranges within a day of its dates.
fn loaded_for(
    q: &SlotQuery,
    schedules: &[PractitionerSchedule],
    closures: &[Range],
) -> (Vec<PractitionerSchedule>, Vec<Range>) {
    let from = at(q.from, 0) - Duration::days(1);
    let until = at(q.to, 24 * 60) + Duration::days(1);
    let keep = |ranges: &[Range]| -> Vec<Range> {
        let near = |r: &&Range| r.start < until && from < r.end;
        ranges.iter().filter(near).copied().collect()
    };
    let schedules = schedules
        .iter()
        .map(|s| PractitionerSchedule {
            appointments: keep(&s.appointments),
            time_off: keep(&s.time_off),
            ..s.clone()
        })
        .collect();
    (schedules, keep(closures))
}

fn bench(c: &mut Criterion) {
    let (schedules, closures) = clinic();
    let four_weeks = query(first_day(), day(DAYS - 1));
    // The week of the clock change, Monday to Sunday.
    let one_week = query(day(7), day(13));
    assert_eq!(day(13).weekday(), chrono::Weekday::Sun);
    let free_diaries: Vec<PractitionerSchedule> = schedules
        .iter()
        .map(|s| PractitionerSchedule {
            appointments: Vec::new(),
            time_off: Vec::new(),
            ..s.clone()
        })
        .collect();
    let cases = [
        ("28 days", four_weeks, &schedules),
        ("7 days", one_week, &schedules),
        // The other extreme: every candidate is a slot to convert and sort.
        ("28 days, empty diaries", four_weeks, &free_diaries),
    ];
    for (name, q, schedules) in cases {
        let (schedules, closures) = loaded_for(&q, schedules, &closures);
        let appointments: usize = schedules.iter().map(|s| s.appointments.len()).sum();
        let slots = free_slots(&q, &schedules, &closures).len();
        println!("{name}: {appointments} appointments loaded, {slots} free slots");
        c.bench_function(&format!("free_slots/{name}, 10 practitioners"), |b| {
            b.iter(|| free_slots(black_box(&q), black_box(&schedules), black_box(&closures)))
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
