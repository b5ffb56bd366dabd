//! RFC 9457 problem details: the one place where errors become status codes and bodies.
//! Causes are logged; clients see only a code, a title and a safe detail.

use poem::http::StatusCode;
use poem_openapi::{ApiResponse, Object, Union, payload::Json};

use crate::domain::FieldError;

/// An RFC 9457 problem document (`application/problem+json`).
#[derive(Debug, Clone, Object)]
pub struct Problem {
    /// `/problems/<code>`.
    #[oai(rename = "type")]
    pub ty: String,
    /// A short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong with this request, in words a person can act on.
    pub detail: String,
    /// A stable, machine-readable code (the last segment of `type`).
    pub code: String,
    /// For validation failures: each field that was rejected and why.
    #[oai(skip_serializing_if_is_none)]
    pub errors: Option<Vec<ProblemField>>,
    /// For `conflicts_with_bookings`: the confirmed bookings and class sessions in the way; for
    /// `series_conflicts`: the occurrences that cannot be booked.
    #[oai(skip_serializing_if_is_none)]
    pub conflicts: Option<Vec<Conflict>>,
}

/// One entry of a problem's `conflicts`.
#[derive(Debug, Clone, Union)]
#[oai(one_of = true)]
pub enum Conflict {
    Booking(ProblemConflict),
    Occurrence(OccurrenceConflict),
    Class(ClassConflict),
}

/// A scheduled class session that a new time off or closure would cover.
#[derive(Debug, Clone, Object)]
pub struct ClassConflict {
    pub class_id: uuid::Uuid,
    /// RFC 3339 in UTC.
    pub start: chrono::DateTime<chrono::Utc>,
    /// The instructor.
    pub practitioner_id: uuid::Uuid,
    /// Seats booked in it (each holder is emailed if it is cancelled).
    pub seats_taken: u32,
}

/// An occurrence of a series that cannot be booked.
#[derive(Debug, Clone, Object)]
pub struct OccurrenceConflict {
    /// RFC 3339 in UTC.
    pub start: String,
    /// taken, time_off or closure.
    pub reason: String,
}

/// A confirmed booking that a new time off or closure would cover.
#[derive(Debug, Clone, Object)]
pub struct ProblemConflict {
    pub booking_id: uuid::Uuid,
    pub reference: String,
    /// RFC 3339 in UTC.
    pub start: chrono::DateTime<chrono::Utc>,
    pub practitioner_id: uuid::Uuid,
}

/// One rejected field of a request.
#[derive(Debug, Clone, Object)]
pub struct ProblemField {
    /// The field's path in the request, e.g. `patient.email` or `intervals[2].end`.
    pub field: String,
    pub message: String,
}

impl Problem {
    pub fn new(status: StatusCode, code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            ty: format!("/problems/{code}"),
            title: title.to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            errors: None,
            conflicts: None,
        }
    }
}

/// Every error an operation can answer with.
#[derive(Debug, ApiResponse)]
#[oai(bad_request_handler = "request_parse_error")]
pub enum ApiError {
    /// The request could not be read.
    #[oai(status = 400, content_type = "application/problem+json")]
    BadRequest(Json<Problem>),
    /// Missing, invalid or expired credentials.
    #[oai(status = 401, content_type = "application/problem+json")]
    Unauthorized(Json<Problem>),
    /// The caller's role does not allow this.
    #[oai(status = 403, content_type = "application/problem+json")]
    Forbidden(Json<Problem>),
    /// No such resource (or not visible to the caller).
    #[oai(status = 404, content_type = "application/problem+json")]
    NotFound(Json<Problem>),
    /// This address does not accept that HTTP method.
    #[oai(status = 405, content_type = "application/problem+json")]
    MethodNotAllowed(Json<Problem>),
    /// The request conflicts with the current state (e.g. the slot was taken).
    #[oai(status = 409, content_type = "application/problem+json")]
    Conflict(Json<Problem>),
    /// The body is larger than `server.body_limit_kb`.
    #[oai(status = 413, content_type = "application/problem+json")]
    PayloadTooLarge(Json<Problem>),
    /// The body is not JSON.
    #[oai(status = 415, content_type = "application/problem+json")]
    UnsupportedMediaType(Json<Problem>),
    /// The request was understood but breaks a rule; see `code` and `errors`.
    #[oai(status = 422, content_type = "application/problem+json")]
    Unprocessable(Json<Problem>),
    /// Too many requests from this client; retry after the given number of seconds.
    #[oai(status = 429, content_type = "application/problem+json")]
    TooManyRequests(Json<Problem>, #[oai(header = "Retry-After")] u64),
    /// Something failed on our side; nothing was changed.
    #[oai(status = 500, content_type = "application/problem+json")]
    Internal(Json<Problem>),
    /// The database is busy or unreachable; retry shortly.
    #[oai(status = 503, content_type = "application/problem+json")]
    Unavailable(Json<Problem>, #[oai(header = "Retry-After")] u64),
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn unauthorized(detail: &str) -> Self {
        Self::Unauthorized(Json(Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )))
    }

    pub fn invalid_credentials() -> Self {
        Self::Unauthorized(Json(Problem::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "Invalid credentials",
            "The email address or password is not correct.",
        )))
    }

