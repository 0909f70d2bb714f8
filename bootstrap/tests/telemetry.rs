//! OpenTelemetry end to end, on a real OTLP receiver over the network: the `ledger-api` binary
//! exports to it when the `OTEL_*` variables say so, and one deposit sent with a `traceparent` is one
//! trace from the HTTP request through the event-store append to the projector's apply, with a
//! projection-lag measurement and JSON log lines carrying the trace id. With export off, nothing
//! reaches the receiver and no exporter thread runs. On the AWS-shaped stack, the separate
//! `ledger-projector` process continues the deposit's trace from the event's stored metadata.

mod aws_stack;
mod support;

use std::time::Duration;

use aws_stack::{ApiProcess, Stack};
use serde_json::{Value, json};
use support::otlp::{OtlpReceiver, ReceivedSpan, describe_spans};
use support::{LoggedProcess, json_line};

/// Exports are every 100 ms (spans) and 500 ms (metrics) here, so a few seconds is generous on a
/// loaded machine; the waits return as soon as what they wait for has arrived.
const ARRIVE_WITHIN: Duration = Duration::from_secs(30);

/// The protocol's `SpanKind` numbers.
const SPAN_KIND_SERVER: i32 = 2;

/// A W3C trace context of the test's own making: a fresh trace id and parent id, sampled.
struct ClientTrace {
    trace_id: String,
    parent_span_id: String,
}

impl ClientTrace {
    fn new() -> Self {
        let trace_id = uuid::Uuid::now_v7().simple().to_string();
        let parent_span_id = uuid::Uuid::now_v7().simple().to_string()[16..].to_owned();
        Self {
            trace_id,
            parent_span_id,
        }
    }

    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.parent_span_id)
    }
}

/// The variables that point a binary's export at `receiver`, with short export intervals.
fn export_to(receiver: &OtlpReceiver) -> Vec<(&'static str, String)> {
    vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "500".to_owned()),
    ]
}

fn as_pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

/// Opens `account_id`, then deposits into it under `trace`; the deposit's sequence.
async fn open_and_deposit_under(api: &ApiProcess, account_id: &str, trace: &ClientTrace) -> u64 {
    api.open(account_id).await;
    let key = uuid::Uuid::now_v7().to_string();
    let traceparent = trace.traceparent();
    let (status, body) = api
        .try_command_with_headers(
            &format!("/v1/accounts/{account_id}/deposits"),
            &[("Idempotency-Key", &key), ("traceparent", &traceparent)],
            &json!({"amount": "12.50"}),
        )
        .await
        .expect("the deposit is answered");
    assert_eq!(status, 200, "{body}");
    body["sequence"].as_u64().expect("a sequence")
}

fn in_trace<'a>(spans: &'a [ReceivedSpan], trace_id: &str, name: &str) -> Vec<&'a ReceivedSpan> {
    spans
        .iter()
        .filter(|span| span.trace_id == trace_id && span.name == name)
        .collect()
}

/// The names of the threads of process `pid` (Linux: `/proc/<pid>/task/*/comm`, 15 characters).
fn thread_names(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads");
    tasks
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
        .map(|name| name.trim().to_owned())
        .collect()
}

