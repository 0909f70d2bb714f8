"""Both functions and the projection function's event source mapping on the events stream."""

from helpers import FUNCTION, MAPPING, is_secret, unsecret

PROJECTION_DLQ = "arn:aws:mock:eu-west-1:123456789012:projection-dead-letters"


def test_functions_run_the_arm64_custom_runtime(built):
    assert {(f.inputs["runtime"], tuple(f.inputs["architectures"]), f.inputs["handler"])
            for f in built.of_type(FUNCTION)} == {("provided.al2023", ("arm64",), "bootstrap")}


def test_projection_code_is_the_projection_zip(built):
    code = built.one(FUNCTION, "projection").inputs["code"]
    assert code.path.endswith("target/lambda/ledger-projection-lambda/bootstrap.zip")


def test_projection_environment_selects_dynamodb_and_postgres(built):
    variables = unsecret(built.one(FUNCTION, "projection").inputs["environment"])["variables"]
    assert (variables["LEDGER_EVENT_STORE"], variables["LEDGER_READ_MODEL"], variables["DATABASE_URL"]) == (
        "dynamodb", "postgres", "postgres://ledger:secret@db.internal:5432/ledger")


def test_database_url_is_kept_secret_in_the_environment(built):
    assert all(is_secret(f.inputs["environment"]) for f in built.of_type(FUNCTION))


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
