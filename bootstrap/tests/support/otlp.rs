//! A real OTLP/HTTP receiver for the telemetry tests: an HTTP server on 127.0.0.1 (port 0) that takes
//! `POST /v1/traces` and `POST /v1/metrics` (protobuf, as `opentelemetry-otlp` sends them), decodes
//! them with the protocol's own messages and keeps the spans, metric names and data points for the
//! test to wait for. What a binary exports reaches it over the network, as it would a collector.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
use actix_web::{HttpRequest, HttpResponse, web};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::metric::Data;
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message as _;

/// The largest export accepted (a batch of 512 spans is far below it).
const BODY_LIMIT_BYTES: usize = 16 * 1024 * 1024;

/// One received span, ids in lower-case hex as in a `traceparent`.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    pub service_name: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    /// The protocol's `SpanKind` number: 1 internal, 2 server, 3 client, 4 producer, 5 consumer.
    pub kind: i32,
    /// The protocol's `StatusCode` number: 0 unset, 1 ok, 2 error.
    pub status_code: i32,
    pub attributes: BTreeMap<String, String>,
}

/// One received metric data point (any kind), with its metric's name and its attributes.
#[derive(Debug, Clone)]
pub struct ReceivedDataPoint {
    pub service_name: String,
    pub metric: String,
    pub attributes: BTreeMap<String, String>,
    /// The point's count for a histogram; 1 for a sum or gauge point.
    pub count: u64,
}

#[derive(Debug, Default)]
struct Received {
    requests: usize,
    spans: Vec<ReceivedSpan>,
    data_points: Vec<ReceivedDataPoint>,
}

type Shared = Arc<Mutex<Received>>;

/// The running receiver; stopped when dropped.
#[derive(Debug)]
pub struct OtlpReceiver {
    port: u16,
    received: Shared,
    handle: ServerHandle,
}

impl OtlpReceiver {
    /// Listens on 127.0.0.1 at a port the OS picks, serving on a thread (and actix runtime) of its
    /// own, so the test's runtime is free to be anything.
    pub fn start() -> Self {
        let received = Shared::default();
        let state = Arc::clone(&received);
        let (port, handle) = super::loopback::serve(1, BODY_LIMIT_BYTES, move |config| {
            config
                .app_data(web::Data::new(Arc::clone(&state)))
                .route("/v1/traces", web::post().to(traces))
                .route("/v1/metrics", web::post().to(metrics));
        });
        Self {
            port,
            received,
            handle,
        }
    }

    /// `http://127.0.0.1:<port>`: the value of `OTEL_EXPORTER_OTLP_ENDPOINT` for a binary.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// How many export requests (traces and metrics, well formed or not) arrived so far.
    pub fn requests(&self) -> usize {
        self.lock().requests
    }

    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.lock().spans.clone()
    }

    pub fn data_points(&self) -> Vec<ReceivedDataPoint> {
        self.lock().data_points.clone()
    }

    /// The spans received, once `done` says they are enough; fails after `within` with what came.
    pub fn wait_for_spans(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + within;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not get {what} within {within:?}; it got:\n{}",
                describe_spans(&spans)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The data points received, once `done` says they are enough; fails after `within`.
    pub fn wait_for_data_points(
        &self,
        what: &str,
        within: Duration,
        done: impl Fn(&[ReceivedDataPoint]) -> bool,
    ) -> Vec<ReceivedDataPoint> {
        let deadline = Instant::now() + within;
        loop {
            let points = self.data_points();
            if done(&points) {
                return points;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver did not get {what} within {within:?}; it got metrics {:?}",
                points
                    .iter()
                    .map(|point| point.metric.as_str())
                    .collect::<std::collections::BTreeSet<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.received.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        // The stop command is sent at once; the server's thread ends on its own.
        drop(self.handle.stop(false));
    }
}

/// One line per span, for failure messages.
pub fn describe_spans(spans: &[ReceivedSpan]) -> String {
    let mut text = String::new();
    for span in spans {
        let _ = writeln!(
            text,
            "  {} trace={} span={} parent={} kind={} status={} {:?}",
            span.name,
            span.trace_id,
            span.span_id,
            span.parent_span_id,
            span.kind,
            span.status_code,
            span.attributes
        );
    }
    text
}

/// A request the exporter could send but this receiver does not read: compressed bodies (the
/// workspace's exporter has no compression feature, so none should come) and JSON.
fn unreadable(req: &HttpRequest) -> Option<StatusCode> {
    let headers = req.headers();
    let encoded = headers
        .get(CONTENT_ENCODING)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|encoding| !encoding.eq_ignore_ascii_case("identity"));
    let protobuf = headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|content_type| content_type.starts_with("application/x-protobuf"));
    (encoded || !protobuf).then_some(StatusCode::UNSUPPORTED_MEDIA_TYPE)
}

