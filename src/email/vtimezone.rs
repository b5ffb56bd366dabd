//! The VTIMEZONE component (RFC 5545 §3.6.5) of the clinic's zone, built from chrono-tz's
//! own transitions over a span, so that an invitation with `DTSTART;TZID=…` carries the exact
//! rules it was made with: one STANDARD or DAYLIGHT sub-component per change of offset.

use chrono::{DateTime, Duration, FixedOffset, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

/// One change of the zone's offset.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Transition {
    at: DateTime<Utc>,
    from: FixedOffset,
    to: FixedOffset,
    daylight: bool,
    name: String,
}

fn offset_at(tz: Tz, at: DateTime<Utc>) -> (FixedOffset, bool, String) {
    let offset = tz.offset_from_utc_datetime(&at.naive_utc());
    (
        offset.fix(),
        offset.dst_offset() != Duration::zero(),
        offset.abbreviation().unwrap_or_default().to_string(),
    )
}

/// Every offset change in [from, until], found day by day and narrowed to the second.
fn transitions(tz: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<Transition> {
    let mut out = Vec::new();
    let mut t = from;
    let mut current = offset_at(tz, t).0;
    while t < until {
        let next = t + Duration::hours(6);
        let (offset, _, _) = offset_at(tz, next);
        if offset != current {
            // The change lies in (t, next]: bisect to the first second of the new offset.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::seconds(1) {
                let mid = lo + (hi - lo) / 2;
                if offset_at(tz, mid).0 == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            let (to, daylight, name) = offset_at(tz, hi);
            out.push(Transition {
                at: hi,
                from: current,
                to,
                daylight,
                name,
            });
            current = offset;
        }
        t = next;
    }
    out
}

/// `+0100`, `-0430`.
fn utc_offset(offset: FixedOffset) -> String {
    let secs = offset.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.abs();
    format!("{sign}{:02}{:02}", secs / 3600, (secs % 3600) / 60)
}

/// The zone's VTIMEZONE lines for events between `first` and `last`: the change in effect at
/// `first` (looked for up to a year and a half back) and every change up to `last`. A zone
/// without changes gets one STANDARD component with its fixed offset.
pub fn lines(tz: Tz, first: DateTime<Utc>, last: DateTime<Utc>) -> Vec<String> {
    let from = first - Duration::days(550);
    let found = transitions(tz, from, last + Duration::days(1));
    // Keep the last change before `first` (the rule in effect at DTSTART) and all after it.
    let before = found.iter().rposition(|t| t.at <= first).unwrap_or(0);
    let mut out = vec!["BEGIN:VTIMEZONE".to_string(), format!("TZID:{}", tz.name())];
    if found.is_empty() {
        let (offset, _, name) = offset_at(tz, first);
        out.extend([
            "BEGIN:STANDARD".to_string(),
            "DTSTART:19700101T000000".to_string(),
            format!("TZOFFSETFROM:{}", utc_offset(offset)),
            format!("TZOFFSETTO:{}", utc_offset(offset)),
        ]);
        if !name.is_empty() {
            out.push(format!("TZNAME:{name}"));
        }
        out.push("END:STANDARD".to_string());
    }
    for t in &found[before.min(found.len())..] {
        let kind = if t.daylight { "DAYLIGHT" } else { "STANDARD" };
        // DTSTART of a sub-component is the onset in the local time before it (§3.6.5).
        let onset = t.at.with_timezone(&t.from).naive_local();
        out.push(format!("BEGIN:{kind}"));
        out.push(format!("DTSTART:{}", onset.format("%Y%m%dT%H%M%S")));
        out.push(format!("TZOFFSETFROM:{}", utc_offset(t.from)));
        out.push(format!("TZOFFSETTO:{}", utc_offset(t.to)));
        if !t.name.is_empty() {
            out.push(format!("TZNAME:{}", t.name));
        }
        out.push(format!("END:{kind}"));
    }
    out.push("END:VTIMEZONE".to_string());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn london_has_its_march_and_october_changes_at_one_utc() {
        let tz = chrono_tz::Europe::London;
        let first = Utc.with_ymd_and_hms(2027, 3, 16, 9, 0, 0).single().unwrap();
        let last = Utc.with_ymd_and_hms(2027, 11, 9, 9, 0, 0).single().unwrap();
        let text = lines(tz, first, last).join("\n");
        // The change in effect at the first start (October 2026), then March and October 2027.
        assert!(text.contains("BEGIN:STANDARD\nDTSTART:20261025T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0000\nTZNAME:GMT"), "{text}");
        assert!(text.contains("BEGIN:DAYLIGHT\nDTSTART:20270328T010000\nTZOFFSETFROM:+0000\nTZOFFSETTO:+0100\nTZNAME:BST"), "{text}");
        assert!(
            text.contains("DTSTART:20271031T020000\nTZOFFSETFROM:+0100"),
            "{text}"
        );
    }

    #[test]
    fn a_zone_without_changes_has_one_fixed_standard_component() {
        let first = Utc.with_ymd_and_hms(2027, 3, 16, 9, 0, 0).single().unwrap();
        let text = lines(chrono_tz::Asia::Tokyo, first, first).join("\n");
        assert!(
            text.contains("TZOFFSETFROM:+0900\nTZOFFSETTO:+0900"),
            "{text}"
        );
        assert_eq!(text.matches("BEGIN:STANDARD").count(), 1);
    }
}
