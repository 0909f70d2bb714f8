//! W3C trace context (`traceparent`) between the ledger's hops: read into a span's parent where a
//! trace arrives (an HTTP header, an event's stored metadata), written out from the current span.
//!
//! Through the OpenTelemetry API only: with no OpenTelemetry layer installed (tests, telemetry off)
//! spans have no OpenTelemetry context, [`continue_trace`] does nothing and [`current_traceparent`]
//! answers `None`, so callers keep whatever `traceparent` they were given.

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Parses a W3C `traceparent` (`00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>`) into a
/// remote span context. `None` for anything else: an unknown version with fewer fields, upper-case
/// hex, an all-zero id. A malformed header starts a new trace rather than failing a request.
pub fn parse_traceparent(traceparent: &str) -> Option<SpanContext> {
    let mut fields = traceparent.trim().split('-');
    let version = fields.next()?;
    let trace_id = fields.next()?;
    let span_id = fields.next()?;
    let flags = fields.next()?;
    // Version 00 has exactly four fields; a later version may append more (the spec says to read
    // the first four), but `ff` is forbidden.
    if version.len() != 2 || version == "ff" || (version == "00" && fields.next().is_some()) {
        return None;
    }
    let is_lower_hex = |text: &str, len: usize| {
        text.len() == len && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !(is_lower_hex(version, 2)
        && is_lower_hex(trace_id, 32)
        && is_lower_hex(span_id, 16)
        && is_lower_hex(flags, 2))
    {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let context = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    context.is_valid().then_some(context)
}

/// The `traceparent` of a span context, or `None` if it is not valid (no trace).
pub fn format_traceparent(context: &SpanContext) -> Option<String> {
    context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            context.trace_id(),
            context.span_id(),
            context.trace_flags().to_u8()
        )
    })
}

/// Makes `span` a child of the trace named by `traceparent`, if any and well formed. Call it right
/// after creating the span and before entering it: once a span has started, its parent is fixed
/// (the attempt is then ignored, as it is without an OpenTelemetry layer).
pub fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    if let Some(remote) = traceparent.and_then(parse_traceparent) {
        // Err only means there is no OpenTelemetry layer or the span is disabled: nothing to join.
        let _ = span.set_parent(Context::new().with_remote_span_context(remote));
    }
}

/// The `traceparent` of the current span (its own span id, so a hop continued from it is its
/// child), or `None` when there is no OpenTelemetry context (telemetry off).
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    format_traceparent(&context.span().span_context().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_well_formed_traceparent_round_trips() {
        let context = parse_traceparent(EXAMPLE).expect("valid");
        assert!(context.is_remote());
        assert!(context.is_sampled());
        assert_eq!(format_traceparent(&context).as_deref(), Some(EXAMPLE));
    }

    #[test]
    fn malformed_traceparents_are_refused() {
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319-cb7ad6b7169203331-01",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn a_later_version_with_more_fields_is_read_by_its_first_four() {
        let later = "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-future";
        assert!(parse_traceparent(later).is_some());
    }

    #[test]
    fn without_an_opentelemetry_layer_there_is_no_current_traceparent() {
        let span = tracing::info_span!("no layer");
        continue_trace(&span, Some(EXAMPLE));
        let _entered = span.enter();
        assert_eq!(current_traceparent(), None);
    }
}
