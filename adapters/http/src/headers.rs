//! The request headers a command carries — `Idempotency-Key`, `X-Correlation-Id`, `traceparent` —
//! turned into the application's `CommandContext`, and the middleware that makes each request's
//! `http.request` span (continuing the client's trace) and echoes the correlation id.

use std::future::{Ready, ready};
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use ledger_application::trace_context::continue_trace;
use ledger_application::{CommandContext, IdempotencyKey};
use tracing::Instrument;
use uuid::Uuid;

use crate::auth::Principal;
use crate::problem::ApiError;

pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
pub const CORRELATION_ID: &str = "x-correlation-id";
pub const TRACEPARENT: &str = "traceparent";

/// Longest client-supplied correlation id we adopt.
pub const CORRELATION_ID_MAX_LEN: usize = 128;

/// A W3C `traceparent`: `version-traceid-parentid-flags`, 2 + 32 + 16 + 2 hex digits and 3 dashes.
const TRACEPARENT_LEN: usize = 55;

/// The correlation id of the request being served, put in the request's extensions by [`correlate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorrelationId(pub String);

/// The client's `X-Correlation-Id` if it is 1-128 visible ASCII characters, else a new UUIDv7.
pub fn correlation_id(headers: &HeaderMap) -> String {
    adopt_or_mint_correlation_id(
        headers
            .get(CORRELATION_ID)
            .and_then(|value| value.to_str().ok()),
    )
}

/// [`correlation_id`] over the header's text (`None` when absent or not visible ASCII), for an
/// adapter whose header map is not actix's (the query Lambda's).
pub fn adopt_or_mint_correlation_id(client_value: Option<&str>) -> String {
    client_value
        .filter(|text| {
            !text.is_empty()
                && text.len() <= CORRELATION_ID_MAX_LEN
                && text.bytes().all(|b| b.is_ascii_graphic())
        })
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned)
}

/// The `traceparent` header if it is a well-formed W3C trace context, else `None`: a malformed one
/// is dropped rather than refused, as the trace-context specification asks of receivers.
pub fn traceparent(headers: &HeaderMap) -> Option<String> {
    well_formed_traceparent(headers.get(TRACEPARENT)?.to_str().ok()?)
}

/// [`traceparent`] over the header's text, for an adapter whose header map is not actix's.
pub fn well_formed_traceparent(text: &str) -> Option<String> {
    is_valid_traceparent(text).then(|| text.to_owned())
}

fn is_valid_traceparent(text: &str) -> bool {
    if text.len() != TRACEPARENT_LEN {
        return false;
    }
    let lower_hex = |part: &str| {
        part.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let not_all_zero = |part: &str| part.bytes().any(|b| b != b'0');
    let mut parts = text.split('-');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(version), Some(trace_id), Some(parent_id), Some(flags), None) => {
            version.len() == 2
                && trace_id.len() == 32
                && parent_id.len() == 16
                && flags.len() == 2
                && [version, trace_id, parent_id, flags]
                    .into_iter()
                    .all(lower_hex)
                && version != "ff"
                && not_all_zero(trace_id)
                && not_all_zero(parent_id)
        }
        _ => false,
    }
}

/// The `Idempotency-Key` header: required, present once, and valid per [`IdempotencyKey::parse`].
pub fn idempotency_key(headers: &HeaderMap) -> Result<IdempotencyKey, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY);
    let Some(value) = values.next() else {
        return Err(ApiError::MissingIdempotencyKey);
    };
    if values.next().is_some() {
        // Two keys make it ambiguous which request this is: refuse rather than pick one.
        return Err(ApiError::InvalidIdempotencyKey);
    }
    value
        .to_str()
        .ok()
        .and_then(|text| IdempotencyKey::parse(text).ok())
        .ok_or(ApiError::InvalidIdempotencyKey)
}

/// Extracts the `CommandContext` of a command from its headers. Put it first among a handler's
/// arguments so that a missing key is reported before anything about the body.
#[derive(Debug, Clone)]
pub struct CommandHeaders(pub CommandContext);

impl FromRequest for CommandHeaders {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let headers = req.headers();
        // Put there by the resource's auth guard, which runs first; a command reaching here without
        // one is a mounting mistake, refused rather than recorded as nobody.
        let Some(caller) = req
            .extensions()
            .get::<Principal>()
            .map(|principal| principal.caller().clone())
        else {
            return ready(Err(ApiError::internal_message(
                "a command handler ran without an authenticated principal",
            )));
        };
        let context = idempotency_key(headers).map(|idempotency_key| {
            let correlation_id = req
                .extensions()
                .get::<CorrelationId>()
                .map_or_else(|| correlation_id(headers), |id| id.0.clone());
            Self(CommandContext {
                caller,
                idempotency_key,
                correlation_id,
                traceparent: traceparent(headers),
            })
        });
        ready(context)
    }
}

