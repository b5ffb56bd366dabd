//! The `GET /api/v1/availability` answer written straight from the engine's slots into bytes:
//! each timestamp is formatted into the output buffer, with no `String` per field and no
//! `SlotObject` per slot. A week of slots is a few hundred objects, and building three
//! strings for each and then escaping them again through serde cost more than computing the
//! slots. The bytes are exactly what serde writes for [`Availability`] (a test compares them
//! over many zones and instants), so the OpenAPI schema, which is `Availability`'s, stays true.

use chrono::{DateTime, Datelike, NaiveDateTime, Offset, SecondsFormat, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use crate::domain::availability::Slot;

#[cfg(doc)]
use super::availability::Availability;

/// About what one slot object takes, so the buffer is allocated once for a typical answer.
const BYTES_PER_SLOT: usize = 160;

/// `{"service_id":…,"time_zone":…,"slots":[{"start","end","local_start","practitioner_id"}…]}`
/// for `slots` in `tz`, whose IANA name is `time_zone`.
pub fn availability(service_id: Uuid, time_zone: &str, tz: Tz, slots: &[Slot]) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + slots.len() * BYTES_PER_SLOT);
    out.extend_from_slice(b"{\"service_id\":");
    uuid(&mut out, service_id);
    out.extend_from_slice(b",\"time_zone\":");
    // The zone's name is configuration: escape it as serde would.
    if serde_json::to_writer(&mut out, time_zone).is_err() {
        out.extend_from_slice(b"\"\"");
    }
    out.extend_from_slice(b",\"slots\":[");
    for (i, slot) in slots.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"start\":\"");
        utc(&mut out, slot.start);
        out.extend_from_slice(b"\",\"end\":\"");
        utc(&mut out, slot.end);
        out.extend_from_slice(b"\",\"local_start\":\"");
        local(&mut out, slot.start, tz);
        out.extend_from_slice(b"\",\"practitioner_id\":");
        uuid(&mut out, slot.practitioner_id);
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    out
}

fn uuid(out: &mut Vec<u8>, id: Uuid) {
    let mut buffer = Uuid::encode_buffer();
    out.push(b'"');
    out.extend_from_slice(id.hyphenated().encode_lower(&mut buffer).as_bytes());
    out.push(b'"');
}

/// RFC 3339 in UTC with `Z`, whole seconds: `DateTime::to_rfc3339_opts(Secs, true)`.
fn utc(out: &mut Vec<u8>, at: DateTime<Utc>) {
    if !date_time(out, at.naive_utc()) {
        out.extend_from_slice(at.to_rfc3339_opts(SecondsFormat::Secs, true).as_bytes());
        return;
    }
    out.push(b'Z');
}

/// RFC 3339 in `tz` with its offset, whole seconds: `to_rfc3339_opts(Secs, false)`.
fn local(out: &mut Vec<u8>, at: DateTime<Utc>, tz: Tz) {
    let utc = at.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    let written = utc
        .checked_add_offset(offset)
        .is_some_and(|wall| date_time(out, wall));
    if !written {
        let text = at
            .with_timezone(&tz)
            .to_rfc3339_opts(SecondsFormat::Secs, false);
        out.extend_from_slice(text.as_bytes());
        return;
    }
    // As chrono writes an offset to the minute: seconds rounded to the nearest minute.
    let seconds = offset.local_minus_utc();
    out.push(if seconds < 0 { b'-' } else { b'+' });
    let minutes = (seconds.unsigned_abs() + 30) / 60;
    two_digits(out, minutes / 60);
    out.push(b':');
    two_digits(out, minutes % 60);
}

/// `YYYY-MM-DDTHH:MM:SS`, or nothing and `false` for a year chrono would write otherwise
/// (outside 0–9999, with a sign) — the caller then lets chrono write the whole timestamp.
fn date_time(out: &mut Vec<u8>, t: NaiveDateTime) -> bool {
    let Ok(year) = u32::try_from(t.year()) else {
        return false;
    };
    if year > 9999 {
        return false;
    }
    two_digits(out, year / 100);
    two_digits(out, year % 100);
    out.push(b'-');
    two_digits(out, t.month());
    out.push(b'-');
    two_digits(out, t.day());
    out.push(b'T');
    two_digits(out, t.hour());
    out.push(b':');
    two_digits(out, t.minute());
    out.push(b':');
    // A leap second (nanoseconds past 1e9) is second 60, as chrono writes it.
    let leap = u32::from(t.nanosecond() >= 1_000_000_000);
    two_digits(out, t.second() + leap);
    true
}

/// `n` (below 100) as two digits.
fn two_digits(out: &mut Vec<u8>, n: u32) {
    let n = n % 100;
    out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;
    use crate::http::api::availability::{Availability, slot_object};

    fn serde_bytes(service_id: Uuid, time_zone: &str, tz: Tz, slots: &[Slot]) -> Vec<u8> {
        serde_json::to_vec(&Availability {
            service_id,
            time_zone: time_zone.to_string(),
            slots: slots.iter().map(|s| slot_object(s, tz)).collect(),
        })
        .expect("serialises")
    }

    const ZONES: [&str; 7] = [
        "Europe/London",
        "UTC",
        "America/St_Johns",
        "Australia/Lord_Howe",
        "Asia/Kathmandu",
        "Pacific/Kiritimati",
        "America/Los_Angeles",
    ];

    proptest! {
        #[test]
        fn the_bytes_are_what_serde_writes_for_the_answer(
            zone in proptest::sample::select(ZONES.to_vec()),
            // 1900 to 2300: offsets with seconds (local mean time) and both clock changes.
            starts in proptest::collection::vec(-2_208_988_800i64..10_413_792_000, 0..20),
            minutes in 1i64..600,
            ids in proptest::collection::vec(any::<u128>(), 1..4),
        ) {
            let tz: Tz = zone.parse().expect("a known zone");
            let slots: Vec<Slot> = starts
                .iter()
                .enumerate()
                .map(|(i, &s)| {
                    let start = Utc.timestamp_opt(s, 0).single().expect("in range");
                    Slot {
                        start,
                        end: start + chrono::Duration::minutes(minutes),
                        practitioner_id: Uuid::from_u128(ids[i % ids.len()]),
                    }
                })
                .collect();
            let service = Uuid::from_u128(ids[0]);
            prop_assert_eq!(
                String::from_utf8(availability(service, zone, tz, &slots)).expect("utf-8"),
                String::from_utf8(serde_bytes(service, zone, tz, &slots)).expect("utf-8")
            );
        }
    }

    #[test]
    fn an_empty_week_and_a_name_that_needs_escaping_match_serde() {
        let service = Uuid::from_u128(7);
        let tz = chrono_tz::Europe::London;
        for name in ["Europe/London", "odd \"name\"\\\n"] {
            assert_eq!(
                availability(service, name, tz, &[]),
                serde_bytes(service, name, tz, &[])
            );
        }
    }

    #[test]
    fn years_past_9999_fall_back_to_chrono() {
        let start = Utc
            .with_ymd_and_hms(10_000, 1, 1, 9, 0, 0)
            .single()
            .expect("in range");
        let slots = [Slot {
            start,
            end: start + chrono::Duration::minutes(30),
            practitioner_id: Uuid::from_u128(1),
        }];
        let tz = chrono_tz::Asia::Kathmandu;
        let service = Uuid::from_u128(2);
        assert_eq!(
            availability(service, "Asia/Kathmandu", tz, &slots),
            serde_bytes(service, "Asia/Kathmandu", tz, &slots)
        );
    }
}
