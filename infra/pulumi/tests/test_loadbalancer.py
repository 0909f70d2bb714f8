"""The internet-facing ALB in front of the API tasks: HTTPS only, invalid headers dropped, health checks."""

LOAD_BALANCER = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
TARGET_GROUP = "aws:lb/targetGroup:TargetGroup"


def _target_group(built):
    return built.one(TARGET_GROUP, "ledger-api").inputs


def test_the_load_balancer_is_internet_facing_in_the_public_subnets(built):
    inputs = built.one(LOAD_BALANCER, "command-api").inputs
    assert (inputs["loadBalancerType"], inputs["internal"], sorted(inputs["subnets"]), inputs["securityGroups"]) == (
        "application", False, ["public-0-id", "public-1-id"], ["load-balancer-id"])


def test_the_load_balancer_drops_invalid_header_fields(built):
    assert built.one(LOAD_BALANCER, "command-api").inputs["dropInvalidHeaderFields"] is True


def test_https_listener_uses_the_configured_certificate_and_a_tls13_policy(built):
    inputs = built.one(LISTENER, "https").inputs
    assert (inputs["port"], inputs["protocol"], inputs["certificateArn"], inputs["sslPolicy"]) == (
        443, "HTTPS", "arn:aws:acm:eu-west-1:123456789012:certificate/ledger", "ELBSecurityPolicy-TLS13-1-2-2021-06")


def test_https_listener_forwards_to_the_api_target_group(built):
    assert built.one(LISTENER, "https").inputs["defaultActions"] == [
        {"type": "forward", "targetGroupArn": "arn:aws:mock:eu-west-1:123456789012:ledger-api"}]


def test_http_only_redirects_to_https(built):
    inputs = built.one(LISTENER, "http-redirect").inputs
    assert (inputs["port"], inputs["protocol"], inputs["defaultActions"]) == (80, "HTTP", [
        {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}])


def test_no_listener_forwards_plain_http(built):
    assert [l.name for l in built.of_type(LISTENER)
            if l.inputs["protocol"] == "HTTP" and any(a["type"] == "forward" for a in l.inputs["defaultActions"])] == []


def test_targets_are_task_addresses_on_8080(built):
    inputs = _target_group(built)
    assert (inputs["targetType"], inputs["protocol"], inputs["port"]) == ("ip", "HTTP", 8080)


def test_target_health_is_ready_answering_200(built):
    check = _target_group(built)["healthCheck"]
    assert (check["path"], check["matcher"]) == ("/health/ready", "200")


def test_target_health_check_timing_is_bounded(built):
    check = _target_group(built)["healthCheck"]
    assert (check["timeout"] < check["interval"] <= 30, 2 <= check["healthyThreshold"] <= 5,
            2 <= check["unhealthyThreshold"] <= 5) == (True, True, True)


def test_deregistration_lets_in_flight_requests_finish_briefly(built):
    assert 5 <= _target_group(built)["deregistrationDelay"] <= 120
