"""MAuth: the reference vectors, the reference parser, replay and window checks."""

import time
from types import SimpleNamespace

import pytest

from conference.services import service_create
from owt import mauth

VECTORS = [
    ("sampleKey", "1406079112038", "87428", None, None,
     "Mzk4YjgxOThkOWYxZDFjMTU4NDlkY2RiOTMxYTJkYmQ0NzkxOTUxYzEzODM0M2JjYjY2MmVlODE0MmYzNzZlOA=="),
    ("sampleKey", "1406079112038", "87428", "dXNlcjE=", "presenter",
     "MjYyOGE3YmMzNDk3NjU3MWNkNjcyNmU2YzIwYmNjODc3YjAxN2YyMWViMGQ1MDI1YWQ3OTM3MDcwMmRiOWM2NA=="),
    ("sampleKey", "1406079112038", "87428", "user1", "presenter",
     "YjBmOWI3YzA2M2ZmYTBkYWFhMzBjMzhhMzU5ZGY4OThiNzE1MmU3ZjZhOTVmNWFlNmY3ZjcxYjMwMDJmNDNkNg=="),
    ("owtKey", "1700000000000", "a1b2c3d4e5f60708", None, None,
     "NmM0MjQ0ZDIwNDE0NWQyNGQyZGE4NGYwOGY2NjIyMzk3NGRmM2ExMDJhZDdkMGU1NDcxNDhkNzUzNWQ3MDVhNg=="),
]  # fmt: skip


@pytest.mark.parametrize(("key", "ts", "cnonce", "username", "role", "expected"), VECTORS)
def test_reference_vectors(key, ts, cnonce, username, role, expected):
    assert mauth.signature(key, mauth.string_to_sign(ts, cnonce, username, role)) == expected


def official_header(service_id, ts, cnonce, sig, username=None, role=None):
    """Byte for byte what the OWT JS/Python REST clients send."""
    user = f"mauth_username={username},mauth_role={role}," if username else ""
    return (
        f"MAuth realm=http://marte3.dit.upm.es,mauth_signature_method=HMAC_SHA256,{user}"
        f"mauth_serviceid={service_id},mauth_cnonce={cnonce},mauth_timestamp={ts},mauth_signature={sig}"
    )


def test_parser_keeps_base64_padding():
    fields = mauth.parse_header(official_header("a" * 24, "1", "2", "YWJj==", "dXNlcjE=", "presenter"))
    assert fields["realm"] == "http://marte3.dit.upm.es"
    assert fields["signature"] == "YWJj=="
    assert fields["username"] == "dXNlcjE="
    assert fields["role"] == "presenter"


@pytest.mark.parametrize(("key", "ts", "cnonce", "username", "role", "expected"), VECTORS)
def test_verify_accepts_vector_headers(db, key, ts, cnonce, username, role, expected):
    service = service_create(name=f"svc-{key}-{role}-{username}", key=key)
    header = official_header(service.id, ts, cnonce, expected, username, role)
    credentials = mauth.verify(header, now=int(ts) / 1000)
    assert credentials.service == service
    assert (credentials.user, credentials.role) == ({"dXNlcjE=": "user1", "user1": "user1"}.get(username), role)
    with pytest.raises(mauth.MAuthFailed, match="replayed"):
        mauth.verify(header, now=int(ts) / 1000)


def test_verify_failures(db):
    service = service_create(name="svc", key="k")
    now = time.time()

    def fails(header, match, at=now):
        with pytest.raises(mauth.MAuthFailed, match=match) as info:
            mauth.verify(header, now=at)
        assert info.value.status == 401 and info.value.code == 1101

    good = mauth.build_header(service_id=service.id, key="k")
    fails(None, "missing")
    fails("Bearer x", "not MAuth")
    fails(good.replace("HMAC_SHA256", "HMAC_SHA1"), "signature method")
    fails(good.replace(service.id, "not-an-object-id"), "service id")
    fails(good.replace(service.id, "0" * 24), "unknown service")
    fails(mauth.build_header(service_id=service.id, key="wrong"), "signature mismatch")
    fails(good.replace(",mauth_", ", mauth_"), "signature method|service id|cnonce|timestamp")
    fails(good, "window", at=now + 3600)
    old = mauth.build_header(service_id=service.id, key="k", timestamp=int((now - 3600) * 1000))
    fails(old, "window")
    assert mauth.verify(good, now=now).service == service
    lowercase = mauth.build_header(service_id=service.id, key="k").replace("MAuth realm", "Mauth realm")
    assert mauth.verify(lowercase, now=now).service == service


def test_http_replay_and_failures_use_owt_envelope(api, http):
    header = api.authorization()
    first = http.get("/v1/rooms", headers={"Authorization": header})
    assert first.status_code == 200
    replay = http.get("/v1/rooms", headers={"Authorization": header})
    assert replay.status_code == 401
    assert replay.json()["error"] == {
        "code": 1101,
        "message": "MAuth: replayed request (timestamp and cnonce already used)",
    }
    for headers in ({}, {"Authorization": header.replace(api.service_id, "f" * 24)}, {"Authorization": "MAuth x=y"}):
        response = http.post("/v1/rooms", json={"name": "r"}, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == 1101
    response = http.get("/services", headers={"Authorization": "MAuth realm=x,mauth_serviceid=zz"})
    assert response.status_code == 401 and response.json()["error"]["code"] == 1101


def test_concurrent_distinct_headers_all_pass(api):
    """Replay protection must not refuse distinct cnonces with the same millisecond timestamp."""
    ts = int(time.time() * 1000)
    headers = [
        mauth.build_header(service_id=api.service_id, key=api.key, timestamp=ts, cnonce=f"{i:05d}") for i in range(50)
    ]
    assert all(mauth.verify(h).service.id == api.service_id for h in headers)


def test_cors_preflight_and_headers(api, http):
    preflight = http.options(
        "/v1/rooms", headers={"Origin": "http://app.example", "Access-Control-Request-Method": "POST"}
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"]
    refused = http.get("/v1/rooms")
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "*"
    assert http.get("/v1/rooms", headers={"Authorization": api.authorization()}).headers["Access-Control-Allow-Methods"]


TENANT = SimpleNamespace(id="b" * 24)
TENANTS = {TENANT.id: (TENANT, "plugged-key")}


def plugged_lookup(service_id):
    return TENANTS.get(service_id)


def test_credential_lookup_is_a_setting(settings):
    """owt.mauth knows no app: whoever owns the services names the lookup in OWT_MAUTH_CREDENTIALS."""
    settings.OWT_MAUTH_CREDENTIALS = f"{__name__}.plugged_lookup"
    header = mauth.build_header(service_id="b" * 24, key="plugged-key")
    assert mauth.verify(header).service is TENANT
    with pytest.raises(mauth.MAuthFailed, match="unknown service"):
        mauth.verify(mauth.build_header(service_id="c" * 24, key="plugged-key"))