/// The "request served" log lines of requests to `path`, as JSON objects.
fn request_lines(process: &LoggedProcess, path: &str) -> Vec<serde_json::Map<String, Value>> {
    process
        .lines()
        .iter()
        .filter_map(|line| json_line(line))
        .filter(|line| line.get("message").and_then(Value::as_str) == Some("request served"))
        .filter(|line| {
            line.get("spans")
                .and_then(Value::as_array)
                .is_some_and(|spans| {
                    spans
                        .iter()
                        .any(|span| span.get("url.path").and_then(Value::as_str) == Some(path))
                })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_deposit_is_one_trace_from_the_http_request_to_the_projector_with_its_lag_measured() {
    let receiver = OtlpReceiver::start();
    let directory = tempfile::tempdir().expect("a temporary directory");
    let database = directory.path().join("ledger.db");
    let mut vars = export_to(&receiver);
    vars.push((
        "LEDGER_SQLITE_PATH",
        database.to_string_lossy().into_owned(),
    ));
    let mut api = ApiProcess::spawn("ledger-api", &as_pairs(&vars));
    let trace = ClientTrace::new();
    let account_id = "otel-embedded";
    open_and_deposit_under(&api, account_id, &trace).await;
    let deposit_path = format!("/v1/accounts/{account_id}/deposits");

    // The request's server span: named by its route template, a child of the client's span.
    let spans =
        receiver.wait_for_spans("the deposit's http.request span", ARRIVE_WITHIN, |spans| {
            !in_trace(spans, &trace.trace_id, "POST /v1/accounts/{id}/deposits").is_empty()
        });
    let request = in_trace(&spans, &trace.trace_id, "POST /v1/accounts/{id}/deposits");
    assert_eq!(request.len(), 1, "{}", describe_spans(&spans));
    let request = request[0];
    assert_eq!(request.kind, SPAN_KIND_SERVER, "{request:?}");
    assert_eq!(request.parent_span_id, trace.parent_span_id, "{request:?}");
    assert_eq!(request.service_name, "ledger-api", "{request:?}");
    for (key, expected) in [
        ("http.request.method", "POST"),
        ("http.route", "/v1/accounts/{id}/deposits"),
        ("url.path", deposit_path.as_str()),
        ("http.response.status_code", "200"),
    ] {
        assert_eq!(
            request.attributes.get(key).map(String::as_str),
            Some(expected),
            "{key} of {request:?}"
        );
    }
    // The open account request was sent without a traceparent: a trace of its own, a root span.
    let opened: Vec<_> = spans
        .iter()
        .filter(|span| span.name == "POST /v1/accounts")
        .collect();
    assert!(
        !opened.is_empty()
            && opened
                .iter()
                .all(|span| span.trace_id != trace.trace_id && span.parent_span_id.is_empty()),
        "{}",
        describe_spans(&spans)
    );

    // The request's log line carries the same trace id, and the request span's own id.
    let lines = request_lines(&api.process, &deposit_path);
    assert_eq!(lines.len(), 1, "{}", api.process.log());
    assert_eq!(
        lines[0].get("trace_id").and_then(Value::as_str),
        Some(trace.trace_id.as_str()),
        "{:?}",
        lines[0]
    );
    assert_eq!(
        lines[0].get("span_id").and_then(Value::as_str),
        Some(request.span_id.as_str()),
        "{:?}",
        lines[0]
    );
    // Export runs on the SDK's own threads (the batch span processor, the periodic reader).
    let threads = thread_names(api.process.id());
    assert!(
        threads
            .iter()
            .filter(|name| name.starts_with("OpenTelemetry"))
            .count()
            >= 2,
        "{threads:?}"
    );

    // The event-store append, inside the command of the request: the same trace.
    receiver.wait_for_spans(
        "an event_store.append span in the deposit's trace",
        ARRIVE_WITHIN,
        |spans| !in_trace(spans, &trace.trace_id, "event_store.append").is_empty(),
    );
    // The projector continued the trace from the event's stored traceparent, in another task.
    receiver.wait_for_spans(
        "a projector.apply span in the deposit's trace",
        ARRIVE_WITHIN,
        |spans| !in_trace(spans, &trace.trace_id, "projector.apply").is_empty(),
    );
    // And the projection lag of the applied events was measured and exported.
    receiver.wait_for_data_points(
        "a ledger.projection.lag data point",
        ARRIVE_WITHIN,
        |points| {
            points
                .iter()
                .any(|point| point.metric == "ledger.projection.lag" && point.count >= 1)
        },
    );
    api.process.stop_with_sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_export_variables_nothing_reaches_a_receiver_and_no_exporter_thread_runs() {
    let receiver = OtlpReceiver::start();
    let directory = tempfile::tempdir().expect("a temporary directory");

    // Export named but the SDK disabled: the receiver at the named endpoint hears nothing, not
    // even at shutdown (which would flush).
    let disabled_database = directory.path().join("disabled.db");
    let mut disabled_vars = export_to(&receiver);
    disabled_vars.push(("OTEL_SDK_DISABLED", "true".to_owned()));
    disabled_vars.push((
        "LEDGER_SQLITE_PATH",
        disabled_database.to_string_lossy().into_owned(),
    ));
    let mut disabled =
        ApiProcess::spawn("ledger-api (OTEL_SDK_DISABLED)", &as_pairs(&disabled_vars));
    open_and_deposit_under(&disabled, "otel-disabled", &ClientTrace::new()).await;
    disabled.process.stop_with_sigterm();

    // No variable at all: no exporter thread, and log lines without trace ids.
    let silent_database = directory.path().join("silent.db");
    let silent_path = silent_database.to_string_lossy().into_owned();
    let mut silent = ApiProcess::spawn(
        "ledger-api (no OTEL_*)",
        &[("LEDGER_SQLITE_PATH", silent_path.as_str())],
    );
    open_and_deposit_under(&silent, "otel-silent", &ClientTrace::new()).await;
    let threads = thread_names(silent.process.id());
    assert!(
        !threads.iter().any(|name| name.starts_with("OpenTelemetry")),
        "{threads:?}"
    );
    let lines = request_lines(&silent.process, "/v1/accounts/otel-silent/deposits");
    assert_eq!(lines.len(), 1, "{}", silent.process.log());
    assert!(!lines[0].contains_key("trace_id"), "{:?}", lines[0]);
    assert_eq!(silent.process.count("OpenTelemetry export"), 0);
    silent.process.stop_with_sigterm();

    assert_eq!(
        receiver.requests(),
        0,
        "{}",
        describe_spans(&receiver.spans())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_separate_projector_process_continues_the_deposits_trace_from_the_stored_event() {
    let stack = Stack::create("otel").await;
    let receiver = OtlpReceiver::start();
    let vars = export_to(&receiver);
    let mut projector = stack.spawn_projector_with("ledger-projector", &as_pairs(&vars));
    projector.wait_for_line("projector lease acquired", ARRIVE_WITHIN);
    let mut api = stack.spawn_api_with("ledger-api", &as_pairs(&vars));
    let trace = ClientTrace::new();
    let account_id = "otel-aws";
    let sequence = open_and_deposit_under(&api, account_id, &trace).await;
    api.account_at(account_id, sequence, ARRIVE_WITHIN).await;

    let spans = receiver.wait_for_spans(
        "the deposit's request span from ledger-api and its projector.apply from ledger-projector",
        ARRIVE_WITHIN,
        |spans| {
            let request = in_trace(spans, &trace.trace_id, "POST /v1/accounts/{id}/deposits");
            let applied = in_trace(spans, &trace.trace_id, "projector.apply");
            request.iter().any(|span| span.service_name == "ledger-api")
                && applied
                    .iter()
                    .any(|span| span.service_name == "ledger-projector")
        },
    );
    assert!(
        in_trace(&spans, &trace.trace_id, "event_store.append")
            .iter()
            .any(|span| span.service_name == "ledger-api"),
        "{}",
        describe_spans(&spans)
    );
    receiver.wait_for_data_points(
        "a ledger.projection.lag data point from ledger-projector",
        ARRIVE_WITHIN,
        |points| {
            points.iter().any(|point| {
                point.metric == "ledger.projection.lag" && point.service_name == "ledger-projector"
            })
        },
    );
    api.process.stop_with_sigterm();
    projector.stop_with_sigterm();
}
