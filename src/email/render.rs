//! Email texts from the template files in `email.templates_dir`: for each kind of email a
//! one-line `{kind}.subject`, a plain-text `{kind}.txt` and an HTML `{kind}.html` (MiniJinja,
//! HTML auto-escaped). The folder is read once per process, at start-up, so a clinic can
//! restyle its emails by editing files and restarting, without recompiling.

use std::{
    collections::{BTreeMap, HashMap},
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use minijinja::{Environment, Value, syntax::SyntaxConfig};

use super::EmailKind;

/// A template folder that cannot be used, naming the file and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(String);

/// The three texts of one email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// One line, without control characters.
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The parsed templates of one folder.
pub struct Templates {
    env: Environment<'static>,
}

/// Variables a template sees, by name.
pub type Vars = BTreeMap<String, Value>;

impl Templates {
    /// The templates of `dir`, read and checked on first use and then kept for the process.
    pub fn for_dir(dir: &Path) -> Result<Arc<Templates>, TemplateError> {
        static CACHE: Mutex<Option<HashMap<PathBuf, Arc<Templates>>>> = Mutex::new(None);
        // A poisoned lock only means another thread panicked while inserting; the map is
        // still usable.
        let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        let map = cache.get_or_insert_with(HashMap::new);
        if let Some(found) = map.get(dir) {
            return Ok(found.clone());
        }
        let loaded = Arc::new(Self::load(dir)?);
        map.insert(dir.to_path_buf(), loaded.clone());
        Ok(loaded)
    }

    /// Reads every `.subject`, `.txt` and `.html` file of `dir`, checks that each kind of
    /// email has all three, and renders each once with sample values so that a broken
    /// template stops start-up instead of a booking.
    pub fn load(dir: &Path) -> Result<Templates, TemplateError> {
        let entries = std::fs::read_dir(dir)
            .map_err(|e| TemplateError(format!("cannot read {}: {e}", dir.display())))?;
        let mut env = Environment::new();
        let syntax = SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()
            .map_err(|e| TemplateError(e.to_string()))?;
        env.set_syntax(syntax);
        for entry in entries {
            let path = entry
                .map_err(|e| TemplateError(format!("cannot read {}: {e}", dir.display())))?
                .path();
            let Some(name) = path
                .file_name()
                .and_then(|n| n.to_str())
                .map(str::to_string)
            else {
                continue;
            };
            if !(name.ends_with(".subject") || name.ends_with(".txt") || name.ends_with(".html")) {
                continue;
            }
            let source = std::fs::read_to_string(&path)
                .map_err(|e| TemplateError(format!("cannot read {}: {e}", path.display())))?;
            env.add_template_owned(name.clone(), source)
                .map_err(|e| TemplateError(format!("{}: {e}", path.display())))?;
        }
        let templates = Templates { env };
        for kind in EmailKind::ALL {
            templates
                .render(kind, &sample_vars())
                .map_err(|e| TemplateError(format!("{}: {e}", dir.display())))?;
        }
        Ok(templates)
    }

    /// Renders the subject, text and HTML of `kind` with `vars`.
    pub fn render(&self, kind: EmailKind, vars: &Vars) -> Result<Rendered, TemplateError> {
        let ctx = Value::from(vars.clone());
        let one = |ext: &str| -> Result<String, TemplateError> {
            let name = format!("{}.{ext}", kind.as_str());
            self.env
                .get_template(&name)
                .and_then(|t| t.render(ctx.clone()))
                .map_err(|e| TemplateError(format!("{name}: {e}")))
        };
        Ok(Rendered {
            subject: one_line(&one("subject")?),
            text: with_final_newline(one("txt")?),
            html: with_final_newline(one("html")?),
        })
    }
}

/// A subject is one header line: control characters become spaces, runs of white space one
/// space, and it is cut to 200 characters.
pub fn one_line(text: &str) -> String {
    let spaced: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let words: Vec<&str> = spaced.split_whitespace().collect();
    words.join(" ").chars().take(200).collect()
}

fn with_final_newline(mut text: String) -> String {
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}

/// Every variable a template may use, with plausible values (for the start-up check).
fn sample_vars() -> Vars {
    let mut vars = Vars::new();
    for (key, value) in [
        ("clinic_name", "Clinic"),
        ("clinic_address", "1 High Street"),
        ("clinic_phone", "020 7946 0000"),
        ("clinic_email", "hello@example.com"),
        ("recipient_name", "Pat"),
        ("change", "confirmed"),
        ("reference", "FD-ABC123"),
        ("service", "Physiotherapy"),
        ("practitioner", "Sam"),
        ("patient_name", "Pat"),
        ("patient_email", "pat@example.com"),
        ("date", "Monday 2 March 2026"),
        ("time", "09:00"),
        ("end_time", "09:45"),
        ("zone", "GMT"),
        ("when", "Monday 2 March 2026 at 09:00 GMT"),
        ("manage_url", "https://example.com/manage/x"),
        ("book_url", "https://example.com/book"),
        ("previous_when", "Friday 27 February 2026 at 10:00 GMT"),
        ("reason", "Feeling better"),
        ("name", "Pat"),
        ("email", "pat@example.com"),
        ("phone", "07700 900000"),
        ("topic", "general"),
        ("message", "Hello"),
        ("preferred_contact", "email"),
    ] {
        vars.insert(key.to_string(), Value::from(value));
    }
    vars
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_one_clean_line() {
        assert_eq!(
            one_line("  Booking\r\nBcc: eve@example.com\t confirmed \u{0}"),
            "Booking Bcc: eve@example.com confirmed"
        );
        assert_eq!(one_line(&"x".repeat(300)).len(), 200);
    }

    #[test]
    fn the_shipped_templates_render_every_kind_and_escape_html() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let templates = Templates::load(&dir).expect("shipped templates load");
        let mut vars = sample_vars();
        vars.insert(
            "patient_name".to_string(),
            Value::from("<script>alert(1)</script>"),
        );
        vars.insert(
            "recipient_name".to_string(),
            Value::from("<script>alert(1)</script>"),
        );
        for kind in EmailKind::ALL {
            let r = templates.render(kind, &vars).expect("renders");
            assert!(!r.subject.is_empty(), "{kind:?} has an empty subject");
            assert!(!r.html.contains("<script>"), "{kind:?} HTML not escaped");
            assert!(r.text.contains("020 7946 0000"), "{kind:?} lacks the phone");
        }
    }

    #[test]
    fn a_folder_missing_a_template_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        for entry in std::fs::read_dir(&shipped).expect("templates folder") {
            let path = entry.expect("entry").path();
            if path.file_name().and_then(|n| n.to_str()) != Some("reminder.html") {
                std::fs::copy(&path, dir.path().join(path.file_name().expect("name")))
                    .expect("copy");
            }
        }
        let err = Templates::load(dir.path()).err().expect("refused");
        assert!(err.to_string().contains("reminder.html"), "{err}");
    }
}
