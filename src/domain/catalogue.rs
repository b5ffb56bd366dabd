//! The clinic's catalogue vocabulary: service categories and practitioner disciplines,
//! stored in the database with the same spelling as in the API.

/// Declares a closed vocabulary with one spelling shared by the API and the database.
macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::poem_openapi::Enum)]
        pub enum $name {
            $(#[oai(rename = $text)] $variant),+
        }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some(Self::$variant),)+ _ => None }
            }
        }
    };
}
pub(crate) use vocabulary;

vocabulary!(
    /// What kind of session a service is.
    ServiceCategory {
        Physio = "physio",
        SportsMassage = "sports_massage",
        PersonalTraining = "personal_training",
        Pilates = "pilates",
        Other = "other",
    }
);

vocabulary!(
    /// A practitioner's profession.
    Discipline {
        Physiotherapist = "physiotherapist",
        SportsTherapist = "sports_therapist",
        MassageTherapist = "massage_therapist",
        PersonalTrainer = "personal_trainer",
        PilatesInstructor = "pilates_instructor",
        Other = "other",
    }
);

vocabulary!(
    /// A staff member's role: what they may see and change.
    Role {
        Admin = "admin",
        Reception = "reception",
        Practitioner = "practitioner",
    }
);
