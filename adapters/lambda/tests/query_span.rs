//! The query function's `http.request` span: its name and the fields of the shared telemetry names
//! (`otel.name`, `http.route`, the status recorded once the answer is known), seen by a recording
//! `tracing` layer as the OpenTelemetry layer will see them.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use lambda_http::Request;
use lambda_http::request::LambdaRequest;
use ledger_application::memory::InMemoryReadModel;
use ledger_application::{FreshnessWait, QueryService};
use ledger_http::auth::testkit;
use ledger_lambda::query::{QueryFunctionState, handle_query_request};
use serde_json::{Value, json};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::Registry;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

/// Each span's name and its fields as text, by span id.
type Spans = Arc<Mutex<BTreeMap<u64, (String, BTreeMap<String, String>)>>>;

struct Recorder(Spans);

struct FieldsAsText<'a>(&'a mut BTreeMap<String, String>);

impl Visit for FieldsAsText<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber> Layer<S> for Recorder {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = BTreeMap::new();
        attributes.record(&mut FieldsAsText(&mut fields));
        self.0.lock().expect("spans lock").insert(
            id.into_u64(),
            (attributes.metadata().name().to_owned(), fields),
        );
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some((_, fields)) = self.0.lock().expect("spans lock").get_mut(&id.into_u64()) {
            values.record(&mut FieldsAsText(fields));
        }
    }
}

fn request(method: &str, raw_path: &str) -> Request {
    request_with_token(method, raw_path, &testkit::bearer("ledger:read"))
}

/// [`request`] with `authorization` as its `Authorization` header.
fn request_with_token(method: &str, raw_path: &str, authorization: &str) -> Request {
    let mut event: Value = serde_json::from_str(include_str!("events/apigw-v2-get.json"))
        .expect("the fixture is JSON");
    event["rawPath"] = json!(raw_path);
    event["requestContext"]["http"]["path"] = json!(raw_path);
    event["requestContext"]["http"]["method"] = json!(method);
    event["headers"]["authorization"] = json!(authorization);
    let lambda_request: LambdaRequest =
        serde_json::from_value(event).expect("an API Gateway v2 request");
    Request::from(lambda_request)
}

/// The fields of the one `http.request` span the handler made for `request`.
async fn span_fields(request: Request) -> BTreeMap<String, String> {
    let spans: Spans = Arc::default();
    let subscriber = Registry::default().with(Recorder(Arc::clone(&spans)));
    let _default = tracing::subscriber::set_default(subscriber);
    let state = QueryFunctionState::new(
        Arc::new(QueryService::new(
            Arc::new(InMemoryReadModel::new()),
            // Short, so that a `min_sequence` the empty model never reaches answers 503 at once.
            FreshnessWait {
                timeout: std::time::Duration::from_millis(50),
                poll_interval: std::time::Duration::from_millis(10),
            },
        )),
        Vec::new(),
        testkit::verifier().await,
    );
    handle_query_request(&state, request).await;
    let spans = spans.lock().expect("spans lock");
    let mut requests = spans
        .values()
        .filter(|(name, _)| name == "http.request")
        .map(|(_, fields)| fields.clone());
    let fields = requests.next().expect("an http.request span");
    assert!(
        requests.next().is_none(),
        "one http.request span per request"
    );
    fields
}

#[tokio::test(flavor = "current_thread")]
async fn a_query_runs_in_an_http_request_span_named_by_its_route_with_its_status() {
    let fields = span_fields(request("GET", "/v1/accounts/par-nobody/balance")).await;
    assert_eq!(fields["otel.name"], "GET /v1/accounts/{id}/balance");
    assert_eq!(fields["otel.kind"], "server");
    assert_eq!(fields["http.request.method"], "GET");
    assert_eq!(fields["http.route"], "/v1/accounts/{id}/balance");
    assert_eq!(fields["url.path"], "/v1/accounts/par-nobody/balance");
    assert_eq!(fields["http.response.status_code"], "404");
    assert_eq!(fields["correlation_id"], "parity-correlation-7");
    assert_eq!(fields["enduser.id"], testkit::TEST_SUBJECT);
    assert!(
        !fields.contains_key("otel.status_code"),
        "a 4xx is the client's error, not the span's: {fields:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn no_span_field_holds_the_token_whether_it_is_accepted_or_not() {
    let claims = testkit::claims("span-subject", "ledger:write");
    for token in [
        testkit::token(testkit::TestKey::Rsa, &claims),
        testkit::token(testkit::TestKey::RsaImpostor, &claims),
    ] {
        let fields = span_fields(request_with_token(
            "GET",
            "/v1/accounts/par-nobody",
            &format!("Bearer {token}"),
        ))
        .await;
        let signature = token.rsplit('.').next().expect("three parts");
        assert!(
            fields.values().all(|value| !value.contains(signature)),
            "{fields:?}"
        );
        let status = &fields["http.response.status_code"];
        assert!(status == "403" || status == "401", "{fields:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_5xx_answer_marks_the_span_failed() {
    let mut behind = request("GET", "/v1/accounts/par-nobody");
    *behind.uri_mut() = "/v1/accounts/par-nobody?min_sequence=3"
        .parse()
        .expect("a URI");
    let fields = span_fields(behind).await;
    assert_eq!(fields["http.response.status_code"], "503");
    assert_eq!(fields["otel.status_code"], "ERROR");
}

#[tokio::test(flavor = "current_thread")]
async fn an_unknown_route_is_named_by_its_method_alone_and_has_no_route() {
    let fields = span_fields(request("DELETE", "/nothing/here")).await;
    assert_eq!(fields["otel.name"], "DELETE");
    assert!(!fields.contains_key("http.route"), "{fields:?}");
    assert_eq!(fields["http.response.status_code"], "404");
}
