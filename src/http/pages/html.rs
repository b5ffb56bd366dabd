//! The pages' HTML, rendered on the server: the shell every page shares, the booking summary
//! of the manage page, the contact form, and the friendly "not found" page.

use std::fmt::Write;

use crate::config::Settings;

use super::assets::Assets;

/// Escapes text for an HTML element or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// What differs between pages in the shared shell.
pub struct Shell<'a> {
    pub title: &'a str,
    /// The page's script module (`book.js`…), if any.
    pub script: Option<&'a str>,
    /// Inside a clinic's site: no masthead or footer, the host page has its own.
    pub embedded: bool,
    /// `data-*` attributes for the script, already escaped by [`data_attr`].
    pub data: String,
    /// The page's own content, already HTML.
    pub body: String,
}

/// ` data-{name}="{value}"`, escaped.
pub fn data_attr(name: &str, value: &str) -> String {
    format!(" data-{name}=\"{}\"", escape(value))
}

/// A `tel:` link target: digits and a leading plus only.
pub fn tel_href(phone: &str) -> String {
    phone
        .chars()
        .filter(|c| c.is_ascii_digit() || *c == '+')
        .collect()
}

/// The clinic's phone number as a link.
pub fn phone_link(settings: &Settings) -> String {
    let phone = &settings.clinic.phone;
    format!(
        "<a href=\"tel:{}\">{}</a>",
        escape(&tel_href(phone)),
        escape(phone)
    )
}

pub fn page(settings: &Settings, assets: &Assets, shell: Shell<'_>) -> String {
    let clinic = escape(&settings.clinic.name);
    let mut html = String::with_capacity(4096);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en-GB\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} – {clinic}</title>\n\
         <link rel=\"stylesheet\" href=\"{css}\">\n<link rel=\"stylesheet\" href=\"{theme}\">\n",
        title = escape(shell.title),
        css = assets.url("pages.css"),
        theme = assets.url("theme.css"),
    );
    if let Some(script) = shell.script {
        let _ = writeln!(
            html,
            "<script type=\"module\" src=\"{}\"></script>",
            assets.url(script)
        );
    }
    let body_class = if shell.embedded {
        "embedded"
    } else {
        "standalone"
    };
    let _ = write!(html, "</head>\n<body class=\"{body_class}\">\n");
    if !shell.embedded {
        let brand = match settings
            .branding
            .logo_url
            .as_deref()
            .filter(|l| !l.is_empty())
        {
            Some(logo) => format!("<img src=\"{}\" alt=\"{clinic}\">", escape(logo)),
            None => clinic.clone(),
        };
        let _ = write!(
            html,
            "<a class=\"skip-link\" href=\"#main\">Skip to main content</a>\n\
             <header class=\"masthead\"><div class=\"wrap\"><a class=\"brand\" href=\"/book\">{brand}</a></div></header>\n"
        );
    }
    let _ = write!(
        html,
        "<main id=\"main\" class=\"wrap\" tabindex=\"-1\"{data}>\n{body}\n</main>\n",
        data = shell.data,
        body = shell.body,
    );
    if !shell.embedded {
        let _ = writeln!(
            html,
            "<footer class=\"site-footer\"><div class=\"wrap\"><p>{clinic} · {address}</p>\
             <p>Phone {phone} · <a href=\"mailto:{email}\">{email}</a></p>\
             <p><a href=\"/book\">Book an appointment</a> · <a href=\"/contact\">Contact us</a></p></div></footer>",
            address = escape(&settings.clinic.address),
            phone = phone_link(settings),
            email = escape(&settings.clinic.email),
        );
    }
    html.push_str("</body>\n</html>\n");
    html
}

/// What the booking page shows before its script has run.
pub fn book_body(settings: &Settings) -> String {
    format!(
        "<div id=\"app\">\n<h1 tabindex=\"-1\">Book an appointment</h1>\n\
         <p class=\"loading\">Loading the services…</p>\n\
         <noscript><p>Online booking needs JavaScript. Please call us on {phone} to book.</p></noscript>\n</div>",
        phone = phone_link(settings)
    )
}

