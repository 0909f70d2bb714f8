//! Telemetry of every deployable: JSON log lines (filtered by `RUST_LOG`, default `info`) carrying the
//! current OpenTelemetry trace and span ids, and OTLP/HTTP export of traces and metrics when the
//! standard `OTEL_*` variables ask for it. With none of them set there is no exporter, no thread and
//! no connection: only the log layer is installed.
//!
//! The variables, as the OpenTelemetry SDKs read them:
//! - `OTEL_EXPORTER_OTLP_ENDPOINT` (both signals, `/v1/traces` and `/v1/metrics` appended), or the
//!   per-signal `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` / `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` (used as
//!   they are): a signal is exported only when one of them names an endpoint for it;
//! - `OTEL_SDK_DISABLED=true` turns all export off; `OTEL_TRACES_EXPORTER=none` /
//!   `OTEL_METRICS_EXPORTER=none` turn one signal off;
//! - `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` name the service (else the binary's name);
//! - `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_*`,
//!   `OTEL_METRIC_EXPORT_INTERVAL`, `OTEL_TRACES_SAMPLER(_ARG)`: read by the SDK itself.
//!
//! `LEDGER_LOG_FORMAT=text` prints human-readable lines instead of JSON (for `cargo run`).

mod json_log;

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Key, global};
use opentelemetry_otlp::{MetricExporter, Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer};

pub use json_log::{DispatchCapture, JsonLogLayer};

/// The instrumentation scope of the ledger's spans (the meter of its metrics has the same name).
pub const INSTRUMENTATION_SCOPE: &str = "ledger";

/// The providers that export, when the environment asked for export. Cloning one is cheap (an `Arc`).
#[derive(Debug, Clone, Default)]
struct Exporters {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
}

/// The process's telemetry, installed once by [`init`]. Every handle reaches the same providers.
#[derive(Debug, Clone)]
pub struct Telemetry {
    exporters: Exporters,
}

/// Installed once per process: a second [`init`] (tests starting several apps, a Lambda's cold
/// start calling it from a shared helper) gets the same handle without building anything again.
static INSTALLED: OnceLock<Exporters> = OnceLock::new();

/// Installs the global subscriber (and, when asked by `OTEL_*`, the exporters, the global meter
/// provider and the W3C TraceContext propagator) once per process; later calls only return a handle.
/// `service_name` is the `service.name` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// names one.
pub fn init(service_name: &'static str) -> Telemetry {
    let exporters = INSTALLED.get_or_init(|| install(service_name)).clone();
    Telemetry { exporters }
}

impl Telemetry {
    /// Whether spans are exported (false when no `OTEL_*` variable asked for it).
    pub fn exports_traces(&self) -> bool {
        self.exporters.tracer_provider.is_some()
    }

    /// Whether metrics are exported.
    pub fn exports_metrics(&self) -> bool {
        self.exporters.meter_provider.is_some()
    }

    /// Sends every finished span and the current metrics now, waiting for the exports (bounded by
    /// the exporters' timeouts). A Lambda calls it after every invocation, before its environment is
    /// frozen; it blocks the calling thread, so call it from a blocking context there. A failed export
    /// is logged, never returned: telemetry must not fail a request.
    pub fn flush(&self) {
        if let Some(provider) = &self.exporters.tracer_provider
            && let Err(error) = provider.force_flush()
        {
            tracing::warn!(%error, "flushing spans failed");
        }
        if let Some(provider) = &self.exporters.meter_provider
            && let Err(error) = provider.force_flush()
        {
            tracing::warn!(%error, "flushing metrics failed");
        }
    }

    /// [`Telemetry::flush`] on a blocking thread, for async code (a Lambda's handler); nothing at all
    /// when nothing is exported.
    pub async fn flush_off_runtime(&self) {
        if !self.exports_traces() && !self.exports_metrics() {
            return;
        }
        let telemetry = self.clone();
        if let Err(error) = tokio::task::spawn_blocking(move || telemetry.flush()).await {
            tracing::warn!(%error, "flushing telemetry failed");
        }
    }

