//! The JSON log layer: one JSON object per line for every event, with the OpenTelemetry `trace_id`
//! and `span_id` of the innermost span that has one (tracing-subscriber's own JSON format cannot
//! know them: they live in the OpenTelemetry layer's span data).
//!
//! A line: `{"timestamp", "level", "message", "target", <the event's fields>, "trace_id"?,
//! "span_id"?, "spans": [{"name", <its fields>}, ...]}` (spans root first). An event field whose name
//! is one of those keys is written as `fields.<name>` rather than lost.

use std::fmt;
use std::io::Write as _;
use std::sync::{Arc, OnceLock};

use opentelemetry::trace::TraceContextExt as _;
use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Record};
use tracing::{Dispatch, Event, Id, Subscriber, dispatcher::WeakDispatch};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime as _, SystemTime};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

/// The keys of a line that are not the event's own fields.
const RESERVED_KEYS: [&str; 7] = [
    "timestamp",
    "level",
    "message",
    "target",
    "trace_id",
    "span_id",
    "spans",
];

/// A span's fields, kept in its extensions from its creation (and later `record` calls).
struct SpanFields(Map<String, Value>);

/// The dispatcher the layers are part of, to ask the OpenTelemetry layer for a span's context. Weak:
/// the dispatcher owns the layers.
type SharedDispatch = Arc<OnceLock<WeakDispatch>>;

/// Writes each event as a JSON line to `W` (stdout in the binaries).
pub struct JsonLogLayer<W = fn() -> std::io::Stdout> {
    dispatch: SharedDispatch,
    make_writer: W,
}

impl<W> fmt::Debug for JsonLogLayer<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonLogLayer").finish_non_exhaustive()
    }
}

/// Learns the dispatcher when it is registered, for [`JsonLogLayer`]. A layer of its own because
/// the log layer sits behind a per-layer filter, and a filtered layer is not told the dispatcher.
#[derive(Debug)]
pub struct DispatchCapture {
    dispatch: SharedDispatch,
}

impl<S: Subscriber> tracing_subscriber::Layer<S> for DispatchCapture {
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        let _ = self.dispatch.set(subscriber.downgrade());
    }
}

impl JsonLogLayer {
    /// The layer on stdout, and the unfiltered layer that tells it the dispatcher: install both.
    pub fn stdout() -> (Self, DispatchCapture) {
        Self::with_writer(std::io::stdout)
    }
}

impl<W> JsonLogLayer<W>
where
    W: for<'writer> MakeWriter<'writer> + 'static,
{
    /// The layer on `make_writer`, and the layer that tells it the dispatcher: install both.
    pub fn with_writer(make_writer: W) -> (Self, DispatchCapture) {
        let dispatch = SharedDispatch::default();
        (
            Self {
                dispatch: Arc::clone(&dispatch),
                make_writer,
            },
            DispatchCapture { dispatch },
        )
    }

    /// The OpenTelemetry context of the innermost span of `scope` that has a valid one.
    fn trace_ids<S>(&self, ctx: &Context<'_, S>, event: &Event<'_>) -> Option<(String, String)>
    where
        S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    {
        let dispatch = self.dispatch.get()?.upgrade()?;
        let scope = ctx.event_scope(event)?;
        scope.into_iter().find_map(|span| {
            let context = tracing_opentelemetry::get_otel_context(&span.id(), &dispatch)?;
            let otel_span = context.span();
            let span_context = otel_span.span_context();
            span_context.is_valid().then(|| {
                (
                    span_context.trace_id().to_string(),
                    span_context.span_id().to_string(),
                )
            })
        })
    }
}

impl<S, W> tracing_subscriber::Layer<S> for JsonLogLayer<W>
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
    W: for<'writer> MakeWriter<'writer> + 'static,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut fields = JsonFields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanFields(fields.0));
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(SpanFields(fields)) = extensions.get_mut::<SpanFields>() {
            let mut recorded = JsonFields(std::mem::take(fields));
            values.record(&mut recorded);
            *fields = recorded.0;
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let metadata = event.metadata();
        // In this order, whatever the fields are called: a reader finds time, level and message
        // first. (serde_json's map sorts its keys, so the line is put together here.)
        let mut line: Vec<(String, Value)> = Vec::with_capacity(16);
        let mut timestamp = String::new();
        if SystemTime
            .format_time(&mut Writer::new(&mut timestamp))
            .is_ok()
        {
            line.push(("timestamp".to_owned(), Value::String(timestamp)));
        }
        line.push((
            "level".to_owned(),
            Value::String(metadata.level().to_string()),
        ));
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        if let Some(message) = fields.0.remove("message") {
            line.push(("message".to_owned(), message));
        }
        line.push((
            "target".to_owned(),
            Value::String(metadata.target().to_owned()),
        ));
        for (name, value) in fields.0 {
            let key = if RESERVED_KEYS.contains(&name.as_str()) {
                format!("fields.{name}")
            } else {
                name
            };
            line.push((key, value));
        }
        // Read before the spans' extensions are borrowed below: the OpenTelemetry layer locks them.
        if let Some((trace_id, span_id)) = self.trace_ids(&ctx, event) {
            line.push(("trace_id".to_owned(), Value::String(trace_id)));
            line.push(("span_id".to_owned(), Value::String(span_id)));
        }
        if let Some(scope) = ctx.event_scope(event) {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|span| {
                    let mut entry = Map::new();
                    entry.insert("name".to_owned(), Value::String(span.name().to_owned()));
                    if let Some(SpanFields(fields)) = span.extensions().get::<SpanFields>() {
                        entry.extend(fields.iter().map(|(k, v)| (k.clone(), v.clone())));
                    }
                    Value::Object(entry)
                })
                .collect();
            if !spans.is_empty() {
                line.push(("spans".to_owned(), Value::Array(spans)));
            }
        }
        let text = json_line(&line);
        // One write per line (stdout's writer holds its lock for it), so that lines of concurrent
        // events never mix. A closed stdout loses the line; logging must not fail the program.
        let _ = self.make_writer.make_writer().write_all(text.as_bytes());
    }
}

