"""The query Lambda behind an API Gateway HTTP API: `GET /{proxy+}`, payload v2, a JWT authorizer."""

from dataclasses import dataclass

import pulumi_aws as aws

from .settings import Settings


@dataclass
class Api:
    api: aws.apigatewayv2.Api
    authorizer: aws.apigatewayv2.Authorizer
    route: aws.apigatewayv2.Route
    stage: aws.apigatewayv2.Stage


def create(settings: Settings, query: aws.lambda_.Function) -> Api:
    api = aws.apigatewayv2.Api("query-api", protocol_type="HTTP")
    authorizer = aws.apigatewayv2.Authorizer(
        "query-jwt",
        api_id=api.id,
        authorizer_type="JWT",
        identity_sources=["$request.header.Authorization"],
        jwt_configuration={"issuer": settings.jwt_issuer, "audiences": [settings.jwt_audience]},
    )
    integration = aws.apigatewayv2.Integration(
        "query-lambda",
        api_id=api.id,
        integration_type="AWS_PROXY",
        integration_uri=query.invoke_arn,
        payload_format_version="2.0",
    )
    route = aws.apigatewayv2.Route(
        "query-get",
        api_id=api.id,
        route_key="GET /{proxy+}",
        authorization_type="JWT",
        authorizer_id=authorizer.id,
        target=integration.id.apply(lambda i: f"integrations/{i}"),
    )
    stage = aws.apigatewayv2.Stage("query-default", api_id=api.id, name="$default", auto_deploy=True)
    aws.lambda_.Permission(
        "query-invoke-from-api",
        action="lambda:InvokeFunction",
        function=query.name,
        principal="apigateway.amazonaws.com",
        source_arn=api.execution_arn.apply(lambda arn: f"{arn}/*/*"),
    )
    return Api(api, authorizer, route, stage)
