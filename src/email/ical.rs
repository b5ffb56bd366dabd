//! RFC 5545 iCalendar: invitations for booking emails (`METHOD:REQUEST` for a confirmed or
//! moved booking, `METHOD:CANCEL` for a cancelled one) and the practitioners' subscription
//! feeds (`METHOD:PUBLISH`). One stable UID per booking in both, so calendar clients update
//! the same event; times in UTC; lines folded at 75 octets with CRLF endings.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::vtimezone;

/// The iTIP method of an invitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Request,
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

/// What a calendar event about one booking says.
#[derive(Debug, Clone)]
pub struct Invite<'a> {
    pub method: Method,
    pub appointment_id: Uuid,
    /// Incremented on every change of the booking; clients apply the highest.
    pub sequence: i32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// When this version of the event was made.
    pub stamp: DateTime<Utc>,
    pub summary: &'a str,
    pub location: &'a str,
    pub description: &'a str,
    pub organizer_name: &'a str,
    pub organizer_email: &'a str,
    pub attendee_name: &'a str,
    pub attendee_email: &'a str,
    /// For a course of treatment: the whole series, or one occurrence of it.
    pub recurrence: Option<Recurrence<'a>>,
}

/// How an invitation belongs to a series: the series' one recurring event (local times with
/// the clinic's TZID, RRULE, EXDATE for skipped dates), or one occurrence of it changed or
/// cancelled (RECURRENCE-ID = the start it was first booked at).
#[derive(Debug, Clone, Copy)]
pub enum Recurrence<'a> {
    Series {
        series_id: Uuid,
        tz: Tz,
        every_weeks: u32,
        /// `COUNT`; otherwise `until`.
        count: Option<u32>,
        until: Option<DateTime<Utc>>,
        /// The last start the rule gives, for the zone's transitions.
        last_start: DateTime<Utc>,
        skipped: &'a [DateTime<Utc>],
    },
    Occurrence {
        series_id: Uuid,
        tz: Tz,
        recurrence_id: DateTime<Utc>,
    },
}

/// The UID of a series' recurring event.
pub fn series_uid(series_id: Uuid) -> String {
    format!("series-{series_id}@frontdesk")
}

/// `20270316T090000`: a local time in `tz`, for a `;TZID=` property.
fn local(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y%m%dT%H%M%S").to_string()
}

/// The UID of every event about one booking.
pub fn uid(appointment_id: Uuid) -> String {
    format!("{appointment_id}@frontdesk")
}

/// The iCalendar object, CRLF-terminated and folded.
pub fn render(invite: &Invite<'_>) -> String {
    let status = match invite.method {
        Method::Request => "CONFIRMED",
        Method::Cancel => "CANCELLED",
    };
    let mut lines = vec![
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//Frontdesk//Clinic bookings//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        format!("METHOD:{}", invite.method.as_str()),
    ];
    match invite.recurrence {
        None => lines.extend([
            "BEGIN:VEVENT".to_string(),
            format!("UID:{}", uid(invite.appointment_id)),
            format!("SEQUENCE:{}", invite.sequence.max(0)),
            format!("DTSTAMP:{}", utc(invite.stamp)),
            format!("DTSTART:{}", utc(invite.start)),
            format!("DTEND:{}", utc(invite.end)),
        ]),
        Some(Recurrence::Series {
            series_id,
            tz,
            every_weeks,
            count,
            until,
            last_start,
            skipped,
        }) => {
            lines.extend(vtimezone::lines(tz, invite.start, last_start));
            let zone = tz.name();
            let end = match (count, until) {
                (Some(n), _) => format!("COUNT={n}"),
                (None, Some(u)) => format!("UNTIL={}", utc(u)),
                (None, None) => "COUNT=1".to_string(),
            };
            lines.extend([
                "BEGIN:VEVENT".to_string(),
                format!("UID:{}", series_uid(series_id)),
                format!("SEQUENCE:{}", invite.sequence.max(0)),
                format!("DTSTAMP:{}", utc(invite.stamp)),
                format!("DTSTART;TZID={zone}:{}", local(invite.start, tz)),
                format!("DTEND;TZID={zone}:{}", local(invite.end, tz)),
                format!("RRULE:FREQ=WEEKLY;INTERVAL={every_weeks};{end}"),
            ]);
            if !skipped.is_empty() {
                let dates: Vec<String> = skipped.iter().map(|t| local(*t, tz)).collect();
                lines.push(format!("EXDATE;TZID={zone}:{}", dates.join(",")));
            }
        }
        Some(Recurrence::Occurrence {
            series_id,
            tz,
            recurrence_id,
        }) => {
            lines.extend(vtimezone::lines(
                tz,
                invite.start.min(recurrence_id),
                invite.start.max(recurrence_id),
            ));
            let zone = tz.name();
            lines.extend([
                "BEGIN:VEVENT".to_string(),
                format!("UID:{}", series_uid(series_id)),
                format!("RECURRENCE-ID;TZID={zone}:{}", local(recurrence_id, tz)),
                format!("SEQUENCE:{}", invite.sequence.max(0)),
                format!("DTSTAMP:{}", utc(invite.stamp)),
                format!("DTSTART;TZID={zone}:{}", local(invite.start, tz)),
                format!("DTEND;TZID={zone}:{}", local(invite.end, tz)),
            ]);
        }
    }
    lines.extend([
        format!("SUMMARY:{}", text(invite.summary)),
        format!("LOCATION:{}", text(invite.location)),
        format!("DESCRIPTION:{}", text(invite.description)),
        format!(
            "ORGANIZER;CN={}:mailto:{}",
            param(invite.organizer_name),
            uri(invite.organizer_email)
        ),
        format!(
            "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED;RSVP=FALSE:mailto:{}",
            param(invite.attendee_name),
            uri(invite.attendee_email)
        ),
        format!("STATUS:{status}"),
        "TRANSP:OPAQUE".to_string(),
        "END:VEVENT".to_string(),
        "END:VCALENDAR".to_string(),
    ]);
    let mut out = String::new();
    for line in &lines {
        fold_into(&mut out, line);
    }
    out
}

