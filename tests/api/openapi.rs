//! The OpenAPI document against the service's real answers: a `null` in an answer is declared
//! nullable where it appears, and every operation lists the error statuses the layers around
//! it can answer, as problem documents. (CI goes further with schemathesis and a generated
//! client: `.ci/schemathesis`.)

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Reply, TestApp, spawn_app};

/// The schema behind a `$ref`, or the schema itself.
fn resolve<'a>(spec: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"].as_str() {
        Some(reference) => {
            let name = reference.trim_start_matches("#/components/schemas/");
            &spec["components"]["schemas"][name]
        }
        None => schema,
    }
}

/// The schema and the `allOf` members it is made of, each resolved.
fn parts<'a>(spec: &'a Value, schema: &'a Value) -> Vec<&'a Value> {
    let schema = resolve(spec, schema);
    let mut all = vec![schema];
    if let Some(members) = schema["allOf"].as_array() {
        for member in members {
            all.extend(parts(spec, member));
        }
    }
    all
}

/// Walks `value` along `schema`, noting every null the schema does not allow and every
/// required property that is missing.
fn walk(spec: &Value, schema: &Value, value: &Value, at: &str, problems: &mut Vec<String>) {
    let parts = parts(spec, schema);
    match value {
        Value::Null if !parts.iter().any(|s| s["nullable"] == true) => {
            problems.push(format!("{at} is null but its schema is not nullable"));
        }
        Value::Object(fields) => {
            for part in &parts {
                for required in part["required"].as_array().into_iter().flatten() {
                    if let Some(name) = required.as_str()
                        && !fields.contains_key(name)
                    {
                        problems.push(format!("{at}.{name} is required but absent"));
                    }
                }
            }
            for (name, field) in fields {
                if let Some(property) = parts
                    .iter()
                    .find_map(|s| s["properties"].get(name.as_str()))
                {
                    walk(spec, property, field, &format!("{at}.{name}"), problems);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = parts.iter().find_map(|s| s.get("items")) {
                for (i, item) in items.iter().enumerate() {
                    walk(spec, item_schema, item, &format!("{at}[{i}]"), problems);
                }
            }
        }
        _ => {}
    }
}

/// Checks an answer of `method template` against the schema the spec gives its status.
fn conforms(spec: &Value, method: &str, template: &str, reply: &Reply, problems: &mut Vec<String>) {
    let status = reply.status.as_u16().to_string();
    let operation = &spec["paths"][template][method.to_lowercase()];
    assert!(
        operation.is_object(),
        "{method} {template} is not in the spec"
    );
    let response = &operation["responses"][status.as_str()];
    let Some(content) = response["content"].as_object() else {
        problems.push(format!(
            "{method} {template}: status {status} is not documented"
        ));
        return;
    };
    let schema = &content.values().next().expect("a documented media type")["schema"];
    walk(
        spec,
        schema,
        &reply.body,
        &format!("{method} {template} {status}"),
        problems,
    );
}

async fn spec(app: &TestApp) -> Value {
    let reply = app.get("/openapi.json").await;
    assert_eq!(reply.status, 200);
    reply.body
}

#[tokio::test]
async fn every_null_in_an_answer_is_declared_nullable_in_the_spec() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let admin = app.admin_token().await;
    let mut problems = Vec::new();
    let mut nulls = 0;
    let mut check = |method: &str, template: &str, reply: Reply| {
        assert!(
            reply.status.is_success(),
            "{method} {template}: {}",
            reply.body
        );
        nulls += reply.body.to_string().matches("null").count();
        conforms(&spec, method, template, &reply, &mut problems);
        reply
    };

    // An admin has no practitioner record.
    check(
        "GET",
        "/api/v1/auth/me",
        app.get_as(&admin, "/api/v1/auth/me").await,
    );
    // No email for the practitioner; the service keeps every clinic default.
    let practitioner = check(
        "POST",
        "/api/v1/staff/practitioners",
        app.post_as(
            &admin,
            "/api/v1/staff/practitioners",
            json!({ "name": "Sam Okafor", "discipline": "physiotherapist", "title": "Physiotherapist" }),
        )
        .await,
    );
    let pid = practitioner.body["id"].as_str().expect("id").to_string();
    let service = check(
        "POST",
        "/api/v1/staff/services",
        app.post_as(
            &admin,
            "/api/v1/staff/services",
            json!({ "name": "Assessment", "category": "physio", "duration_minutes": 45,
                    "price_pence": 6500, "practitioner_ids": [pid] }),
        )
        .await,
    );
    let sid = service.body["id"].as_str().expect("id").to_string();
    check(
        "GET",
        "/api/v1/staff/services",
        app.get_as(&admin, "/api/v1/staff/services").await,
    );
    // Nobody works yet: no next slot.
    check(
        "GET",
        "/api/v1/availability/next",
        app.get(&format!("/api/v1/availability/next?service_id={sid}"))
            .await,
    );
    // Open-ended hours.
    let hours = format!("/api/v1/staff/practitioners/{pid}/working-hours");
    check(
        "PUT",
        "/api/v1/staff/practitioners/{id}/working-hours",
        app.put_as(
            &admin,
            &hours,
            json!({ "intervals": [{ "weekday": "monday", "start": "09:00", "end": "17:00" }] }),
        )
        .await,
    );
    check(
        "GET",
        "/api/v1/staff/practitioners/{id}/working-hours",
        app.get_as(&admin, &hours).await,
    );
    // The feed URL is shown once, then null.
    let feed = format!("/api/v1/staff/practitioners/{pid}/feed");
    let first = check(
        "GET",
        "/api/v1/staff/practitioners/{id}/feed",
        app.get_as(&admin, &feed).await,
    );
    assert!(first.body["url"].is_string(), "{}", first.body);
    let again = check(
        "GET",
        "/api/v1/staff/practitioners/{id}/feed",
        app.get_as(&admin, &feed).await,
    );
    assert!(again.body["url"].is_null(), "{}", again.body);
    // A phone booking without an email address, not cancelled.
    let start = (chrono::Utc::now() + chrono::Duration::days(3))
        .date_naive()
        .and_hms_opt(10, 0, 0)
        .expect("a valid time")
        .and_utc()
        .to_rfc3339();
    let booking = check(
        "POST",
        "/api/v1/staff/bookings",
        app.post_as(
            &admin,
            "/api/v1/staff/bookings",
            json!({ "service_id": sid, "practitioner_id": pid, "start": start,
                    "patient": { "name": "Phone Caller", "phone": "020 7946 0999" } }),
        )
        .await,
    );
    let bid = booking.body["booking"]["id"]
        .as_str()
        .expect("booking id")
        .to_string();
    check(
        "GET",
        "/api/v1/staff/bookings/{id}",
        app.get_as(&admin, &format!("/api/v1/staff/bookings/{bid}"))
            .await,
    );
    let patients = check(
        "GET",
        "/api/v1/staff/patients",
        app.get_as(&admin, "/api/v1/staff/patients").await,
    );
    let patient = patients.body["items"][0]["id"]
        .as_str()
        .expect("patient id")
        .to_string();
    check(
        "GET",
        "/api/v1/staff/patients/{id}",
        app.get_as(&admin, &format!("/api/v1/staff/patients/{patient}"))
            .await,
    );
    check(
        "GET",
        "/api/v1/staff/patients/{id}/export",
        app.get_as(&admin, &format!("/api/v1/staff/patients/{patient}/export"))
            .await,
    );
    check(
        "GET",
        "/api/v1/staff/outbox",
        app.get_as(&admin, "/api/v1/staff/outbox").await,
    );
    // The bootstrap admin was made by no one.
    check(
        "GET",
        "/api/v1/staff/audit",
        app.get_as(&admin, "/api/v1/staff/audit?per_page=100").await,
    );

    // A one-off class (no series, not cancelled) with a seat booked without a phone.
    let class_service = crate::classes::class_service(&app, &admin, &pid, 10).await;
    let class = check(
        "POST",
        "/api/v1/staff/classes",
        app.post_as(
            &admin,
            "/api/v1/staff/classes",
            json!({ "service_id": class_service, "practitioner_id": pid,
                    "starts_at": format!("{}T18:00:00Z", crate::availability::in_days(4)) }),
        )
        .await,
    );
    let cid = class.body["id"].as_str().expect("class id").to_string();
    let seat = check(
        "POST",
        "/api/v1/classes/{id}/seats",
        app.post(
            &format!("/api/v1/classes/{cid}/seats"),
            json!({ "patient": { "name": "Sam Seat", "email": "sam.seat@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await,
    );
    let token = seat.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    check(
        "GET",
        "/api/v1/manage/{token}",
        app.get(&format!("/api/v1/manage/{token}")).await,
    );
    check(
        "GET",
        "/api/v1/staff/classes/{id}",
        app.get_as(&admin, &format!("/api/v1/staff/classes/{cid}"))
            .await,
    );
    let day = crate::availability::in_days(4);
    check(
        "GET",
        "/api/v1/staff/classes",
        app.get_as(
            &admin,
            &format!("/api/v1/staff/classes?from={day}&to={day}"),
        )
        .await,
    );
    check(
        "GET",
        "/api/v1/classes",
        app.get(&format!("/api/v1/classes?from={day}&to={day}"))
            .await,
    );

    // A waitlist entry for a one-to-one service, anyone, any time of day (null practitioner,
    // earliest, latest, class), then one for the class (null service and dates).
    let joined = check(
        "POST",
        "/api/v1/waitlist",
        app.post(
            "/api/v1/waitlist",
            json!({ "service_id": sid, "from": day.to_string(), "to": day.to_string(),
                    "patient": { "name": "Wanda Wait", "email": "wanda@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await,
    );
    let entry_token = joined.body["manage_token"]
        .as_str()
        .expect("token")
        .to_string();
    check(
        "GET",
        "/api/v1/waitlist/{token}",
        app.get(&format!("/api/v1/waitlist/{entry_token}")).await,
    );
    check(
        "POST",
        "/api/v1/waitlist",
        app.post(
            "/api/v1/waitlist",
            json!({ "class_id": cid,
                    "patient": { "name": "Wanda Wait", "email": "wanda@example.com" },
                    "consent": { "privacy": true } }),
        )
        .await,
    );
    check(
        "GET",
        "/api/v1/staff/waitlist",
        app.get_as(&admin, "/api/v1/staff/waitlist").await,
    );
    check(
        "POST",
        "/api/v1/waitlist/{token}/leave",
        app.post(&format!("/api/v1/waitlist/{entry_token}/leave"), json!({}))
            .await,
    );

    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The walk met the nulls it is about (admin practitioner_id, policy, slot, url, …).
    assert!(nulls >= 10, "only {nulls} nulls seen");
}

/// Optional properties that are left out of an answer when empty, instead of being `null`.
/// Any other optional property of an answer is an `Option` that serialises as `null`, and
/// must say so.
const OMITTED_WHEN_EMPTY: &[(&str, &str)] = &[
    ("Problem", "errors"),
    ("Problem", "conflicts"),
    ("CreatedStaffUser", "password"),
    ("PreviewOccurrence", "reason"),
    // A claimed waitlist offer answers exactly one of the two.
    ("OfferClaimed", "booking"),
    ("OfferClaimed", "seat"),
    // A manage link answers exactly one of the two.
    ("ManagedBooking", "booking"),
    ("ManagedBooking", "seat"),
    ("ManagedEnvelope", "booking"),
    ("ManagedEnvelope", "seat"),
];

/// Names of the component schemas that `value` refers to.
fn referenced(value: &Value, names: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
                names.push(
                    reference
                        .trim_start_matches("#/components/schemas/")
                        .to_string(),
                );
            }
            map.values().for_each(|v| referenced(v, names));
        }
        Value::Array(items) => items.iter().for_each(|v| referenced(v, names)),
        _ => {}
    }
}

#[tokio::test]
async fn every_optional_field_of_an_answer_is_nullable_in_the_spec() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let schemas = spec["components"]["schemas"]
        .as_object()
        .expect("component schemas");
    // Every schema an answer can carry, directly or nested.
    let mut pending = Vec::new();
    for operations in spec["paths"].as_object().expect("paths").values() {
        for operation in operations.as_object().expect("operations").values() {
            referenced(&operation["responses"], &mut pending);
        }
    }
    let mut answers = std::collections::BTreeSet::new();
    while let Some(name) = pending.pop() {
        if answers.insert(name.clone()) {
            referenced(&schemas[&name], &mut pending);
        }
    }
    assert!(answers.contains("StaffUser") && answers.contains("Booking"));

    let mut problems = Vec::new();
    for name in &answers {
        let schema = &schemas[name];
        let required: Vec<&str> = schema["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for (field, property) in schema["properties"].as_object().into_iter().flatten() {
            let omitted = OMITTED_WHEN_EMPTY.contains(&(name.as_str(), field.as_str()));
            if !required.contains(&field.as_str()) && property["nullable"] != true && !omitted {
                problems.push(format!(
                    "{name}.{field} is optional but not nullable: mark it #[oai(nullable)], \
                     or skip it when None and list it in OMITTED_WHEN_EMPTY"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn every_api_operation_documents_the_errors_around_it_as_problem_documents() {
    let app = spawn_app().await;
    let spec = spec(&app).await;
    let mut problems = Vec::new();
    let paths = spec["paths"].as_object().expect("paths");
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().expect("operations") {
            let name = format!("{} {path}", method.to_uppercase());
            let responses = operation["responses"].as_object().expect("responses");
            // Health checks answer their own JSON (a load balancer reads it); the API's
            // errors are RFC 9457 documents.
            if !path.starts_with("/api/") {
                continue;
            }
            for (status, response) in responses {
                if !(status.starts_with('4') || status.starts_with('5')) {
                    continue;
                }
                let schema = &response["content"]["application/problem+json"]["schema"];
                if schema["$ref"] != "#/components/schemas/Problem" {
                    problems.push(format!("{name} {status} is not a problem document"));
                }
            }
            // The body limit and the panic guard wrap every operation; parameters and bodies
            // that do not parse are 422; signed-in operations can be refused.
            let mut expected = vec!["413", "500", "503"];
            let has_input = operation["requestBody"].is_object()
                || operation["parameters"]
                    .as_array()
                    .is_some_and(|p| !p.is_empty());
            if has_input {
                expected.push("422");
            }
            if operation["security"].is_array() {
                expected.extend(["401", "403"]);
            }
            if *method == "post"
                && [
                    "/api/v1/bookings",
                    "/api/v1/enquiries",
                    "/api/v1/auth/login",
                    "/api/v1/classes/{id}/seats",
                ]
                .contains(&path.as_str())
            {
                expected.push("429");
            }
            for status in expected {
                if !responses.contains_key(status) {
                    problems.push(format!("{name} does not document {status}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // And the layers really answer that way: an oversized body to an operation without one.
    let big = "x".repeat(200 * 1024);
    let reply = app
        .send_raw(
            Method::GET,
            "/api/v1/clinic",
            None,
            "application/json",
            big.into_bytes(),
        )
        .await;
    reply.assert_problem(413, "payload_too_large");
}
