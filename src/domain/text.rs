//! Text value types: a name that cannot carry CR/LF into an email header is a type, not a
//! check someone may forget.

use super::FieldError;

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// Trims and checks a single-line text field: no control characters, 1..=max characters.
pub fn single_line(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, "must not be empty"));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if has_control(value) {
        return Err(FieldError::new(
            field,
            "must not contain control characters such as line breaks",
        ));
    }
    Ok(value.to_string())
}

/// Checks a multi-line text field: line breaks and tabs allowed, other control characters not.
pub fn multi_line(field: &str, value: &str, max: usize) -> Result<String, FieldError> {
    let value = value.trim();
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(value.to_string())
}

/// A person's display name: safe to put in an email header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub const MAX_LEN: usize = 100;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        single_line(field, value, Self::MAX_LEN).map(Self)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A syntactically valid email address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX_LEN: usize = 254;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = single_line(field, value, Self::MAX_LEN)?.to_lowercase();
        let invalid = || FieldError::new(field, "must be a valid email address");
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        if local.is_empty()
            || domain.is_empty()
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || value
                .chars()
                .any(|c| c.is_whitespace() || "<>(),;:\"[]\\".contains(c))
            || value.parse::<lettre::Address>().is_err()
        {
            return Err(invalid());
        }
        Ok(Self(value))
    }

    /// `admin@localhost`, the first-run admin account when none is configured; the one
    /// address without a dotted domain that the service accepts.
    pub fn local_admin() -> Self {
        Self("admin@localhost".to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part after `@`: what logs may show instead of the address.
    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A phone number: digits with the usual separators and an optional leading `+`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = single_line(field, value, 32)?;
        let digits = value.chars().filter(char::is_ascii_digit).count();
        let allowed = value
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || " -().".contains(c) || (c == '+' && i == 0));
        if !allowed || !(7..=15).contains(&digits) {
            return Err(FieldError::new(
                field,
                "must be a phone number of 7 to 15 digits",
            ));
        }
        Ok(Self(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A URL-safe identifier: lower-case letters, digits and single hyphens.
pub fn slug(field: &str, value: &str) -> Result<String, FieldError> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= 60
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-')
        && !value.contains("--");
    if ok {
        Ok(value.to_string())
    } else {
        Err(FieldError::new(
            field,
            "must be 1-60 lower-case letters, digits and single hyphens",
        ))
    }
}

/// Derives a slug from a display name ("Sports Massage (60)" → "sports-massage-60").
pub fn slugify(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    trimmed
        .chars()
        .take(60)
        .collect::<String>()
        .trim_end_matches('-')
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_with_line_breaks_are_rejected() {
        for bad in ["Eve\r\nBcc: x@y.z", "Eve\nX", "Eve\rX", "Eve\u{0}", ""] {
            assert!(PersonName::parse("name", bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            PersonName::parse("name", "  Ana María O'Neill ")
                .unwrap()
                .as_str(),
            "Ana María O'Neill"
        );
    }

    #[test]
    fn emails_are_checked_and_lower_cased() {
        assert_eq!(
            EmailAddress::parse("email", "Jo@Example.COM")
                .unwrap()
                .as_str(),
            "jo@example.com"
        );
        for bad in [
            "jo",
            "jo@",
            "@x.com",
            "jo@x",
            "jo @x.com",
            "a<b>@x.com",
            "jo@x.com\nBcc: a@b.c",
        ] {
            assert!(EmailAddress::parse("email", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn phones_allow_separators_but_not_letters() {
        assert!(PhoneNumber::parse("phone", "+44 (0)20 7946-0000").is_ok());
        for bad in ["12345", "call me", "+44 20 7946 0000 ext 5", "0+44123456"] {
            assert!(PhoneNumber::parse("phone", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn slugs_are_derived_from_names() {
        assert_eq!(slugify("Sports Massage (60 min)"), "sports-massage-60-min");
        assert!(slug("slug", &slugify("Physio — Initial")).is_ok());
        assert!(slug("slug", "Bad Slug").is_err());
    }
}