    pub fn forbidden() -> Self {
        Self::Forbidden(Json(Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed",
            "Your role does not allow this action.",
        )))
    }

    /// `what` names the resource: "service", "practitioner", …
    pub fn not_found(what: &str) -> Self {
        Self::NotFound(Json(Problem::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "Not found",
            format!("No such {what}."),
        )))
    }

    pub fn conflict(code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self::Conflict(Json(Problem::new(
            StatusCode::CONFLICT,
            code,
            title,
            detail,
        )))
    }

    /// A rule broken by an otherwise well-formed request.
    pub fn rule(code: &str, title: &str, detail: impl Into<String>) -> Self {
        Self::Unprocessable(Json(Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            code,
            title,
            detail,
        )))
    }

    /// 409 `conflicts_with_bookings`, listing the bookings and class sessions in the way.
    pub fn conflicts_with_bookings(
        conflicts: Vec<ProblemConflict>,
        classes: Vec<ClassConflict>,
    ) -> Self {
        let mut problem = Problem::new(
            StatusCode::CONFLICT,
            "conflicts_with_bookings",
            "Conflicts with bookings",
            format!(
                "{} confirmed booking(s) and {} class session(s) fall in this period. Send \
                 \"on_conflict\": \"cancel\" to cancel them (the patients are emailed) or \
                 \"keep\" to keep them.",
                conflicts.len(),
                classes.len()
            ),
        );
        problem.conflicts = Some(
            conflicts
                .into_iter()
                .map(Conflict::Booking)
                .chain(classes.into_iter().map(Conflict::Class))
                .collect(),
        );
        Self::Conflict(Json(problem))
    }

    /// 409 `series_conflicts`, listing the occurrences that cannot be booked.
    pub fn series_conflicts(conflicts: Vec<OccurrenceConflict>) -> Self {
        let mut problem = Problem::new(
            StatusCode::CONFLICT,
            "series_conflicts",
            "Series conflicts",
            format!(
                "{} occurrence(s) of the series cannot be booked; nothing was booked. Send \
                 \"on_conflict\": \"skip\" to book the others.",
                conflicts.len()
            ),
        );
        problem.conflicts = Some(conflicts.into_iter().map(Conflict::Occurrence).collect());
        Self::Conflict(Json(problem))
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] => format!("{}: {}.", one.field, one.message),
            many => format!("{} fields are invalid.", many.len()),
        };
        let mut problem = Problem::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
            "Validation failed",
            detail,
        );
        problem.errors = Some(
            errors
                .into_iter()
                .map(|e| ProblemField {
                    field: e.field,
                    message: e.message,
                })
                .collect(),
        );
        Self::Unprocessable(Json(problem))
    }

    pub fn field(field: &str, message: &str) -> Self {
        Self::validation(vec![FieldError::new(field, message)])
    }

    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::TooManyRequests(
            Json(Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                "Too many requests",
                format!("Please wait {retry_after_secs} seconds before trying again."),
            )),
            retry_after_secs,
        )
    }

    /// Logs the cause and answers 500 without revealing it.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::Internal(Json(Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal error",
            "Something went wrong on our side. Nothing was changed; please try again.",
        )))
    }

    pub fn busy() -> Self {
        Self::Unavailable(
            Json(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "service_busy",
                "Service busy",
                "The service is busy. Nothing was changed; please try again in a moment.",
            )),
            1,
        )
    }
}