/// The contact form, complete in HTML; the script sends it to the API and shows the answer.
pub fn contact_body(settings: &Settings) -> String {
    let topics = [
        ("physio", "Physiotherapy"),
        ("sports_massage", "Sports massage and sports therapy"),
        ("personal_training", "Personal training"),
        ("pilates", "Pilates"),
        ("general", "Something else"),
    ];
    let mut topic_radios = String::new();
    for (i, (value, label)) in topics.iter().enumerate() {
        let _ = write!(
            topic_radios,
            "<div class=\"radio\"><input type=\"radio\" id=\"topic-{value}\" name=\"topic\" value=\"{value}\"{checked}>\
             <label for=\"topic-{value}\">{label}</label></div>",
            checked = if i == topics.len() - 1 {
                " checked"
            } else {
                ""
            },
        );
    }
    format!(
        r#"<div id="app">
<h1 tabindex="-1">Contact us</h1>
<p>Ask us anything about treatment, training or your booking. To book, you can also <a href="/book">book online</a> or call {phone}.</p>
<div id="error-summary"></div>
<form id="contact-form" novalidate>
<div class="field" id="field-name"><label for="name">Full name</label>
<input id="name" name="name" type="text" autocomplete="name" required maxlength="200"></div>
<div class="field" id="field-email"><label for="email">Email address</label>
<input id="email" name="email" type="email" autocomplete="email" spellcheck="false" required maxlength="254"></div>
<div class="field" id="field-phone"><label for="phone">Phone number <span class="optional">(needed if you would like a call)</span></label>
<input id="phone" name="phone" type="tel" autocomplete="tel" maxlength="32"></div>
<fieldset class="field" id="field-topic"><legend>What is it about?</legend>{topic_radios}</fieldset>
<div class="field" id="field-service"><label for="service">Which service? <span class="optional">(optional)</span></label>
<select id="service" name="service"><option value="">Not sure, or none</option></select></div>
<div class="field" id="field-message"><label for="message">Your message</label>
<p class="hint" id="message-hint">At least 10 characters. Please do not include detailed medical history.</p>
<textarea id="message" name="message" rows="6" aria-describedby="message-hint" required maxlength="5000"></textarea></div>
<fieldset class="field" id="field-preferred_contact"><legend>How should we reply?</legend>
<div class="radio"><input type="radio" id="contact-email" name="preferred_contact" value="email" checked><label for="contact-email">By email</label></div>
<div class="radio"><input type="radio" id="contact-phone" name="preferred_contact" value="phone"><label for="contact-phone">By phone</label></div>
</fieldset>
<div class="honeypot" aria-hidden="true"><label for="website">Leave this empty</label><input id="website" name="website" type="text" tabindex="-1" autocomplete="off"></div>
<div class="field" id="field-privacy"><div class="checkbox"><input type="checkbox" id="privacy" name="privacy" required>
<label for="privacy">I agree that {clinic} may keep my details to answer this enquiry</label></div></div>
<div class="field"><div class="checkbox"><input type="checkbox" id="marketing" name="marketing">
<label for="marketing">Send me occasional news and offers (optional)</label></div></div>
<button type="submit" class="button">Send message</button>
</form>
<noscript><p>This form needs JavaScript. You can also email <a href="mailto:{email}">{email_text}</a> or call {phone}.</p></noscript>
</div>"#,
        phone = phone_link(settings),
        clinic = escape(&settings.clinic.name),
        email = escape(&settings.clinic.email),
        email_text = escape(&settings.clinic.email),
    )
}

/// The page for an emailed link that opens nothing (unknown, mistyped or erased): `what` it
/// was for ("booking"), and what to call about ("check or change your booking").
pub fn not_found_body(settings: &Settings, what: &str, call_to: &str) -> String {
    format!(
        "<h1 tabindex=\"-1\">We could not find that {what}</h1>\n\
         <p>The link may be mistyped or incomplete, or it may no longer work.</p>\n\
         <p>To {call_to}, please call us on {phone}.</p>\n\
         <p><a class=\"button\" href=\"/book\">Book a new appointment</a></p>",
        phone = phone_link(settings)
    )
}

/// The page for a manage link that opens nothing.
pub fn manage_not_found_body(settings: &Settings) -> String {
    not_found_body(settings, "booking", "check or change your booking")
}

/// For when the service cannot answer (the database is unreachable).
pub fn unavailable_body(settings: &Settings) -> String {
    format!(
        "<h1 tabindex=\"-1\">Sorry, there is a problem</h1>\n\
         <p>This page cannot be shown right now. Please try again in a few minutes, or call us on {phone}.</p>",
        phone = phone_link(settings)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_text_is_escaped() {
        assert_eq!(
            escape("<a href=\"x\">Tom & 'Jo'</a>"),
            "&lt;a href=&quot;x&quot;&gt;Tom &amp; &#39;Jo&#39;&lt;/a&gt;"
        );
        assert_eq!(tel_href("020 7946 0000"), "02079460000");
    }
}
