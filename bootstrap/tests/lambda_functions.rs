//! The two Lambda binaries as AWS Lambda runs them: each process talks the Lambda Runtime API
//! (here a real one of the test's own, over HTTP on 127.0.0.1) and exports telemetry to a real OTLP
//! receiver. The batch span processor and the metric reader are given intervals of ten minutes, so
//! what the receiver holds by the moment a function answers can only have come from the flush each
//! function makes before it answers: the proof that nothing is left in a frozen environment. The
//! projection function continues the trace stored in the event it applies; the query function the
//! `traceparent` header of the API Gateway request.

mod support;

use ledger_http::auth::testkit;
use std::time::Duration;

use ledger_postgres::testkit::FreshDatabase;
use serde_json::{Value, json};
use support::LoggedProcess;
use support::lambda_runtime_api::{Answer, LambdaRuntimeApi};
use support::otlp::{OtlpReceiver, describe_spans};

/// The trace id stored in the fixture's events' metadata (their `traceparent`).
const FIXTURE_TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

/// A cold start (pool, migrations already done) and one invocation, on a loaded machine.
const ANSWER_WITHIN: Duration = Duration::from_mins(1);

/// Ten minutes: no scheduled export can happen during a test, only a flush.
const NO_SCHEDULED_EXPORT_MS: &str = "600000";

/// The environment of a function on the stack: the shared configuration, its runtime API, and
/// export to `receiver` with scheduled exports out of reach.
fn function_vars(
    runtime: &LambdaRuntimeApi,
    function_name: &str,
    database_url: &str,
    receiver: &OtlpReceiver,
) -> Vec<(&'static str, String)> {
    let mut vars = runtime.function_vars(function_name);
    vars.extend([
        ("LEDGER_EVENT_STORE", "dynamodb".to_owned()),
        ("LEDGER_READ_MODEL", "postgres".to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        // The query function always verifies tokens: the test keys' JWKS.
        ("LEDGER_AUTH_JWKS_FILE", jwks_file()),
        ("LEDGER_AUTH_ISSUER", testkit::TEST_ISSUER.to_owned()),
        ("LEDGER_AUTH_AUDIENCE", testkit::TEST_AUDIENCE.to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint()),
        ("OTEL_BSP_SCHEDULE_DELAY", NO_SCHEDULED_EXPORT_MS.to_owned()),
        (
            "OTEL_METRIC_EXPORT_INTERVAL",
            NO_SCHEDULED_EXPORT_MS.to_owned(),
        ),
    ]);
    vars
}

fn jwks_file() -> String {
    testkit::jwks_path()
        .to_str()
        .expect("a UTF-8 path")
        .to_owned()
}

fn as_pairs<'a>(vars: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    vars.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

fn response_of(answer: Answer) -> Value {
    match answer {
        Answer::Response(response) => response,
        Answer::Error(error) => panic!("the function answered an error: {error}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projection_function_applies_a_stream_batch_in_the_events_trace_and_flushes_before_it_answers()
 {
    let database = FreshDatabase::migrated().await;
    let receiver = OtlpReceiver::start();
    let mut runtime = LambdaRuntimeApi::start();
    let vars = function_vars(&runtime, "ledger-projection", &database.url(), &receiver);
    let mut function = LoggedProcess::spawn(
        "ledger-projection-lambda",
        env!("CARGO_BIN_EXE_ledger-projection-lambda"),
        &as_pairs(&vars),
    );

    let stream_event: Value = serde_json::from_str(include_str!(
        "../../adapters/lambda/tests/events/dynamodb-stream.json"
    ))
    .expect("the fixture is JSON");
    let invocation = runtime.invoke(stream_event);
    let response = response_of(runtime.wait_for_answer(&invocation, ANSWER_WITHIN));
    // Taken at once: whatever arrived came with the flush before the answer.
    let spans = receiver.spans();
    let points = receiver.data_points();

    assert_eq!(
        response,
        json!({"batchItemFailures": []}),
        "{}",
        function.log()
    );
    let applied: Vec<_> = spans
        .iter()
        .filter(|span| span.trace_id == FIXTURE_TRACE_ID && span.name == "projector.apply")
        .collect();
    assert_eq!(
        applied.len(),
        2,
        "one projector.apply per record, in the events' stored trace:\n{}",
        describe_spans(&spans)
    );
    assert!(
        applied
            .iter()
            .all(|span| span.service_name == "ledger-projection-lambda"),
        "{}",
        describe_spans(&spans)
    );
    // One point per event type (both events are of different types), each counting its applies.
    let lags: u64 = points
        .iter()
        .filter(|point| point.metric == "ledger.projection.lag")
        .map(|point| point.count)
        .sum();
    assert!(
        lags >= 2,
        "the lag of both applied events is flushed with the answer: {:?}",
        points
            .iter()
            .map(|point| point.metric.as_str())
            .collect::<Vec<_>>()
    );

    // And the batch is really in the read model: a second delivery is all duplicates.
    let read_model = database.read_model().await;
    let account = ledger_domain::AccountId::parse("acc-fixture").expect("an account id");
    let view = ledger_application::ports::ReadModelQuery::account(&read_model, &account)
        .await
        .expect("read model query")
        .expect("the account was projected");
    assert_eq!(
        (view.balance.to_string(), view.last_sequence),
        ("10.00".to_owned(), 2)
    );
    // As Lambda shuts an environment down when an extension is registered: it exits successfully.
    function.stop_with_sigterm();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_query_function_answers_in_the_callers_trace_and_flushes_before_it_answers() {
    let database = FreshDatabase::migrated().await;
    let receiver = OtlpReceiver::start();
    let mut runtime = LambdaRuntimeApi::start();
    let vars = function_vars(&runtime, "ledger-query", &database.url(), &receiver);
    let mut function = LoggedProcess::spawn(
        "ledger-query-lambda",
        env!("CARGO_BIN_EXE_ledger-query-lambda"),
        &as_pairs(&vars),
    );

    let mut request: Value = serde_json::from_str(include_str!(
        "../../adapters/lambda/tests/events/apigw-v2-get.json"
    ))
    .expect("the fixture is JSON");
    let trace_id = uuid::Uuid::now_v7().simple().to_string();
    let parent_span_id = "00f067aa0ba902b7";
    request["headers"]["traceparent"] = json!(format!("00-{trace_id}-{parent_span_id}-01"));
    request["headers"]["authorization"] = json!(testkit::bearer("ledger:read"));
    let invocation = runtime.invoke(request);
    let response = response_of(runtime.wait_for_answer(&invocation, ANSWER_WITHIN));
    let spans = receiver.spans();

    // The fixture asks for an account this fresh read model does not hold.
    assert_eq!(response["statusCode"], json!(404), "{response}");
    let body: Value =
        serde_json::from_str(response["body"].as_str().expect("a text body")).expect("a JSON body");
    assert_eq!(body["code"], json!("account_not_found"), "{body}");
    let served: Vec<_> = spans
        .iter()
        .filter(|span| span.trace_id == trace_id && span.name == "GET /v1/accounts/{id}")
        .collect();
    assert_eq!(served.len(), 1, "{}", describe_spans(&spans));
    assert_eq!(served[0].parent_span_id, parent_span_id, "{:?}", served[0]);
    assert_eq!(
        served[0].service_name, "ledger-query-lambda",
        "{:?}",
        served[0]
    );
    // As Lambda shuts an environment down when an extension is registered: it exits successfully.
    function.stop_with_sigterm();
}
