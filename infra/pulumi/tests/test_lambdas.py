"""Both functions and the projection function's event source mapping on the events stream."""

import json

from helpers import DATABASE_SECRET_ARN, FUNCTION, MAPPING, PASSWORDLESS_DATABASE_URL, has_password_url, unsecret

ADOT_LAYER = "arn:aws:lambda:eu-west-1:901920570463:layer:aws-otel-collector-arm64-ver-0-117-0:1"

PROJECTION_DLQ = "arn:aws:mock:eu-west-1:123456789012:projection-dead-letters"


def test_functions_run_the_arm64_custom_runtime(built):
    assert {(f.inputs["runtime"], tuple(f.inputs["architectures"]), f.inputs["handler"])
            for f in built.of_type(FUNCTION)} == {("provided.al2023", ("arm64",), "bootstrap")}


def test_projection_code_is_the_projection_zip(built):
    code = built.one(FUNCTION, "projection").inputs["code"]
    assert code.path.endswith("target/lambda/ledger-projection-lambda/bootstrap.zip")


def _variables(built, name):
    return unsecret(built.one(FUNCTION, name).inputs["environment"])["variables"]


def test_projection_environment_selects_dynamodb_and_postgres(built):
    variables = _variables(built, "projection")
    assert (variables["LEDGER_EVENT_STORE"], variables["LEDGER_READ_MODEL"]) == ("dynamodb", "postgres")


def test_both_functions_get_the_database_url_without_a_password_and_the_secret_arn(built):
    assert {name: (_variables(built, name)["DATABASE_URL"], _variables(built, name)["LEDGER_DATABASE_SECRET_ARN"])
            for name in ("projection", "query")} == {
        "projection": (PASSWORDLESS_DATABASE_URL, DATABASE_SECRET_ARN),
        "query": (PASSWORDLESS_DATABASE_URL, DATABASE_SECRET_ARN)}


def test_no_function_environment_holds_a_password(built):
    assert not [v for f in built.of_type(FUNCTION) for v in unsecret(f.inputs["environment"])["variables"].values()
                if has_password_url(v)]


def test_query_function_checks_tokens_of_the_authorizer_issuer_and_audience(built):
    variables = _variables(built, "query")
    assert (variables["LEDGER_AUTH_JWKS_URL"], variables["LEDGER_AUTH_ISSUER"], variables["LEDGER_AUTH_AUDIENCE"]) == (
        "https://issuer.example.com/.well-known/jwks.json", "https://issuer.example.com/", "ledger-api")


def test_both_functions_carry_the_adot_collector_layer(built):
    assert {f.name: f.inputs["layers"] for f in built.of_type(FUNCTION)} == {
        "projection": [ADOT_LAYER], "query": [ADOT_LAYER]}


def test_both_functions_trace_actively(built):
    assert {f.name: f.inputs["tracingConfig"] for f in built.of_type(FUNCTION)} == {
        "projection": {"mode": "Active"}, "query": {"mode": "Active"}}


def test_both_functions_export_to_the_layer_collector_on_localhost(built):
    assert {_variables(built, name)["OTEL_EXPORTER_OTLP_ENDPOINT"] for name in ("projection", "query")} == {
        "http://localhost:4318"}


def test_the_layer_collector_takes_its_configuration_from_the_environment(built):
    variables = _variables(built, "projection")
    uri = variables["OPENTELEMETRY_COLLECTOR_CONFIG_URI"]
    assert uri == "env:LEDGER_OTEL_COLLECTOR_CONFIG" and uri.removeprefix("env:") in variables


def test_the_layer_collector_sends_traces_to_xray_and_metrics_as_emf_on_stdout(built):
    config = json.loads(_variables(built, "projection")["LEDGER_OTEL_COLLECTOR_CONFIG"])
    pipelines = config["service"]["pipelines"]
    assert (pipelines["traces"]["exporters"], pipelines["metrics"]["exporters"], config["exporters"]["awsemf"]) == (
        ["awsxray"], ["awsemf"], {"output_destination": "stdout", "namespace": "Ledger"})


def test_the_function_environments_fit_lambdas_four_kilobytes(built):
    assert all(len(json.dumps(_variables(built, name))) < 4096 for name in ("projection", "query"))


def test_query_timeout_exceeds_the_read_wait(built):
    assert built.one(FUNCTION, "query").inputs["timeout"] > 5


def test_mapping_reads_the_events_stream_into_the_projection_function(built):
    inputs = built.one(MAPPING, "projection-events-stream").inputs
    assert (inputs["eventSourceArn"], inputs["functionName"]) == (
        "arn:aws:mock:eu-west-1:123456789012:events/stream/2026-12-01T00:00:00.000",
        "arn:aws:mock:eu-west-1:123456789012:projection")


def test_mapping_reports_batch_item_failures(built):
    inputs = built.one(MAPPING, "projection-events-stream").inputs
    assert inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]


def test_mapping_bisects_on_function_error(built):
    assert built.one(MAPPING, "projection-events-stream").inputs["bisectBatchOnFunctionError"] is True


def test_mapping_retries_are_bounded(built):
    assert 0 <= built.one(MAPPING, "projection-events-stream").inputs["maximumRetryAttempts"] <= 100


def test_mapping_record_age_is_bounded(built):
    assert 60 <= built.one(MAPPING, "projection-events-stream").inputs["maximumRecordAgeInSeconds"] <= 604_800


def test_mapping_sends_failures_to_the_dead_letter_queue(built):
    inputs = built.one(MAPPING, "projection-events-stream").inputs
    assert inputs["destinationConfig"] == {"onFailure": {"destinationArn": PROJECTION_DLQ}}
