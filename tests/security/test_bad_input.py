"""Bad input on the DRF routes is a 4xx in the API's own format, never a 500 (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from owt.localserver import manage, portal_env, running_portal
from owt.mauth import build_header
from tests.security.helpers import make_service, signed

pytestmark = pytest.mark.django_db


@pytest.fixture
def tenant(db):
    return make_service("tenant-a")


def assert_owt_400(response) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["error"]["code"] == 1301


def nested(levels: int) -> str:
    return '{"name": "r", "options": ' + "[" * levels + "]" * levels + "}"


@pytest.mark.parametrize("levels", [100_000, 65])
def test_deeply_nested_json_is_refused(api_client, tenant, levels):
    body = nested(levels)
    assert_owt_400(api_client.post("/v1/rooms", body, content_type="application/json", **signed(tenant)))
    stream_engine = api_client.generic(
        "GET", "/v1.1/stream-engine/participants", body, content_type="application/json", **signed(tenant)
    )
    assert_owt_400(stream_engine)


def test_nesting_within_the_limit_is_parsed(api_client, tenant):
    response = api_client.post("/v1/rooms", nested(10), content_type="application/json", **signed(tenant))
    assert response.status_code == 400
    assert "Failed to parse" not in response.json()["error"]["message"]  # the room's own validation


@pytest.mark.parametrize("text", ["\\u0000", "a\\ud800b", "\\udfff"])
def test_nul_and_lone_surrogates_in_json_strings_are_refused(api_client, tenant, text):
    for body in (f'{{"name": "{text}"}}', f'{{"name": "r", "options": {{"roles": [{{"role": "{text}"}}]}}}}'):
        assert_owt_400(api_client.post("/v1/rooms", body, content_type="application/json", **signed(tenant)))
    as_key = f'{{"name": "r", "options": {{"{text}": 1}}}}'
    assert_owt_400(api_client.post("/v1/rooms", as_key, content_type="application/json", **signed(tenant)))


def test_a_surrogate_pair_is_text(api_client, tenant):
    response = api_client.post(
        "/v1/rooms", '{"name": "\\ud83d\\ude00"}', content_type="application/json", **signed(tenant)
    )
    assert response.status_code == 200
    assert response.json()["name"] == "\U0001f600"


@pytest.mark.parametrize(
    "path",
    [
        # NUL in ids and query strings (PostgreSQL cannot compare with it)
        "/v1/rooms/%00",
        "/v1.1/rooms/%00/tokens",
        "/v1.1/stream-engine/participants/%00",
        "/v1.1/stream-engine/participants?domain=%00",
        "/v1/rooms?per_page=1&page=%00",
        # integers beyond a bigint (SQLite and PostgreSQL overflow)
        "/v1/rooms?per_page=99999999999999999999",
        "/v1/rooms?per_page=10&page=99999999999999999999",
        "/v1/rooms?per_page=9223372036854775807&page=9223372036854775807",
        "/v1.1/stream-engine/participants?start=99999999999999999999",
        "/v1.1/stream-engine/publications?start=9223372036854775807",
    ],
)
def test_bad_ids_and_query_strings_are_refused(api_client, tenant, path):
    assert_owt_400(api_client.get(path, **signed(tenant)))


def test_nul_in_a_health_query_is_refused_in_plain_format(api_client):
    response = api_client.get("/health/?probe=%00")
    assert response.status_code == 400
    assert "NUL" in response.json()["detail"]


def test_service_name_longer_than_its_column_is_refused(api_client, db):
    from conference.services import service_bootstrap_super

    service, key = service_bootstrap_super()
    body = {"name": "n" * 10_000, "key": "k"}
    assert_owt_400(api_client.post("/services", body, format="json", **signed((service.id, key))))


def test_token_user_longer_than_its_column_is_refused(api_client, tenant):
    room = api_client.post("/v1/rooms", {"name": "r"}, format="json", **signed(tenant)).json()
    body = {"user": "u" * 10_000, "role": "presenter"}
    assert_owt_400(api_client.post(f"/v1/rooms/{room['_id']}/tokens", body, format="json", **signed(tenant)))
    # The same limit holds for a user signed into the MAuth header.
    header = build_header(service_id=tenant[0], key=tenant[1], user="u" * 10_000, role="presenter")
    response = api_client.post(f"/v1/rooms/{room['_id']}/tokens", {}, format="json", HTTP_AUTHORIZATION=header)
    assert_owt_400(response)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # closed again when the block ends: connections are refused


@pytest.mark.parametrize("cache_alias", ["mauth", "throttle"])
def test_an_unreachable_cache_is_a_503(api_client, tenant, settings, cache_alias):
    unreachable = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port()}/7",
    }
    settings.CACHES = {**settings.CACHES, cache_alias: unreachable}
    response = api_client.get("/v1/rooms", **signed(tenant))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == 1201
    assert "unavailable" in response.json()["error"]["message"]


def test_an_unreachable_throttle_cache_is_a_503_in_peermetrics_format(api_client, settings):
    unreachable = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": f"redis://127.0.0.1:{closed_port()}/7",
    }
    settings.CACHES = {**settings.CACHES, "throttle": unreachable}
    response = api_client.post("/metrics/v1/initialize", {"conferenceId": "c"}, format="json")
    assert response.status_code == 503
    assert response.json()["error_code"] == "unknown_error"


@pytest.mark.django_db(transaction=True)
@pytest.mark.embedded
def test_chunked_bodies_are_read_under_daphne(tmp_path, settings):
    """A real daphne: a chunked POST (no Content-Length) is parsed, and the size limit still holds."""
    env = portal_env(tmp_path, MAX_REQUEST_BODY_BYTES="4096")
    with running_portal(env) as portal:
        output = manage(env, "owt_bootstrap")
        service_id = output.split("id: ")[1].split()[0]
        key = output.split("key: ")[1].split()[0]

        def chunks(body: bytes):
            for start in range(0, len(body), 100):
                yield body[start : start + 100]

        def post(body: bytes) -> httpx.Response:
            headers = {
                "Authorization": build_header(service_id=service_id, key=key),
                "Content-Type": "application/json",
            }
            return httpx.post(f"{portal.url}/v1/rooms", content=chunks(body), headers=headers, timeout=30)

        created = post(json.dumps({"name": "chunked room", "options": {"participantLimit": 7}}).encode())
        assert created.request.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in created.request.headers
        assert created.status_code == 200, created.text
        assert (created.json()["name"], created.json()["participantLimit"]) == ("chunked room", 7)
        too_large = post(json.dumps({"name": "x" * 10_000}).encode())
        assert too_large.status_code == 413
        assert too_large.json()["error"]["code"] == 1301