/// The UID of a class session in its instructor's feed (seat holders' invitations use the
/// seat's id, as bookings use theirs).
pub fn class_uid(session_id: Uuid) -> String {
    format!("class-{session_id}@frontdesk")
}

/// The UID of a practitioner's time-off period in their feed.
pub fn time_off_uid(time_off_id: Uuid) -> String {
    format!("time-off-{time_off_id}@frontdesk")
}

/// The UID of a clinic closure in the feeds.
pub fn closure_uid(closure_id: Uuid) -> String {
    format!("closure-{closure_id}@frontdesk")
}

/// A calendar that clients subscribe to and poll (`METHOD:PUBLISH`).
#[derive(Debug, Clone)]
pub struct Feed<'a> {
    /// Shown as the calendar's name (`X-WR-CALNAME`).
    pub name: &'a str,
    pub events: &'a [FeedEvent],
}

/// One event of a feed.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    pub uid: String,
    pub sequence: i32,
    /// When this version of the event was last changed.
    pub stamp: DateTime<Utc>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub summary: String,
    pub description: String,
    /// `STATUS:CANCELLED` and free time instead of `STATUS:CONFIRMED` and busy.
    pub cancelled: bool,
}

/// The feed, CRLF-terminated and folded.
pub fn render_feed(feed: &Feed<'_>) -> String {
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//Frontdesk//Clinic bookings//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        "METHOD:PUBLISH".to_string(),
        format!("X-WR-CALNAME:{}", text(feed.name)),
        // Hints for how often to poll (Outlook; RFC 7986); Google polls on its own schedule.
        "X-PUBLISHED-TTL:PT15M".to_string(),
        "REFRESH-INTERVAL;VALUE=DURATION:PT15M".to_string(),
    ] {
        fold_into(&mut out, &line);
    }
    for event in feed.events {
        let (status, transparency) = if event.cancelled {
            ("CANCELLED", "TRANSPARENT")
        } else {
            ("CONFIRMED", "OPAQUE")
        };
        let mut lines = vec![
            "BEGIN:VEVENT".to_string(),
            format!("UID:{}", text(&event.uid)),
            format!("SEQUENCE:{}", event.sequence.max(0)),
            format!("DTSTAMP:{}", utc(event.stamp)),
            format!("DTSTART:{}", utc(event.start)),
            format!("DTEND:{}", utc(event.end)),
            format!("SUMMARY:{}", text(&event.summary)),
        ];
        if !event.description.is_empty() {
            lines.push(format!("DESCRIPTION:{}", text(&event.description)));
        }
        lines.extend([
            format!("STATUS:{status}"),
            format!("TRANSP:{transparency}"),
            "END:VEVENT".to_string(),
        ]);
        for line in &lines {
            fold_into(&mut out, line);
        }
    }
    fold_into(&mut out, "END:VCALENDAR");
    out
}