    /// Flushes and stops the exporters' threads; for a binary's graceful shutdown (after the server
    /// drained, so the last requests' spans go too). Spans ended after it are dropped.
    pub fn shutdown(&self) {
        if let Some(provider) = &self.exporters.tracer_provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "shutting span export down failed");
        }
        if let Some(provider) = &self.exporters.meter_provider
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "shutting metric export down failed");
        }
    }
}

/// Which signals the environment asks to export, decided from the variables alone (so it is tested
/// without touching the process environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportRequest {
    pub traces: bool,
    pub metrics: bool,
}

impl ExportRequest {
    /// Reads the `OTEL_*` variables through `var` (the process environment in [`init`]).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let set = |name: &str| var(name).is_some_and(|value| !value.trim().is_empty());
        let is = |name: &str, expected: &str| {
            var(name).is_some_and(|value| value.trim().eq_ignore_ascii_case(expected))
        };
        if is("OTEL_SDK_DISABLED", "true") {
            return Self {
                traces: false,
                metrics: false,
            };
        }
        let any_endpoint = set("OTEL_EXPORTER_OTLP_ENDPOINT");
        Self {
            traces: (any_endpoint || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
                && !is("OTEL_TRACES_EXPORTER", "none"),
            metrics: (any_endpoint || set("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"))
                && !is("OTEL_METRICS_EXPORTER", "none"),
        }
    }
}

/// Whether log lines are JSON (the default: what CloudWatch and collectors parse) or text.
fn json_logs() -> bool {
    !std::env::var("LEDGER_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("text"))
}

fn install(service_name: &'static str) -> Exporters {
    // The trace context crosses every hop as W3C `traceparent`; set even without export, so that a
    // propagator-based extraction elsewhere (the Lambda's API Gateway headers) agrees with ours.
    global::set_text_map_propagator(TraceContextPropagator::new());
    let request = ExportRequest::from_vars(|name| std::env::var(name).ok());
    let mut problems = Vec::new();
    let resource = (request.traces || request.metrics).then(|| resource(service_name));
    let tracer_provider = resource
        .clone()
        .filter(|_| request.traces)
        .and_then(|resource| match tracer_provider(resource) {
            Ok(provider) => Some(provider),
            Err(error) => {
                problems.push(format!("span export is off: {error}"));
                None
            }
        });
    let meter_provider =
        resource
            .filter(|_| request.metrics)
            .and_then(|resource| match meter_provider(resource) {
                Ok(provider) => Some(provider),
                Err(error) => {
                    problems.push(format!("metric export is off: {error}"));
                    None
                }
            });
    if let Some(provider) = &meter_provider {
        global::set_meter_provider(provider.clone());
    }
    if let Some(provider) = &tracer_provider {
        global::set_tracer_provider(provider.clone());
    }

    let log_filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // The capture is installed even for text lines: an `Option` of a layer is not told the dispatcher.
    let (json_layer, dispatch_capture) = JsonLogLayer::stdout();
    let log_layer = if json_logs() {
        json_layer.boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    };
    // The OpenTelemetry layer has a filter of its own: `RUST_LOG=warn` quiets the logs, not the
    // traces. The exporter's own HTTP client never makes spans of its exports.
    let otel_layer = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(INSTRUMENTATION_SCOPE))
            .with_filter(
                Targets::new()
                    .with_default(LevelFilter::INFO)
                    .with_target("opentelemetry", LevelFilter::OFF)
                    .with_target("opentelemetry_sdk", LevelFilter::OFF)
                    .with_target("opentelemetry_otlp", LevelFilter::OFF)
                    .with_target("hyper", LevelFilter::OFF)
                    .with_target("reqwest", LevelFilter::OFF),
            )
    });
    let installed = tracing_subscriber::registry()
        .with(dispatch_capture)
        .with(log_layer.with_filter(log_filter))
        .with(otel_layer)
        .try_init()
        .is_ok();
    if !installed {
        problems.push("another tracing subscriber was installed first".to_owned());
    }
    for problem in problems {
        tracing::warn!(problem, "telemetry set-up");
    }
    if tracer_provider.is_some() || meter_provider.is_some() {
        tracing::info!(
            traces = tracer_provider.is_some(),
            metrics = meter_provider.is_some(),
            "OpenTelemetry export over OTLP/HTTP"
        );
    }
    Exporters {
        tracer_provider,
        meter_provider,
    }
}

