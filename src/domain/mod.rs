//! Domain logic: value types parsed once at the edge, and the pure rules of the clinic.
//! Nothing in here does I/O or reads the clock.

pub mod availability;
pub mod booking;
pub mod catalogue;
pub mod classes;
pub mod enquiry;
pub mod hours;
pub mod localtime;
pub mod policy;
pub mod rulebook;
pub mod series;
pub mod text;
pub mod waitlist;

/// One field that failed validation, with a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