/// `{"key":value,...}` and a newline, the keys in the order given.
fn json_line(entries: &[(String, Value)]) -> String {
    let mut text = String::with_capacity(256);
    text.push('{');
    for (index, (key, value)) in entries.iter().enumerate() {
        if index > 0 {
            text.push(',');
        }
        // A string key and a `Value` always serialise.
        text.push_str(&Value::String(key.clone()).to_string());
        text.push(':');
        text.push_str(&value.to_string());
    }
    text.push_str("}\n");
    text
}

/// Collects fields as JSON values: numbers and booleans as such, everything else as text.
#[derive(Default)]
struct JsonFields(Map<String, Value>);

impl Visit for JsonFields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_owned()));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.0
            .insert(field.name().to_owned(), Value::String(value.to_string()));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_owned(), Value::String(format!("{value:?}")));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::layer::SubscriberExt as _;

    use super::*;

    /// Lines written into memory, for the test to read.
    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lines").extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Lines {
        fn objects(&self) -> Vec<Map<String, Value>> {
            let bytes = self.0.lock().expect("lines").clone();
            String::from_utf8(bytes)
                .expect("UTF-8")
                .lines()
                .map(|line| match serde_json::from_str(line) {
                    Ok(Value::Object(object)) => object,
                    other => panic!("not a JSON object: {line:?} ({other:?})"),
                })
                .collect()
        }
    }

    fn subscriber_with(otel: bool, lines: &Lines) -> Dispatch {
        let writer = lines.clone();
        let (layer, capture) = JsonLogLayer::with_writer(move || writer.clone());
        // No exporter: spans get real ids and go nowhere.
        let otel_layer = otel.then(|| {
            tracing_opentelemetry::layer()
                .with_tracer(SdkTracerProvider::builder().build().tracer("test"))
        });
        Dispatch::new(
            tracing_subscriber::registry()
                .with(capture)
                .with(layer)
                .with(otel_layer),
        )
    }

    #[test]
    fn a_line_carries_the_trace_and_span_ids_of_its_span_and_the_fields_in_order() {
        let lines = Lines::default();
        tracing::dispatcher::with_default(&subscriber_with(true, &lines), || {
            let span = tracing::info_span!("http.request", url.path = "/v1/accounts");
            ledger_application::trace_context::continue_trace(
                &span,
                Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
            );
            span.in_scope(|| {
                tracing::info!(status = 201_u64, level = "field", "request served");
            });
            tracing::info!("outside");
        });
        let objects = lines.objects();
        assert_eq!(objects.len(), 2, "{objects:?}");
        let served = &objects[0];
        let keys: Vec<&str> = served.keys().map(String::as_str).collect();
        assert!(keys.contains(&"timestamp"), "{keys:?}");
        assert_eq!(served["level"], "INFO");
        assert_eq!(served["message"], "request served");
        assert_eq!(served["status"], 201);
        // A field named like a key of the line is kept under another name, not lost.
        assert_eq!(served["fields.level"], "field");
        assert_eq!(served["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        let span_id = served["span_id"].as_str().expect("a span id");
        assert_eq!(span_id.len(), 16);
        assert_ne!(
            span_id, "b7ad6b7169203331",
            "the line's own span, not the client's"
        );
        assert_eq!(served["spans"][0]["name"], "http.request");
        assert_eq!(served["spans"][0]["url.path"], "/v1/accounts");
        // Outside any span there is no trace.
        assert!(!objects[1].contains_key("trace_id"), "{:?}", objects[1]);
        assert!(!objects[1].contains_key("spans"), "{:?}", objects[1]);
    }

    #[test]
    fn without_an_opentelemetry_layer_lines_have_no_trace_ids() {
        let lines = Lines::default();
        tracing::dispatcher::with_default(&subscriber_with(false, &lines), || {
            tracing::info_span!("http.request").in_scope(|| tracing::info!("request served"));
        });
        let objects = lines.objects();
        assert_eq!(objects.len(), 1);
        assert!(!objects[0].contains_key("trace_id"), "{:?}", objects[0]);
        assert_eq!(objects[0]["spans"][0]["name"], "http.request");
    }
}
