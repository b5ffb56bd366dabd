//! The patient pages as HTTP sees them: HTML with its own CSP, framing only by
//! `server.embed_origins`, embedded assets with caching and compression, the manage page
//! behind the emailed link (for a booking or a class seat), the waitlist entry and offer pages,
//! and the friendly 404 for a link that opens nothing.

use std::io::Read;

use chrono::{Duration, Utc};
use entity::outbox_message;
use frontdesk::{email::worker, waitlist};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use crate::availability::{clinic_with_one_practitioner, in_days, slots, starts};
use crate::classes::{book_seat, class_at, class_service};
use crate::helpers::{TestApp, spawn_app, spawn_app_with};

struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

impl Page {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).to_string()
    }
}

async fn fetch(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Page {
    let mut req = app.client.get(app.url(path));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("body").to_vec();
    Page {
        status,
        headers,
        body,
    }
}

/// The `src`/`href` of every `/assets/…` reference in a page.
fn asset_urls(html: &str) -> Vec<String> {
    html.split('"')
        .filter(|s| s.starts_with("/assets/"))
        .map(str::to_string)
        .collect()
}

async fn book_one(app: &TestApp) -> serde_json::Value {
    let (_, _, service) = clinic_with_one_practitioner(app).await;
    let d = in_days(5);
    let free = starts(&slots(app, &format!("service_id={service}&from={d}&to={d}")).await);
    let reply = app
        .post(
            "/api/v1/bookings",
            json!({ "service_id": service, "start": free[0],
                    "patient": { "name": "Jo <b>Bloggs</b>", "email": "jo@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

#[tokio::test]
async fn the_pages_are_html_with_their_own_csp_and_refuse_framing_by_default() {
    let app = spawn_app().await;
    for path in ["/book", "/book?service=x&embed=1", "/contact"] {
        let page = fetch(&app, path, &[]).await;
        assert_eq!(page.status, 200, "{path}");
        assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
        let csp = page.header("content-security-policy");
        assert!(csp.contains("script-src 'self'"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let html = page.text();
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains(&app.settings.clinic.name.replace('&', "&amp;")));
        assert!(!html.contains("<script>"), "no inline script");
        assert!(!html.contains("style=\""), "no inline style");
    }
    let contact = fetch(&app, "/contact", &[]).await.text();
    assert!(contact.contains("name=\"website\""), "the honeypot field");
    assert!(contact.contains("class=\"honeypot\" aria-hidden=\"true\""));
    assert!(contact.contains("tabindex=\"-1\""));
}

#[tokio::test]
async fn embed_origins_form_frame_ancestors_and_only_they_receive_messages() {
    let app = spawn_app_with(|s| {
        s.server.embed_origins = vec![
            "https://www.clinic.example".to_string(),
            "http://127.0.0.1:9999".to_string(),
        ]
    })
    .await;
    let page = fetch(
        &app,
        "/book?embed=1&origin=https%3A%2F%2Fwww.clinic.example",
        &[],
    )
    .await;
    assert!(
        page.header("content-security-policy")
            .contains("frame-ancestors https://www.clinic.example http://127.0.0.1:9999"),
        "{}",
        page.header("content-security-policy")
    );
    let html = page.text();
    assert!(html.contains("data-parent-origin=\"https://www.clinic.example\""));
    assert!(
        html.contains("class=\"embedded\""),
        "no masthead inside a frame"
    );
    // An origin the clinic did not list gets the page but no messages.
    let other = fetch(&app, "/book?embed=1&origin=https%3A%2F%2Fevil.example", &[]).await;
    assert_eq!(other.status, 200);
    assert!(!other.text().contains("data-parent-origin"));
}

#[tokio::test]
async fn deep_link_slugs_reach_the_page_escaped() {
    let app = spawn_app().await;
    let page = fetch(
        &app,
        "/book?service=sports-massage&practitioner=%22%3E%3Cscript%3E",
        &[],
    )
    .await;
    let html = page.text();
    assert!(html.contains("data-service=\"sports-massage\""));
    assert!(html.contains("data-practitioner=\"&quot;&gt;&lt;script&gt;\""));
}

#[tokio::test]
async fn assets_are_versioned_cached_compressed_and_revalidated() {
    let app = spawn_app().await;
    let html = fetch(&app, "/book", &[]).await.text();
    let urls = asset_urls(&html);
    assert!(urls.iter().any(|u| u.ends_with("/book.js")), "{urls:?}");
    assert!(urls.iter().any(|u| u.ends_with("/pages.css")), "{urls:?}");
    for url in &urls {
        let plain = fetch(&app, url, &[]).await;
        assert_eq!(plain.status, 200, "{url}");
        assert!(plain.header("cache-control").contains("immutable"), "{url}");
        let etag = plain.header("etag").to_string();
        assert!(etag.starts_with('"'), "{url}");
        let zipped = fetch(&app, url, &[("accept-encoding", "gzip, br")]).await;
        assert_eq!(zipped.header("content-encoding"), "gzip");
        assert_eq!(zipped.header("vary"), "Accept-Encoding");
        let mut unzipped = Vec::new();
        flate2::read::GzDecoder::new(&zipped.body[..])
            .read_to_end(&mut unzipped)
            .expect("valid gzip");
        assert_eq!(unzipped, plain.body, "{url}");
        let again = fetch(&app, url, &[("if-none-match", &etag)]).await;
        assert_eq!(again.status, 304, "{url}");
        assert!(again.body.is_empty());
    }
    // The modules import each other by relative URL under the same version.
    let book_js = fetch(
        &app,
        urls.iter().find(|u| u.ends_with("/book.js")).expect("js"),
        &[],
    )
    .await
    .text();
    assert!(book_js.contains("from './common.js'"));
    let version = urls[0].split('/').nth(2).expect("version");
    let common = fetch(&app, &format!("/assets/{version}/common.js"), &[]).await;
    assert_eq!(common.status, 200);
    assert!(common.header("content-type").starts_with("text/javascript"));
    // An old version still answers, but is not cached under that name.
    let stale = fetch(&app, "/assets/000000000000/common.js", &[]).await;
    assert_eq!(stale.status, 200);
    assert_eq!(stale.header("cache-control"), "no-cache");
    assert_eq!(fetch(&app, "/assets/x/nothing.js", &[]).await.status, 404);
}

/// The relative `./name.js` modules a script imports.
fn imported_modules(js: &str) -> Vec<String> {
    js.split("from './")
        .skip(1)
        .filter_map(|rest| rest.split('\'').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_module_a_page_imports_is_served_under_the_same_version() {
    let app = spawn_app().await;
    let html = fetch(&app, "/book", &[]).await.text();
    let book = asset_urls(&html)
        .into_iter()
        .find(|u| u.ends_with("/book.js"))
        .expect("book.js");
    let version = book.split('/').nth(2).expect("version").to_string();
    // Walk the import graph from every page's script.
    let mut pending: Vec<String> = [
        "book.js",
        "manage.js",
        "contact.js",
        "offer.js",
        "waitlist.js",
    ]
    .map(str::to_string)
    .to_vec();
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let page = fetch(&app, &format!("/assets/{version}/{name}"), &[]).await;
        assert_eq!(page.status, 200, "{name}");
        assert!(page.header("content-type").starts_with("text/javascript"));
        pending.extend(imported_modules(&page.text()));
    }
    for shared in [
        "common.js",
        "patient.js",
        "booked.js",
        "timetable.js",
        "join.js",
        "slots.js",
    ] {
        assert!(seen.contains(shared), "{shared} is reached: {seen:?}");
    }
}

#[tokio::test]
async fn the_accent_colour_and_logo_come_from_branding() {
    let app = spawn_app_with(|s| {
        s.branding.accent_color = "#ffdd00".to_string();
        s.branding.logo_url = Some("https://cdn.clinic.example/logo.png".to_string());
    })
    .await;
    let page = fetch(&app, "/book", &[]).await;
    let html = page.text();
    assert!(html.contains("<img src=\"https://cdn.clinic.example/logo.png\""));
    assert!(
        page.header("content-security-policy")
            .contains("img-src 'self' data: https://cdn.clinic.example")
    );
    let theme = asset_urls(&html)
        .into_iter()
        .find(|u| u.ends_with("/theme.css"))
        .expect("theme");
    let css = fetch(&app, &theme, &[]).await.text();
    assert!(css.contains("--accent:#ffdd00"), "{css}");
    assert!(
        css.contains("--accent-text:#0b0c0c"),
        "dark text on a light accent: {css}"
    );
}

#[tokio::test]
async fn embed_js_can_be_loaded_by_another_site() {
    let app = spawn_app().await;
    let page = fetch(&app, "/embed.js", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/javascript"));
    assert_eq!(page.header("cross-origin-resource-policy"), "cross-origin");
    assert!(page.header("etag").starts_with('"'));
    let js = page.text();
    assert!(js.contains("frontdesk:resize") && js.contains("frontdesk:booked"));
    assert!(js.contains("event.origin !== origin"));
}

#[tokio::test]
async fn an_unknown_manage_link_gets_a_friendly_html_page_with_the_phone() {
    let app = spawn_app().await;
    let page = fetch(&app, "/manage/not-a-real-token", &[]).await;
    assert_eq!(page.status, 404);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert!(
        page.header("content-security-policy")
            .contains("frame-ancestors")
    );
    let html = page.text();
    assert!(html.contains("We could not find that booking"));
    assert!(html.contains(&app.settings.clinic.phone));
    assert!(html.contains("href=\"tel:02079460000\""));
}

#[tokio::test]
async fn the_manage_link_in_the_confirmation_email_opens_the_manage_page() {
    let app = spawn_app().await;
    let created = book_one(&app).await;
    let reference = created["booking"]["reference"].as_str().expect("ref");
    worker::run_once(&app.state).await.expect("worker step");
    let mut link = None;
    for entry in std::fs::read_dir(&app.settings.email.file_dir).expect("mail dir") {
        let raw = std::fs::read(entry.expect("entry").path()).expect("eml");
        let Some(message) = mail_parser::MessageParser::default().parse(&raw) else {
            continue;
        };
        let Some(text) = message.body_text(0) else {
            continue;
        };
        if let Some(start) = text.find(&format!("{}/manage/", app.settings.server.public_url)) {
            let url: String = text[start..]
                .chars()
                .take_while(|c| !c.is_whitespace())
                .collect();
            link = Some(url);
        }
    }
    let link = link.expect("a manage link in an email");
    assert_eq!(link, created["manage_url"].as_str().expect("manage_url"));
    let path = link
        .strip_prefix(&app.settings.server.public_url)
        .expect("under public_url");
    let page = fetch(&app, path, &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), "no-store");
    let html = page.text();
    assert!(html.contains(reference));
    assert!(html.contains("Jo") || html.contains("Your booking"));
    assert!(
        !html.contains("<b>Bloggs</b>"),
        "names are escaped, if shown at all"
    );
    assert!(html.contains("You can change the time or cancel online until"));
    assert!(html.contains("id=\"cancel-start\""));
    let token = created["manage_token"].as_str().expect("token");
    assert!(
        !html.contains(token),
        "the page carries no copy of the token"
    );
}

#[tokio::test]
async fn past_the_notice_the_manage_page_says_so_and_shows_the_phone() {
    let app = spawn_app().await;
    let created = book_one(&app).await;
    let admin = app.admin_token().await;
    let service = created["booking"]["service"]["id"].as_str().expect("id");
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/services/{service}"),
            json!({ "policy": { "cancel_notice_hours": 720, "reschedule_notice_hours": 720 } }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = created["manage_token"].as_str().expect("token");
    let html = fetch(&app, &format!("/manage/{token}"), &[]).await.text();
    assert!(html.contains("so the time can no longer be changed online"));
    assert!(html.contains("so it can no longer be cancelled online"));
    assert!(html.contains(&app.settings.clinic.phone));
    assert!(
        !html.contains("id=\"cancel-start\""),
        "no buttons that cannot work"
    );
    // Cancelled by the clinic: the page says so and offers to book again.
    let id = created["booking"]["id"].as_str().expect("id");
    let reply = app
        .post_as(
            &admin,
            &format!("/api/v1/staff/bookings/{id}/cancel"),
            json!({ "reason": "other" }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let html = fetch(&app, &format!("/manage/{token}"), &[]).await.text();
    assert!(html.contains("This booking has been cancelled"));
    assert!(html.contains("Cancelled"));
}

#[tokio::test]
async fn a_seats_manage_link_opens_the_page_with_cancel_and_no_move() {
    let app = spawn_app().await;
    let (admin, practitioner, _) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &practitioner, 6).await;
    let class = class_at(&app, &admin, &service, &practitioner, 5, None).await;
    let seat = book_seat(&app, &class, "jo@example.com").await;
    assert_eq!(seat.status, 201, "{}", seat.body);
    let token = seat.body["manage_token"].as_str().expect("token");
    let page = fetch(&app, &format!("/manage/{token}"), &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text();
    assert!(html.contains("Your place in a class"));
    assert!(html.contains(seat.body["seat"]["reference"].as_str().expect("reference")));
    assert!(html.contains("You can cancel your place online until"));
    assert!(html.contains("to move, cancel and book another session"));
    assert!(html.contains("id=\"cancel-start\""));
    assert!(!html.contains("reschedule-start"), "a seat is not moved");
    assert!(
        !html.contains(token),
        "the page carries no copy of the token"
    );
    // Cancelled: the page says so and offers another session of the same class.
    let reply = app
        .post(&format!("/api/v1/manage/{token}/cancel"), json!({}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let html = fetch(&app, &format!("/manage/{token}"), &[]).await.text();
    assert!(html.contains("Your cancelled place"));
    assert!(html.contains("This place has been cancelled"));
    assert!(!html.contains("id=\"cancel-start\""));
}

#[tokio::test]
async fn a_seat_past_its_notice_cannot_be_cancelled_online_and_the_page_shows_the_phone() {
    let app = spawn_app().await;
    let (admin, practitioner, _) = clinic_with_one_practitioner(&app).await;
    let service = class_service(&app, &admin, &practitioner, 6).await;
    let class = class_at(&app, &admin, &service, &practitioner, 5, None).await;
    let seat = book_seat(&app, &class, "jo@example.com").await;
    assert_eq!(seat.status, 201, "{}", seat.body);
    let reply = app
        .patch_as(
            &admin,
            &format!("/api/v1/staff/services/{service}"),
            json!({ "policy": { "cancel_notice_hours": 720 } }),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = seat.body["manage_token"].as_str().expect("token");
    let html = fetch(&app, &format!("/manage/{token}"), &[]).await.text();
    assert!(html.contains("so your place can no longer be cancelled online"));
    assert!(html.contains("href=\"tel:02079460000\""));
    assert!(
        !html.contains("id=\"cancel-start\""),
        "no button that cannot work"
    );
}

/// Asserts a page is the friendly HTML 404 of a secret link, with the clinic's phone.
fn assert_friendly_404(page: &Page, heading: &str) {
    assert_eq!(page.status, 404);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    let csp = page.header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    let html = page.text();
    assert!(html.contains(heading), "{html}");
    assert!(html.contains("href=\"tel:02079460000\""));
}

#[tokio::test]
async fn unknown_waitlist_and_offer_links_get_the_friendly_404_with_the_phone() {
    let app = spawn_app().await;
    let page = fetch(&app, "/waitlist/not-a-real-token", &[]).await;
    assert_friendly_404(&page, "We could not find that waitlist place");
    let page = fetch(&app, "/waitlist/offers/not-a-real-token", &[]).await;
    assert_friendly_404(&page, "We could not find that offer");
}

/// A one-place class taken by a holder, and Wren on its waitlist: (holder's seat manage
/// token, Wren's entry token and entry URL).
async fn full_class_with_wren_waiting(app: &TestApp) -> (String, String, String) {
    let (admin, practitioner, _) = clinic_with_one_practitioner(app).await;
    let service = class_service(app, &admin, &practitioner, 6).await;
    let class = class_at(app, &admin, &service, &practitioner, 5, Some(1)).await;
    let holder = book_seat(app, &class, "holder@example.com").await;
    assert_eq!(holder.status, 201, "{}", holder.body);
    let joined = app
        .post(
            "/api/v1/waitlist",
            json!({ "class_id": class,
                    "patient": { "name": "Wren Patel", "email": "wren@example.com" },
                    "consent": { "privacy": true, "marketing": false } }),
        )
        .await;
    assert_eq!(joined.status, 201, "{}", joined.body);
    let text = |v: &serde_json::Value| v.as_str().expect("text").to_string();
    (
        text(&holder.body["manage_token"]),
        text(&joined.body["manage_token"]),
        text(&joined.body["manage_url"]),
    )
}

#[tokio::test]
async fn a_waitlist_entry_link_opens_its_page_and_then_says_it_was_left() {
    let app = spawn_app().await;
    let (_, token, url) = full_class_with_wren_waiting(&app).await;
    let path = url
        .strip_prefix(&app.settings.server.public_url)
        .expect("under public_url");
    assert_eq!(path, format!("/waitlist/{token}"));
    let page = fetch(&app, path, &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), "text/html; charset=utf-8");
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    let csp = page.header("content-security-policy");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let html = page.text();
    assert!(html.contains("You are on the waitlist"));
    assert!(html.contains("Mat Pilates"), "the class it waits for");
    assert!(
        html.contains("data-start=\""),
        "a start the script can show in the patient's zone"
    );
    assert!(html.contains("/waitlist.js\""));
    assert!(
        !html.contains(&token),
        "the page carries no copy of the token"
    );
    let left = app
        .post(&format!("/api/v1/waitlist/{token}/leave"), json!({}))
        .await;
    assert_eq!(left.status, 200, "{}", left.body);
    let html = fetch(&app, path, &[]).await.text();
    assert!(html.contains("You have left the waitlist"));
}

/// The offer token in the latest offer email to `to`.
async fn offer_token(app: &TestApp, to: &str) -> String {
    let emails = outbox_message::Entity::find()
        .filter(outbox_message::Column::Kind.eq("waitlist_offer"))
        .filter(outbox_message::Column::ToAddress.eq(to))
        .all(&app.db)
        .await
        .expect("outbox");
    let email = emails.last().expect("an offer email");
    let (_, rest) = email
        .text_body
        .split_once("/waitlist/offers/")
        .expect("an offer link");
    rest.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

#[tokio::test]
async fn an_offer_link_shows_the_held_place_and_its_deadline_then_that_it_was_claimed() {
    let app = spawn_app().await;
    let (holder, _, _) = full_class_with_wren_waiting(&app).await;
    let cancelled = app
        .post(&format!("/api/v1/manage/{holder}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.body);
    let step = waitlist::worker::run_once(&app.state, Utc::now() + Duration::seconds(121))
        .await
        .expect("waitlist step");
    assert_eq!(step.offers, 1);
    let token = offer_token(&app, "wren@example.com").await;
    let page = fetch(&app, &format!("/waitlist/offers/{token}"), &[]).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("cache-control"), "no-store");
    assert_eq!(page.header("referrer-policy"), "no-referrer");
    assert!(
        page.header("content-security-policy")
            .contains("frame-ancestors 'none'")
    );
    let html = page.text();
    assert!(html.contains("A place is free for you"));
    assert!(html.contains("Mat Pilates"));
    assert!(html.contains("Held for you until"));
    assert!(html.contains("/offer.js\""));
    assert!(
        !html.contains(&token),
        "the page carries no copy of the token"
    );
    let claimed = app
        .post(&format!("/api/v1/waitlist/offers/{token}/claim"), json!({}))
        .await;
    assert_eq!(claimed.status, 201, "{}", claimed.body);
    let html = fetch(&app, &format!("/waitlist/offers/{token}"), &[])
        .await
        .text();
    assert!(html.contains("You have claimed this place"));
    assert!(!html.contains("Held for you until"));
}

#[tokio::test]
async fn the_clinic_answer_names_the_enquiry_response_time() {
    let app = spawn_app_with(|s| s.enquiries.response_time = "within two hours".to_string()).await;
    let reply = app.get("/api/v1/clinic").await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["enquiry_response_time"], "within two hours");
}

/// Runs `frontdesk migrate` with a clean FRONTDESK_* environment plus `env`.
async fn migrate_with(env: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_frontdesk"));
    for (key, _) in std::env::vars() {
        if key.starts_with("FRONTDESK") {
            cmd.env_remove(key);
        }
    }
    cmd.current_dir(dir.path())
        .arg("--config-dir")
        .arg(crate::helpers::config_dir())
        .arg("migrate")
        .env(
            "FRONTDESK__DATABASE__URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("f.db").display()),
        )
        .env("FRONTDESK__LOG__LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().await.expect("the binary runs")
}

#[tokio::test]
async fn embed_origins_and_branding_are_checked_at_start_up() {
    let ok = migrate_with(&[
        (
            "FRONTDESK__SERVER__EMBED_ORIGINS",
            "https://www.clinic.example,http://127.0.0.1:9000",
        ),
        ("FRONTDESK__BRANDING__ACCENT_COLOR", "#123"),
        (
            "FRONTDESK__BRANDING__LOGO_URL",
            "https://cdn.example/logo.svg",
        ),
    ])
    .await;
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    for (key, value, named) in [
        (
            "FRONTDESK__SERVER__EMBED_ORIGINS",
            "https://www.clinic.example/path",
            "server.embed_origins",
        ),
        (
            "FRONTDESK__SERVER__EMBED_ORIGINS",
            "'unsafe-inline'",
            "server.embed_origins",
        ),
        (
            "FRONTDESK__BRANDING__ACCENT_COLOR",
            "red;}body{display:none",
            "branding.accent_color",
        ),
        (
            "FRONTDESK__BRANDING__LOGO_URL",
            "javascript:alert(1)",
            "branding.logo_url",
        ),
    ] {
        let out = migrate_with(&[(key, value)]).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{value} was accepted");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(named), "{err}");
    }
}