/// `20261126T093000Z`.
fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// A TEXT value (RFC 5545 §3.3.11): backslash, semicolon and comma escaped, line breaks as
/// `\n`, other control characters dropped.
pub fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// A parameter value, always quoted: a quoted-string may hold anything but control
/// characters and DQUOTE (§3.1), so those are dropped.
fn param(value: &str) -> String {
    let clean: String = value
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .collect();
    format!("\"{}\"", clean.trim())
}

/// An address inside a `mailto:` URI: nothing that could end the line or the value.
fn uri(address: &str) -> String {
    address
        .chars()
        .filter(|c| !c.is_control() && !c.is_whitespace() && !matches!(c, '"' | ';' | ','))
        .collect()
}

/// Appends `line` folded at 75 octets (§3.1): continuation lines start with one space, which
/// counts towards their 75, and a fold never splits a UTF-8 character.
fn fold_into(out: &mut String, line: &str) {
    const LIMIT: usize = 75;
    let mut used = 0;
    for c in line.chars() {
        let width = c.len_utf8();
        if used + width > LIMIT {
            out.push_str("\r\n ");
            used = 1;
        }
        out.push(c);
        used += width;
    }
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn invite<'a>(method: Method, summary: &'a str, attendee: &'a str) -> Invite<'a> {
        let start = Utc
            .with_ymd_and_hms(2030, 3, 31, 8, 30, 0)
            .single()
            .expect("valid test instant");
        Invite {
            method,
            appointment_id: Uuid::nil(),
            sequence: 2,
            start,
            end: start + chrono::Duration::minutes(45),
            stamp: start - chrono::Duration::days(3),
            summary,
            location: "12 Riverside Walk, London; SE1",
            description: "Line one\nLine two",
            organizer_name: "Riverside \"Physio\"",
            organizer_email: "bookings@example.com",
            attendee_name: attendee,
            attendee_email: "pat@example.com",
            recurrence: None,
        }
    }

    fn unfold(ics: &str) -> String {
        ics.replace("\r\n ", "")
    }

    #[test]
    fn every_line_ends_in_crlf_and_is_at_most_75_octets() {
        let long = "Sports massage with a very long name ".repeat(6)
            + "ÅÉÎØÜ ✓ 日本語 ".repeat(8).as_str();
        let ics = render(&invite(Method::Request, &long, "Zoë Ångström"));
        assert!(ics.ends_with("\r\n"));
        for line in ics.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
            assert!(!line.contains('\n') && !line.contains('\r'));
        }
        assert!(
            !ics.replace("\r\n", "").contains('\n'),
            "bare LF in {ics:?}"
        );
        // Unfolding gives back the whole value, characters intact.
        let summary_line = unfold(&ics)
            .lines()
            .find(|l| l.starts_with("SUMMARY:"))
            .map(str::to_string)
            .expect("summary");
        assert_eq!(summary_line, format!("SUMMARY:{}", text(&long)));
    }

    #[test]
    fn a_fold_never_splits_a_multibyte_character() {
        // 74 ASCII octets then a 3-byte character: it must move to the next line whole.
        let mut out = String::new();
        let line = format!("{}€€", "x".repeat(74));
        fold_into(&mut out, &line);
        assert_eq!(out, format!("{}\r\n €€\r\n", "x".repeat(74)));
    }

    #[test]
    fn text_values_are_escaped() {
        assert_eq!(text("a\\b;c,d\ne\r\nf\u{7}"), "a\\\\b\\;c\\,d\\ne\\nf");
    }

    #[test]
    fn request_and_cancel_carry_method_status_uid_and_utc_times() {
        let request = unfold(&render(&invite(Method::Request, "Physio", "Pat")));
        assert!(request.contains("\r\nMETHOD:REQUEST\r\n"));
        assert!(request.contains("\r\nSTATUS:CONFIRMED\r\n"));
        assert!(request.contains("\r\nUID:00000000-0000-0000-0000-000000000000@frontdesk\r\n"));
        assert!(request.contains("\r\nSEQUENCE:2\r\n"));
        assert!(request.contains("\r\nDTSTART:20300331T083000Z\r\n"));
        assert!(request.contains("\r\nDTEND:20300331T091500Z\r\n"));
        assert!(request.contains("\r\nLOCATION:12 Riverside Walk\\, London\\; SE1\r\n"));
        assert!(
            request
                .contains("\r\nORGANIZER;CN=\"Riverside Physio\":mailto:bookings@example.com\r\n")
        );
        let cancel = unfold(&render(&invite(Method::Cancel, "Physio", "Pat")));
        assert!(cancel.contains("\r\nMETHOD:CANCEL\r\n"));
        assert!(cancel.contains("\r\nSTATUS:CANCELLED\r\n"));
    }

    #[test]
    fn a_real_parser_reads_back_what_was_written() {
        use icalendar::{Component, DatePerhapsTime};
        let long_summary = "Pilates, one-to-one; reformer \\ mat ".repeat(5);
        let written = invite(Method::Request, &long_summary, "Zoë Ångström");
        let ics = render(&written);
        let cal: icalendar::Calendar = ics.parse().expect("parses");
        assert_eq!(cal.property_value("METHOD"), Some("REQUEST"));
        let event = cal
            .components
            .iter()
            .find_map(|c| c.as_event())
            .expect("one event");
        assert_eq!(
            event.get_uid(),
            Some("00000000-0000-0000-0000-000000000000@frontdesk")
        );
        assert_eq!(event.get_sequence(), Some(2));
        assert_eq!(
            event.get_start(),
            Some(DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(
                written.start
            )))
        );
        assert_eq!(
            event.get_end(),
            Some(DatePerhapsTime::DateTime(icalendar::CalendarDateTime::Utc(
                written.end
            )))
        );
        assert_eq!(event.get_timestamp(), Some(written.stamp));
        assert_eq!(event.get_summary(), Some(long_summary.as_str()));
    }

    fn feed_event(uid: &str, summary: &str, cancelled: bool) -> FeedEvent {
        let start = Utc
            .with_ymd_and_hms(2030, 3, 31, 8, 30, 0)
            .single()
            .expect("valid test instant");
        FeedEvent {
            uid: uid.to_string(),
            sequence: 1,
            stamp: start - chrono::Duration::days(1),
            start,
            end: start + chrono::Duration::minutes(45),
            summary: summary.to_string(),
            description: "Reference ABCD2345".to_string(),
            cancelled,
        }
    }

    #[test]
    fn a_feed_is_published_folded_and_read_back_by_a_parser() {
        use icalendar::{Component, EventStatus};
        let long = "Sports massage, deep tissue; with a very long name ".repeat(3) + "— Zoë";
        let events = [
            feed_event("a@frontdesk", &long, false),
            feed_event("b@frontdesk", "Pilates — Sam", true),
        ];
        let ics = render_feed(&Feed {
            name: "Amara Okafor, Riverside",
            events: &events,
        });
        assert!(ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"));
        for line in ics.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        let unfolded = unfold(&ics);
        assert!(unfolded.contains("\r\nMETHOD:PUBLISH\r\n"));
        assert!(unfolded.contains("\r\nX-WR-CALNAME:Amara Okafor\\, Riverside\r\n"));
        let cal: icalendar::Calendar = ics.parse().expect("parses");
        let parsed: Vec<&icalendar::Event> =
            cal.components.iter().filter_map(|c| c.as_event()).collect();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].get_uid(), Some("a@frontdesk"));
        assert_eq!(parsed[0].get_summary(), Some(long.as_str()));
        assert_eq!(parsed[0].get_status(), Some(EventStatus::Confirmed));
        assert_eq!(parsed[1].get_status(), Some(EventStatus::Cancelled));
        assert_eq!(parsed[1].property_value("TRANSP"), Some("TRANSPARENT"));
    }

    #[test]
    fn a_name_cannot_break_out_of_its_parameter() {
        let ics = render(&invite(
            Method::Request,
            "Physio",
            "Eve\";ROLE=CHAIR:\r\nX-EVIL:1",
        ));
        let attendee = unfold(&ics)
            .lines()
            .find(|l| l.starts_with("ATTENDEE"))
            .map(str::to_string)
            .expect("attendee");
        assert!(attendee.starts_with("ATTENDEE;CN=\"Eve;ROLE=CHAIR:X-EVIL:1\";ROLE=REQ"));
        assert!(!ics.contains("\r\nX-EVIL"));
    }
}
