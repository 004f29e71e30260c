"""Hardening: one tenant cannot fail another, bad input is a 4xx, writes are all or nothing,
a key reset revokes the app's SDK tokens, dashboard tokens are stored hashed, the schema
describes the answers. Run on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import importlib
import json
from datetime import UTC, datetime

import jsonschema
import pytest
from django.db import DatabaseError
from django.test import Client

from metrics import ingest
from metrics.errors import MESSAGES
from metrics.models import Conference, Connection, DashboardToken, GenericEvent, Organization, Participant, Track
from metrics.services.dashboard import dashboard_token_create
from metrics.testing import gum_track, stats_payload
from tests.metrics.test_ingest_asgi import asgi_post

pytestmark = pytest.mark.django_db(transaction=True)

NAN_DATA = b'{"audio": {"inbound": [{"jitter": NaN}]}}'
POISONS = {
    "nan": NAN_DATA,
    "infinity": b'{"x": -Infinity}',
    "overflow": b'{"x": 1e400}',
    "nul": b'{"x": "a\\u0000b"}',
    "nul_key": b'{"a\\u0000": 1}',
    "surrogate": b'{"x": "\\ud800"}',
    "deep": b"[" * 100_000 + b"]" * 100_000,
    "nested": b'{"x": ' + b"[" * 40 + b"]" * 40 + b"}",
}


def invalid(status_and_body: tuple[int, dict]) -> bool:
    message, status = MESSAGES["invalid_parameters"]
    return status_and_body == (status, {"error_code": "invalid_parameters", "message": message})


@pytest.fixture
def alice(app, sdk_factory):
    sdk = sdk_factory()
    sdk.join(app.api_key, "room", "alice")
    _, ids = sdk.post("connection", {"eventName": "addConnection", "peerId": "bob"})
    sdk.ids = ids
    return sdk


def stats_body(sdk, index: int, data: bytes | None = None) -> bytes:
    head = json.dumps({"token": sdk.token, "peerId": sdk.ids["peer_id"], "connectionId": sdk.ids["connection_id"]})
    return head[:-1].encode() + b', "data": ' + (data or json.dumps(stats_payload(index)).encode()) + b"}"


# --- item 1: one tenant's bad samples fail only its own requests -------------------------------


def test_poisoned_stats_fail_alone_over_the_fast_path(alice, organization, sdk_factory):
    other_app = Organization.objects.create(name="Evil").apps.create(name="Poison")
    mallory = sdk_factory()
    mallory.join(other_app.api_key, "room", "mallory")
    _, mallory.ids = mallory.post("connection", {"eventName": "addConnection", "peerId": "bob"})
    honest = [stats_body(alice, i) for i in range(30)]
    poisoned = [stats_body(mallory, 0, data) for data in (NAN_DATA, POISONS["nul"], POISONS["surrogate"])] * 3

    async def burst() -> list:
        bodies = [*honest]
        for index, body in enumerate(poisoned):  # one poisoned post among every three honest ones
            bodies.insert(3 * index + 1, body)
        return await asyncio.gather(*(asgi_post("/metrics/v1/stats", body) for body in bodies))

    answers = asyncio.run(burst())
    statuses = [status for status, _, _ in answers]
    assert statuses.count(200) == len(honest) and statuses.count(400) == len(poisoned)
    for status, _, raw in answers:
        if status == 400:
            assert json.loads(raw)["error_code"] == "invalid_parameters"
    assert GenericEvent.objects.filter(category="S", connection_id=alice.ids["connection_id"]).count() == 30
    assert not GenericEvent.objects.filter(category="S", app=other_app).exists()


def test_a_batch_isolates_a_row_the_database_refuses(alice, monkeypatch):
    """A row that passed validation but fails in the INSERT fails alone, with a 400."""
    batches: list[int] = []
    store = ingest.stats_store

    def spy(items: list) -> None:
        batches.append(len(items))
        store(items)

    monkeypatch.setattr(ingest, "stats_store", spy)
    session = ingest.session_meta_load(Connection.objects.get().session_id)
    meta = ingest.connection_meta_load(alice.ids["connection_id"])
    now = datetime.now(UTC)
    # NaN (SQLite: JSON_VALID check; PostgreSQL: invalid json) and, for PostgreSQL, NUL.
    bad = [{"x": float("nan")}, {"x": "\x00"}]
    items = [
        ingest.PendingStats(session=session, connection=meta, data=stats_payload(i), created_at=now) for i in range(6)
    ]
    items[2:2] = [ingest.PendingStats(session=session, connection=meta, data=data, created_at=now) for data in bad]

    async def submit_all() -> list:
        return await asyncio.gather(*(ingest.WRITER.submit(item) for item in items), return_exceptions=True)

    outcomes = asyncio.run(submit_all())
    assert batches[0] == len(items)  # all in one batch, then retried row by row
    failed = [outcome for outcome in outcomes if outcome is not None]
    assert outcomes[:2] == [None, None] and outcomes[4:] == [None] * 4
    assert failed and all(getattr(outcome, "code", None) == "invalid_parameters" for outcome in failed)
    stored = GenericEvent.objects.filter(category="S").count()
    assert stored == len(items) - len(failed) >= 6


# --- item 2: 4xx in the API's format, never 500 --------------------------------------------------


@pytest.mark.parametrize("poison", sorted(POISONS))
@pytest.mark.parametrize(
    "route", ["initialize", "sessions", "events/browser", "connection", "connection/batch", "stats"]
)
def test_sdk_routes_refuse_unstorable_json(alice, route, poison):
    raw = POISONS[poison]
    if poison not in ("deep",):
        raw = b'{"token": "%s", "eventName": "x", "data": %s}' % (alice.token.encode(), raw)
    assert invalid(alice.post(route, raw, token=False)), (route, poison)


def test_get_user_media_accepts_boolean_constraints_and_refuses_bad_strings(alice):
    assert alice.post("events/get-user-media", {"data": {"audio": True, "video": {"width": 640}}}) == (200, "")
    assert alice.post("events/get-user-media", {"data": {"audio": [gum_track("audio", "a1")]}}) == (200, "")
    assert Track.objects.filter(track_id="a1").exists()
    assert invalid(
        alice.post("events/get-user-media", b'{"token": "%s", "data": {"x": "\\u0000"}}' % alice.token.encode())
    )
    assert invalid(alice.post("initialize", {"apiKey": "k", "conferenceId": "c\x00", "userId": "u"}, token=False))


def test_dashboard_refuses_bad_queries_and_bodies(organization, app):
    api = Client(HTTP_AUTHORIZATION=f"Token {dashboard_token_create(user=organization.members.get())}")
    for query in (
        "apps?offset=99999999999999999999",
        "apps?limit=99999999999999999999",
        f"conferences?appId={app.pk}&created_at_gt=2020-13-45T00:00:00",
        f"conferences?appId={app.pk}&created_at_lt=9999-12-31T23:59:59-14:00",
        f"conferences?appId={app.pk}&issue_code=%00",
        f"conferences?appId={app.pk}&issue_code={'x' * 100}",
        "sessions?appId=99999999999999999999999999999999999999999",
        "search?query=a%00b",
    ):
        response = api.get(f"/metrics/v1/{query}")
        assert (response.status_code, response.json()["error_code"]) == (400, "invalid_parameters"), query
    conference = Conference.objects.create(app=app, conference_id="c")
    response = api.get(f"/metrics/v1/conferences/{conference.pk}/events?type=%00")
    assert (response.status_code, response.json()["error_code"]) == (400, "invalid_parameters")
    for raw in (b'{"name": NaN}', b'{"name": "\\ud800"}', b'{"name": "a\\u0000"}', b"[" * 100_000 + b"]" * 100_000):
        response = api.post("/metrics/v1/organizations", raw, content_type="application/json")
        assert (response.status_code, response.json()["error_code"]) == (400, "invalid_parameters"), raw[:20]
    assert Organization.objects.count() == 1


# --- item 3: all or nothing ----------------------------------------------------------------------


def test_failing_initialize_leaves_no_conference(app, sdk, monkeypatch):
    def broken(**kwargs):
        raise DatabaseError("participant insert failed")

    monkeypatch.setattr(Participant.objects, "get_or_create", broken)
    body = {"apiKey": app.api_key, "conferenceId": "room", "userId": "u"}
    status, answer = sdk.post("initialize", body, token=False)
    assert status == 500 and answer["error_code"] == "unknown_error"
    assert not Conference.objects.exists()


# --- item 4: revocation and hashed dashboard tokens --------------------------------------------


def test_key_reset_revokes_the_apps_sdk_tokens(alice, app, organization):
    _, init = alice.post("initialize", {"apiKey": app.api_key, "conferenceId": "room", "userId": "carol"}, token=False)
    assert asyncio.run(asgi_post("/metrics/v1/stats", stats_body(alice, 0)))[0] == 200
    api = Client(HTTP_AUTHORIZATION=f"Token {dashboard_token_create(user=organization.members.get())}")
    new_key = api.post(f"/metrics/v1/apps/{app.pk}/reset-key").json()["api_key"]
    refused = (401, {"error_code": "invalid_token", "message": "Invalid token."})
    assert alice.post("sessions", {"token": init["token"]}, token=False) == refused
    assert alice.post("events/browser", {"eventName": "focus"}) == refused
    assert alice.post("stats", json.loads(stats_body(alice, 1))) == refused  # Django view
    status, _, raw = asyncio.run(asgi_post("/metrics/v1/stats", stats_body(alice, 2)))  # fast path, cached app
    assert (status, json.loads(raw)) == refused
    alice.join(new_key, "room", "alice")
    assert alice.post("events/browser", {"eventName": "focus"}) == (200, "")


def test_dashboard_tokens_are_stored_hashed(organization):
    owner = organization.members.get()
    key = dashboard_token_create(user=owner)
    stored = DashboardToken.objects.get()
    assert stored.user == owner and key not in stored.digest and len(key) == 40
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/metrics/v1/organizations").status_code == 200
    response = Client(HTTP_AUTHORIZATION=f"Token {stored.digest}").get("/metrics/v1/organizations")
    assert response.status_code == 401 and response.json()["error_code"] == "not_authenticated"


# --- item 5: the schema describes the answers ------------------------------------------------------


def _nullable_to_json_schema(node):
    """OpenAPI 3.0's ``nullable`` is not JSON Schema: turn it into a ``null`` alternative."""
    if isinstance(node, dict):
        node = {key: _nullable_to_json_schema(value) for key, value in node.items()}
        if node.pop("nullable", False):
            node = {"anyOf": [node, {"type": "null"}]}
        return node
    if isinstance(node, list):
        return [_nullable_to_json_schema(item) for item in node]
    return node


