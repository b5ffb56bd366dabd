//! Booking rules that need no database: references, statuses, consent and change deadlines.

use chrono::{DateTime, Duration, Utc};

use super::{
    FieldError,
    catalogue::vocabulary,
    text::{self, EmailAddress, PersonName, PhoneNumber},
};

vocabulary!(
    /// Where a booking is in its life.
    BookingStatus {
        Confirmed = "confirmed",
        Arrived = "arrived",
        Completed = "completed",
        NoShow = "no_show",
        Cancelled = "cancelled",
    }
);

/// Crockford's base32 alphabet: no I, L, O or U, so references read aloud without confusion.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new booking reference: 8 Crockford base32 characters (40 random bits).
pub fn new_reference() -> String {
    let mut bytes = [0u8; 8];
    rand::fill(&mut bytes);
    bytes
        .iter()
        .map(|b| char::from(CROCKFORD[usize::from(b & 31)]))
        .collect()
}

/// The patient details of a booking request, parsed once.
#[derive(Debug, Clone)]
pub struct PatientDetails {
    pub name: PersonName,
    pub email: EmailAddress,
    pub phone: Option<PhoneNumber>,
    pub marketing_consent: bool,
}

pub const NOTES_MAX: usize = 2000;

impl PatientDetails {
    /// Parses the `patient` and `consent` parts of a booking; collects every field error.
    pub fn parse(
        name: &str,
        email: &str,
        phone: Option<&str>,
        privacy_consent: bool,
        marketing_consent: bool,
        errors: &mut Vec<FieldError>,
    ) -> Option<Self> {
        let name = PersonName::parse("patient.name", name).map_err(|e| errors.push(e));
        let email = EmailAddress::parse("patient.email", email).map_err(|e| errors.push(e));
        let phone = match phone.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => PhoneNumber::parse("patient.phone", p)
                .map(Some)
                .map_err(|e| errors.push(e)),
            None => Ok(None),
        };
        if !privacy_consent {
            errors.push(FieldError::new(
                "consent.privacy",
                "must be true: we need your agreement to hold your details",
            ));
        }
        Some(Self {
            name: name.ok()?,
            email: email.ok()?,
            phone: phone.ok()?,
            marketing_consent,
        })
        .filter(|_| privacy_consent)
    }
}

/// Parses free-text notes: up to 2,000 characters, line breaks allowed.
pub fn parse_notes(notes: Option<&str>) -> Result<String, FieldError> {
    text::multi_line("notes", notes.unwrap_or(""), NOTES_MAX)
}

/// The last instant at which a patient may change a booking that starts at `start`.
pub fn change_deadline(start: DateTime<Utc>, notice_hours: u32) -> DateTime<Utc> {
    start - Duration::hours(i64::from(notice_hours))
}

/// Whether a patient may still cancel or move a booking in `status` starting at `start`.
pub fn patient_may_change(
    status: BookingStatus,
    start: DateTime<Utc>,
    notice_hours: u32,
    now: DateTime<Utc>,
) -> bool {
    status == BookingStatus::Confirmed && now <= change_deadline(start, notice_hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_are_eight_unambiguous_characters() {
        for _ in 0..200 {
            let r = new_reference();
            assert_eq!(r.len(), 8);
            assert!(r.chars().all(|c| CROCKFORD.contains(&(c as u8))), "{r}");
            assert!(!r.contains(['I', 'L', 'O', 'U']));
        }
        assert_ne!(new_reference(), new_reference());
    }

    #[test]
    fn changes_are_allowed_up_to_the_deadline_exactly() {
        let start = "2026-12-01T10:00:00Z"
            .parse::<DateTime<Utc>>()
            .expect("time");
        let deadline = change_deadline(start, 24);
        let confirmed = BookingStatus::Confirmed;
        assert!(patient_may_change(confirmed, start, 24, deadline));
        assert!(!patient_may_change(
            confirmed,
            start,
            24,
            deadline + Duration::seconds(1)
        ));
        assert!(!patient_may_change(
            BookingStatus::Cancelled,
            start,
            24,
            deadline - Duration::days(1)
        ));
    }

    #[test]
    fn patient_details_need_privacy_consent_and_clean_fields() {
        let mut errors = Vec::new();
        assert!(
            PatientDetails::parse("Jo", "jo@example.com", None, true, false, &mut errors).is_some()
        );
        assert!(errors.is_empty());
        let parsed = PatientDetails::parse(
            "Jo\r\nBcc: x",
            "nope",
            Some("abc"),
            false,
            false,
            &mut errors,
        );
        assert!(parsed.is_none());
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "patient.name",
                "patient.email",
                "patient.phone",
                "consent.privacy"
            ]
        );
    }
}
