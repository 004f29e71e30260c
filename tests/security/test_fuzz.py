"""Property-based fuzzing of every REST operation in the OpenAPI schema, with real credentials.

Schemathesis generates requests from ``/api/schema/`` (valid and invalid bodies, query strings
and path parameters) and sends them in-process to the WSGI application, authenticated the way
each API expects: MAuth (super service) for the OWT management and stream-engine APIs, a
staff user's DRF token for the peermetrics dashboard and the Viblast portal (as operator).
Every answer must be below 500 and match the schema. ``FUZZ_EXAMPLES`` (default 8 per operation) bounds the run.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings

from owt.mauth import build_header

application = get_wsgi_application()
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.response_schema_conformance]
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "8"))


@pytest.fixture
def credentials(db, settings):
    """A super service with a room, and a staff user's token: what the generated requests sign with."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from conference.services import room_create, service_bootstrap_super
    from metrics.services.dashboard import dashboard_token_create

    # One service and one address send every generated request: no rate limits here.
    rates = dict.fromkeys(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"])
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}
    service, key = service_bootstrap_super()
    room_create(service=service, name="fuzzed", options={})
    staff = get_user_model().objects.create_user("fuzz", password="fuzz-password", is_staff=True)
    dashboard_token = dashboard_token_create(user=staff)
    operator_token = Token.objects.create(user=staff).key  # the Viblast portal's operators
    # Like Django's test client: keep the test's connection (and transaction) across requests.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield {"service": service.id, "key": key, "dashboard": dashboard_token, "operator": operator_token}
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def auth_headers(path: str, credentials: dict) -> dict[str, str]:
    if path.startswith("/metrics/"):
        return {"Authorization": f"Token {credentials['dashboard']}"}
    if path.startswith("/portal/"):
        return {"Authorization": f"Token {credentials['operator']}"}
    if path.startswith(("/v1", "/services")):
        return {"Authorization": build_header(service_id=credentials["service"], key=credentials["key"])}
    return {}


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    database=None,
)
def test_no_server_error_and_responses_match_the_schema(case, credentials):
    case.call_and_validate(headers=auth_headers(case.path, credentials), checks=CHECKS)
