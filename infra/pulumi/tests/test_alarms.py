"""CloudWatch alarms on the projection path and both functions."""

from helpers import ALARM


def test_alarms_cover_lag_iterator_age_dead_letters_errors_and_throttles(built):
    metrics = {(a.inputs["namespace"], a.inputs["metricName"]) for a in built.of_type(ALARM)}
    assert metrics == {("Ledger", "ledger.projection.lag"), ("AWS/Lambda", "IteratorAge"),
                       ("AWS/SQS", "ApproximateNumberOfMessagesVisible"),
                       ("AWS/Lambda", "Errors"), ("AWS/Lambda", "Throttles")}