/// Middleware: settles the request's correlation id (the client's or a new one), makes it available
/// to the handler, runs the handler inside the request's `http.request` server span (a child of the
/// client's `traceparent`, if any), records the status and echoes the correlation id in the response.
pub async fn correlate(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = correlation_id(req.headers());
    req.extensions_mut().insert(CorrelationId(id.clone()));
    let span = request_span(&req, &id);
    let started = Instant::now();
    let served = next.call(req).instrument(span.clone()).await;
    let status = match &served {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    record_status(&span, status, started.elapsed());
    let mut response = served?;
    // The id is visible ASCII by construction, so it is always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(CORRELATION_ID), value);
    }
    Ok(response)
}

/// The request's server span, named by its route template.
fn request_span(req: &ServiceRequest, correlation_id: &str) -> tracing::Span {
    let span = http_request_span(
        req.method().as_str(),
        req.match_pattern().as_deref(),
        req.path(),
        traceparent(req.headers()).as_deref(),
    );
    span.record("correlation_id", correlation_id);
    span
}

/// One `http.request` server span, for the actix middleware and the query Lambda alike: named by
/// its route template (never the raw path, which holds ids; the method alone for a path no route
/// matches, as OpenTelemetry's HTTP conventions say), its parent the client's trace when the
/// request carries a well-formed `traceparent`. Record the answer with [`record_http_status`].
pub fn http_request_span(
    method: &str,
    route: Option<&str>,
    path: &str,
    traceparent: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        "http.request",
        otel.name = %route.map_or_else(|| method.to_owned(), |route| format!("{method} {route}")),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = tracing::field::Empty,
        url.path = path,
        http.response.status_code = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
        // The authenticated caller's subject (never the token), once it is verified.
        enduser.id = tracing::field::Empty,
    );
    if let Some(route) = route {
        span.record("http.route", route);
    }
    // Before the span is entered: once started, its parent is fixed.
    continue_trace(&span, traceparent);
    span
}

/// The answer's status on an [`http_request_span`]: a 5xx marks it failed, as OpenTelemetry's HTTP
/// conventions ask of a server; a 4xx is the client's error, not the server's.
pub fn record_http_status(span: &tracing::Span, status: u16) {
    span.record("http.response.status_code", status);
    if (500..600).contains(&status) {
        span.record("otel.status_code", "ERROR");
    }
}

/// The status on the span and one access-log line inside it.
fn record_status(span: &tracing::Span, status: StatusCode, elapsed: Duration) {
    record_http_status(span, status.as_u16());
    let elapsed_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| {
        tracing::info!(status = status.as_u16(), elapsed_us, "request served");
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        map
    }

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn well_formed_traceparents_are_kept_and_others_dropped() {
        assert_eq!(
            traceparent(&headers(&[(TRACEPARENT, VALID)])),
            Some(VALID.to_owned())
        );
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            "00-4bf92f3577b34da6a3ce929d0e0e47360-0f067aa0ba902b7-01",
            "00_4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7_01",
        ] {
            assert_eq!(traceparent(&headers(&[(TRACEPARENT, bad)])), None, "{bad}");
        }
        assert_eq!(traceparent(&HeaderMap::new()), None);
    }

    #[test]
    fn a_client_correlation_id_is_adopted_only_when_valid() {
        assert_eq!(
            correlation_id(&headers(&[(CORRELATION_ID, "req-42")])),
            "req-42"
        );
        for bad in ["", "has space", "\u{7f}"] {
            let mut map = HeaderMap::new();
            if let Ok(value) = HeaderValue::from_str(bad) {
                map.insert(HeaderName::from_static(CORRELATION_ID), value);
            }
            let generated = correlation_id(&map);
            assert_ne!(generated, bad);
            assert!(Uuid::parse_str(&generated).is_ok(), "{generated}");
        }
    }

    #[test]
    fn the_idempotency_key_must_be_present_once_and_valid() {
        assert!(matches!(
            idempotency_key(&HeaderMap::new()),
            Err(ApiError::MissingIdempotencyKey)
        ));
        assert!(matches!(
            idempotency_key(&headers(&[(IDEMPOTENCY_KEY, "a b")])),
            Err(ApiError::InvalidIdempotencyKey)
        ));
        assert!(matches!(
            idempotency_key(&headers(&[
                (IDEMPOTENCY_KEY, "k1"),
                (IDEMPOTENCY_KEY, "k2")
            ])),
            Err(ApiError::InvalidIdempotencyKey)
        ));
        assert_eq!(
            idempotency_key(&headers(&[(IDEMPOTENCY_KEY, "k1")]))
                .expect("valid key")
                .as_str(),
            "k1"
        );
    }
}