fn protobuf_response(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/x-protobuf")
        .body(body)
}

/// Counts the request and decodes its export, or answers why it cannot (415, 400).
fn decode_export<M: prost::Message + Default>(
    req: &HttpRequest,
    body: &[u8],
    received: &mut Received,
) -> Result<M, StatusCode> {
    received.requests += 1;
    if let Some(refused) = unreadable(req) {
        return Err(refused);
    }
    M::decode(body).map_err(|_| StatusCode::BAD_REQUEST)
}

/// The `service.name` of an export's resource.
fn resource_service_name(resource: Option<&Resource>) -> String {
    resource
        .map(|resource| service_name(&resource.attributes))
        .unwrap_or_default()
}

async fn traces(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let mut received = state.lock().unwrap_or_else(PoisonError::into_inner);
    let export: ExportTraceServiceRequest = match decode_export(&req, &body, &mut received) {
        Ok(export) => export,
        Err(refused) => return HttpResponse::new(refused),
    };
    for resource_spans in export.resource_spans {
        let service_name = resource_service_name(resource_spans.resource.as_ref());
        for scope_spans in resource_spans.scope_spans {
            for span in scope_spans.spans {
                received.spans.push(ReceivedSpan {
                    service_name: service_name.clone(),
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    status_code: span.status.map_or(0, |status| status.code),
                    attributes: attributes(&span.attributes),
                });
            }
        }
    }
    protobuf_response(ExportTraceServiceResponse::default().encode_to_vec())
}

async fn metrics(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let mut received = state.lock().unwrap_or_else(PoisonError::into_inner);
    let export: ExportMetricsServiceRequest = match decode_export(&req, &body, &mut received) {
        Ok(export) => export,
        Err(refused) => return HttpResponse::new(refused),
    };
    for resource_metrics in export.resource_metrics {
        let service_name = resource_service_name(resource_metrics.resource.as_ref());
        for scope_metrics in resource_metrics.scope_metrics {
            for metric in scope_metrics.metrics {
                let points: Vec<(BTreeMap<String, String>, u64)> = match metric.data {
                    Some(Data::Histogram(histogram)) => histogram
                        .data_points
                        .iter()
                        .map(|point| (attributes(&point.attributes), point.count))
                        .collect(),
                    Some(Data::ExponentialHistogram(histogram)) => histogram
                        .data_points
                        .iter()
                        .map(|point| (attributes(&point.attributes), point.count))
                        .collect(),
                    Some(Data::Sum(sum)) => sum
                        .data_points
                        .iter()
                        .map(|point| (attributes(&point.attributes), 1))
                        .collect(),
                    Some(Data::Gauge(gauge)) => gauge
                        .data_points
                        .iter()
                        .map(|point| (attributes(&point.attributes), 1))
                        .collect(),
                    Some(Data::Summary(summary)) => summary
                        .data_points
                        .iter()
                        .map(|point| (attributes(&point.attributes), point.count))
                        .collect(),
                    None => Vec::new(),
                };
                for (point_attributes, count) in points {
                    received.data_points.push(ReceivedDataPoint {
                        service_name: service_name.clone(),
                        metric: metric.name.clone(),
                        attributes: point_attributes,
                        count,
                    });
                }
            }
        }
    }
    protobuf_response(ExportMetricsServiceResponse::default().encode_to_vec())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut text, byte| {
        let _ = write!(text, "{byte:02x}");
        text
    })
}

fn service_name(resource_attributes: &[KeyValue]) -> String {
    attributes(resource_attributes)
        .remove("service.name")
        .unwrap_or_default()
}

/// Attributes as text: strings as they are, other values as they print.
fn attributes(key_values: &[KeyValue]) -> BTreeMap<String, String> {
    key_values
        .iter()
        .map(|key_value| {
            (
                key_value.key.clone(),
                key_value.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect()
}

fn text(value: &AnyValue) -> String {
    match &value.value {
        Some(any_value::Value::StringValue(text)) => text.clone(),
        Some(any_value::Value::BoolValue(flag)) => flag.to_string(),
        Some(any_value::Value::IntValue(number)) => number.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