impl ApiError {
    /// Every password-hashing slot stayed taken (`auth.max_concurrent_hashes`).
    pub fn hashing_busy() -> Self {
        Self::Unavailable(
            Json(Problem::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "busy",
                "Too many sign-ins at once",
                "Too many sign-ins are being checked right now; please try again in a moment.",
            )),
            1,
        )
    }
}

impl From<crate::auth::password::Busy> for ApiError {
    fn from(_: crate::auth::password::Busy) -> Self {
        Self::hashing_busy()
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(err: sea_orm::DbErr) -> Self {
        if crate::store::is_busy(&err) {
            tracing::warn!(error = %err, "database busy");
            Self::busy()
        } else {
            Self::internal(err)
        }
    }
}

impl From<Vec<FieldError>> for ApiError {
    fn from(errors: Vec<FieldError>) -> Self {
        Self::validation(errors)
    }
}

impl From<FieldError> for ApiError {
    fn from(error: FieldError) -> Self {
        Self::validation(vec![error])
    }
}

/// poem-openapi calls this when a parameter or body cannot be parsed into its declared type.
fn request_parse_error(err: poem::Error) -> ApiError {
    problem_for_error(&err)
}

/// Maps any framework error (parse failure, unknown route, wrong method, missing auth,
/// oversized body…) to a problem response. Used by the route tree's catch-all as well.
pub fn problem_for_error(err: &poem::Error) -> ApiError {
    use poem_openapi::error::{ParseParamError, ParseRequestPayloadError};
    if let Some(e) = err.downcast_ref::<ParseParamError>() {
        return ApiError::field(e.name, &tidy_parse_reason(&e.reason));
    }
    if let Some(e) = err.downcast_ref::<ParseRequestPayloadError>() {
        return ApiError::validation(vec![payload_field_error(&e.reason)]);
    }
    let status = err.status();
    match status {
        StatusCode::UNAUTHORIZED => {
            ApiError::unauthorized("Send a valid staff token as `Authorization: Bearer <token>`.")
        }
        StatusCode::FORBIDDEN => ApiError::forbidden(),
        StatusCode::NOT_FOUND => ApiError::NotFound(Json(Problem::new(
            status,
            "not_found",
            "Not found",
            "There is nothing at this address.",
        ))),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(Json(Problem::new(
            status,
            "method_not_allowed",
            "Method not allowed",
            "This address does not accept that HTTP method.",
        ))),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(Json(Problem::new(
            status,
            "payload_too_large",
            "Request too large",
            "The request body is larger than this service accepts.",
        ))),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(Json(Problem::new(
            status,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as JSON with `Content-Type: application/json`.",
        ))),
        s if s.is_server_error() => ApiError::internal(err),
        _ => ApiError::BadRequest(Json(Problem::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "Bad request",
            "The request could not be understood.",
        ))),
    }
}

/// poem-openapi phrases a body error as `parse request payload error: failed to parse "X":
/// <reason>`; serde adds `at line L column C`. Keep the useful part and name the field.
fn payload_field_error(reason: &str) -> FieldError {
    let tidy = tidy_parse_reason(reason);
    let field = tidy
        .split("field `")
        .nth(1)
        .and_then(|rest| rest.split('`').next())
        .or_else(|| {
            tidy.split("field \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
        })
        .unwrap_or("body")
        .to_string();
    FieldError::new(field, tidy)
}

fn tidy_parse_reason(reason: &str) -> String {
    let reason = reason
        .rsplit_once("failed to parse \"")
        .and_then(|(_, rest)| rest.split_once("\": ").map(|(_, r)| r))
        .unwrap_or(reason);
    reason
        .chars()
        .filter(|c| !c.is_control())
        .take(300)
        .collect()
}
