"""The query Lambda behind an API Gateway HTTP API with a JWT authorizer."""

import pulumi


AUTHORIZER = "aws:apigatewayv2/authorizer:Authorizer"
ROUTE = "aws:apigatewayv2/route:Route"
INTEGRATION = "aws:apigatewayv2/integration:Integration"


def test_api_is_an_http_api(built):
    assert built.one("aws:apigatewayv2/api:Api", "query-api").inputs["protocolType"] == "HTTP"


def test_api_has_a_jwt_authorizer_with_configured_issuer_and_audience(built):
    inputs = built.one(AUTHORIZER, "query-jwt").inputs
    assert (inputs["authorizerType"], inputs["jwtConfiguration"]) == (
        "JWT", {"issuer": "https://issuer.example.com/", "audiences": ["ledger-api"]})


def test_get_route_requires_the_jwt_authorizer(built):
    inputs = built.one(ROUTE, "query-get").inputs
    assert (inputs["routeKey"], inputs["authorizationType"], inputs["authorizerId"]) == (
        "GET /{proxy+}", "JWT", "query-jwt-id")


def test_every_route_is_authorized(built):
    assert all(r.inputs.get("authorizationType") == "JWT" for r in built.of_type(ROUTE))


def test_route_targets_the_query_function_with_payload_v2(built):
    integration = built.one(INTEGRATION, "query-lambda").inputs
    assert (integration["integrationType"], integration["payloadFormatVersion"],
            integration["integrationUri"].endswith(":query/invocations")) == ("AWS_PROXY", "2.0", True)


@pulumi.runtime.test
def test_api_url_comes_from_the_default_stage(built):
    return built.stack.api.stage.invoke_url.apply(
        lambda url: assert_equal(url, "https://mock.execute-api.eu-west-1.amazonaws.com/"))


def assert_equal(actual, expected):
    assert actual == expected