/// The resource every span and metric names: the SDK's detectors (`OTEL_SERVICE_NAME`,
/// `OTEL_RESOURCE_ATTRIBUTES`, the SDK's own attributes), with `service_name` when they name none.
fn resource(service_name: &'static str) -> Resource {
    let detected = Resource::builder().build();
    let named_by_environment = detected
        .get(&Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named_by_environment {
        detected
    } else {
        Resource::builder().with_service_name(service_name).build()
    }
}

fn tracer_provider(
    resource: Resource,
) -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    // The batch processor (its own thread, `OTEL_BSP_*`) and the sampler (`OTEL_TRACES_SAMPLER`,
    // default parent-based always-on) come from the SDK's defaults, which read the environment.
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build())
}

fn meter_provider(
    resource: Resource,
) -> Result<SdkMeterProvider, opentelemetry_otlp::ExporterBuildError> {
    let exporter = MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()?;
    // The reader's thread exports every `OTEL_METRIC_EXPORT_INTERVAL` (default 60 s).
    let reader = PeriodicReader::builder(exporter).build();
    Ok(SdkMeterProvider::builder()
        .with_reader(reader)
        .with_resource(resource)
        .build())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(vars: &[(&str, &str)]) -> ExportRequest {
        ExportRequest::from_vars(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[test]
    fn nothing_is_exported_when_no_endpoint_is_named() {
        let none = ExportRequest {
            traces: false,
            metrics: false,
        };
        assert_eq!(request(&[]), none);
        assert_eq!(request(&[("OTEL_SERVICE_NAME", "ledger-api")]), none);
        assert_eq!(request(&[("OTEL_EXPORTER_OTLP_ENDPOINT", " ")]), none);
    }

    #[test]
    fn the_generic_endpoint_exports_both_signals_and_a_signal_endpoint_only_its_own() {
        let both = ExportRequest {
            traces: true,
            metrics: true,
        };
        assert_eq!(
            request(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")]),
            both
        );
        assert_eq!(
            request(&[(
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                "http://localhost:4318/v1/traces"
            )]),
            ExportRequest {
                traces: true,
                metrics: false
            }
        );
        assert_eq!(
            request(&[(
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://localhost:4318/v1/metrics"
            )]),
            ExportRequest {
                traces: false,
                metrics: true
            }
        );
    }

    #[test]
    fn the_sdk_can_be_disabled_whole_or_per_signal() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318");
        assert_eq!(
            request(&[endpoint, ("OTEL_SDK_DISABLED", "TRUE")]),
            ExportRequest {
                traces: false,
                metrics: false
            }
        );
        assert_eq!(
            request(&[endpoint, ("OTEL_SDK_DISABLED", "false")]),
            ExportRequest {
                traces: true,
                metrics: true
            }
        );
        assert_eq!(
            request(&[endpoint, ("OTEL_TRACES_EXPORTER", "none")]),
            ExportRequest {
                traces: false,
                metrics: true
            }
        );
        assert_eq!(
            request(&[endpoint, ("OTEL_METRICS_EXPORTER", "none")]),
            ExportRequest {
                traces: true,
                metrics: false
            }
        );
    }
}
