//! Enquiry rules: the vocabulary of topics and statuses, the allowed status moves, and the
//! parsing of a contact-form submission.

use super::{
    FieldError,
    catalogue::vocabulary,
    text::{self, EmailAddress, PersonName, PhoneNumber},
};

vocabulary!(
    /// What an enquiry is about.
    Topic {
        Physio = "physio",
        SportsMassage = "sports_massage",
        PersonalTraining = "personal_training",
        Pilates = "pilates",
        General = "general",
    }
);

vocabulary!(
    /// How the enquirer would like to be answered.
    PreferredContact {
        Email = "email",
        Phone = "phone",
    }
);

vocabulary!(
    /// Where an enquiry is in the inbox.
    EnquiryStatus {
        New = "new",
        InProgress = "in_progress",
        Closed = "closed",
        Spam = "spam",
    }
);

impl EnquiryStatus {
    /// new → in_progress → closed; anything may be marked spam; closed reopens to
    /// in_progress; spam goes back to new when it was a mistake.
    pub fn may_become(self, next: EnquiryStatus) -> bool {
        use EnquiryStatus::*;
        self == next
            || matches!(
                (self, next),
                (New, InProgress)
                    | (New, Closed)
                    | (InProgress, Closed)
                    | (Closed, InProgress)
                    | (_, Spam)
                    | (Spam, New)
            )
    }
}

pub const MESSAGE_MIN: usize = 10;
pub const MESSAGE_MAX: usize = 5000;

/// A contact-form submission, parsed once.
#[derive(Debug, Clone)]
pub struct NewEnquiry {
    pub name: PersonName,
    pub email: EmailAddress,
    pub phone: Option<PhoneNumber>,
    pub topic: Topic,
    pub message: String,
    pub preferred_contact: PreferredContact,
    pub marketing_consent: bool,
}

/// The raw fields of the form, as received.
pub struct EnquiryForm<'a> {
    pub name: &'a str,
    pub email: &'a str,
    pub phone: Option<&'a str>,
    pub topic: Topic,
    pub message: &'a str,
    pub preferred_contact: PreferredContact,
    pub privacy_consent: bool,
    pub marketing_consent: bool,
}

impl NewEnquiry {
    pub fn parse(form: EnquiryForm<'_>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let name = PersonName::parse("name", form.name).map_err(|e| errors.push(e));
        let email = EmailAddress::parse("email", form.email).map_err(|e| errors.push(e));
        let phone = match form.phone.map(str::trim).filter(|p| !p.is_empty()) {
            Some(p) => PhoneNumber::parse("phone", p)
                .map(Some)
                .map_err(|e| errors.push(e)),
            None => Ok(None),
        };
        let message = text::multi_line("message", form.message, MESSAGE_MAX)
            .and_then(|m| {
                if m.chars().count() < MESSAGE_MIN {
                    Err(FieldError::new(
                        "message",
                        format!("must be at least {MESSAGE_MIN} characters"),
                    ))
                } else {
                    Ok(m)
                }
            })
            .map_err(|e| errors.push(e));
        if form.preferred_contact == PreferredContact::Phone && matches!(phone, Ok(None)) {
            errors.push(FieldError::new(
                "phone",
                "is needed when the preferred contact is phone",
            ));
        }
        if !form.privacy_consent {
            errors.push(FieldError::new(
                "consent.privacy",
                "must be true: we need your agreement to hold your details",
            ));
        }
        match (name, email, phone, message) {
            (Ok(name), Ok(email), Ok(phone), Ok(message)) if errors.is_empty() => Ok(Self {
                name,
                email,
                phone,
                topic: form.topic,
                message,
                preferred_contact: form.preferred_contact,
                marketing_consent: form.marketing_consent,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form<'a>(
        message: &'a str,
        phone: Option<&'a str>,
        contact: PreferredContact,
    ) -> EnquiryForm<'a> {
        EnquiryForm {
            name: "Sam Taylor",
            email: "sam@example.com",
            phone,
            topic: Topic::Physio,
            message,
            preferred_contact: contact,
            privacy_consent: true,
            marketing_consent: false,
        }
    }

    #[test]
    fn messages_must_be_ten_to_five_thousand_characters() {
        assert!(NewEnquiry::parse(form("Too short", None, PreferredContact::Email)).is_err());
        assert!(NewEnquiry::parse(form("Long enough now", None, PreferredContact::Email)).is_ok());
        let long = "x".repeat(MESSAGE_MAX + 1);
        assert!(NewEnquiry::parse(form(&long, None, PreferredContact::Email)).is_err());
    }

    #[test]
    fn phone_contact_needs_a_phone_number() {
        let errors = NewEnquiry::parse(form("Please call me back", None, PreferredContact::Phone))
            .expect_err("no phone");
        assert_eq!(errors[0].field, "phone");
        assert!(
            NewEnquiry::parse(form(
                "Please call me back",
                Some("07700 900123"),
                PreferredContact::Phone
            ))
            .is_ok()
        );
    }

    #[test]
    fn status_moves_follow_the_inbox_flow() {
        use EnquiryStatus::*;
        assert!(New.may_become(InProgress));
        assert!(InProgress.may_become(Closed));
        assert!(Closed.may_become(Spam));
        assert!(Spam.may_become(New));
        assert!(!Closed.may_become(New));
        assert!(!Spam.may_become(Closed));
    }
}