def test_schema_matches_real_answers(organization, app, alice):
    api = Client(HTTP_AUTHORIZATION=f"Token {dashboard_token_create(user=organization.members.get())}")
    schema = _nullable_to_json_schema(json.loads(api.get("/api/schema/", HTTP_ACCEPT="application/json").content))
    conference = Conference.objects.get()

    def check(method: str, template: str, status: int, response) -> None:
        assert response.status_code == status, response.content
        operation = schema["paths"][template][method]
        body_schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
        jsonschema.validate(response.json(), {**body_schema, "components": schema["components"]})

    check("get", "/metrics/v1/apps", 200, api.get("/metrics/v1/apps"))
    check("get", "/metrics/v1/conferences", 200, api.get(f"/metrics/v1/conferences?appId={app.pk}"))
    check("get", "/metrics/v1/participants", 200, api.get(f"/metrics/v1/participants?appId={app.pk}"))
    check("get", "/metrics/v1/conferences/{id}", 200, api.get(f"/metrics/v1/conferences/{conference.pk}"))
    check("get", "/metrics/v1/apps/{id}", 200, api.get(f"/metrics/v1/apps/{app.pk}"))
    created = api.post("/metrics/v1/organizations", {"name": "New"}, content_type="application/json")
    check("post", "/metrics/v1/organizations", 201, created)
    events = api.get(f"/metrics/v1/conferences/{conference.pk}/events")
    check("get", "/metrics/v1/conferences/{id}/events", 200, events)
    # The old shapes do not validate: the check can fail.
    with pytest.raises(jsonschema.ValidationError):
        body_schema = schema["paths"]["/metrics/v1/apps"]["get"]["responses"]["200"]["content"]["application/json"]
        jsonschema.validate(
            api.get("/metrics/v1/apps").json()["results"], {**body_schema["schema"], "components": schema["components"]}
        )


def test_migration_turns_plaintext_authtokens_into_digests(organization):
    from django.apps import apps as django_apps
    from rest_framework.authtoken.models import Token

    migration = importlib.import_module("metrics.migrations.0003_dashboard_tokens_from_authtoken")
    key = Token.objects.create(user=organization.members.get()).key
    migration.hash_existing_tokens(django_apps, None)
    assert not Token.objects.exists() and not DashboardToken.objects.filter(digest=key).exists()
    assert Client(HTTP_AUTHORIZATION=f"Token {key}").get("/metrics/v1/organizations").status_code == 200
