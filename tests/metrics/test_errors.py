"""Every SDK error path answers the reference's ``{"error_code","message"}`` and status."""

from __future__ import annotations

import time

import jwt
import pytest

from metrics import tokens
from metrics.errors import MESSAGES
from metrics.models import App, Conference, Connection, GenericEvent
from metrics.testing import stats_payload

pytestmark = pytest.mark.django_db(transaction=True)


def error(code: str) -> tuple[int, dict]:
    message, status = MESSAGES[code]
    return status, {"error_code": code, "message": message}


def init_body(app: App, **changes) -> dict:
    body = {"apiKey": app.api_key, "conferenceId": "room-1", "userId": "u1", "userName": "U"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize("missing", ["apiKey", "conferenceId", "userId"])
def test_initialize_missing_parameters(app, sdk, missing):
    assert sdk.post("initialize", init_body(app, **{missing: None}), token=False) == error("missing_parameters")
    assert sdk.last_detail == f"{missing} is required"


def test_initialize_errors(app, sdk):
    assert sdk.post("initialize", init_body(app, userId={"a": 1}), token=False)[1]["error_code"] == "invalid_parameters"
    assert sdk.post("initialize", init_body(app, apiKey="X" * 32), token=False) == error("invalid_api_key")
    assert sdk.post("initialize", init_body(app, apiKey="a" * 32), token=False) == error("invalid_api_key")
    assert sdk.post("initialize", "{not json", token=False) == (400, {"error_code": "unknown_error", "message": ""})
    assert sdk.post("initialize", "[1, 2]", token=False)[1]["error_code"] == "invalid_parameters"
    app.recording = False
    app.save()
    assert sdk.post("initialize", init_body(app), token=False) == error("app_not_recording")
    app.recording, app.domain = True, "meet.example.com"
    app.save()
    assert sdk.post("initialize", init_body(app), token=False)[0] == 200  # Origin https://meet.example.com
    sdk.origin = "http://meet.example.com:8443"
    assert sdk.post("initialize", init_body(app), token=False)[0] == 200  # port stripped
    sdk.origin = "https://evil.example.com"
    assert sdk.post("initialize", init_body(app), token=False) == error("domain_not_allowed")
    sdk.origin = None
    assert sdk.post("initialize", init_body(app), token=False) == error("domain_not_allowed")
    app.is_active = False
    app.save()
    sdk.origin = "https://meet.example.com"
    assert sdk.post("initialize", init_body(app), token=False) == error("invalid_api_key")


def test_method_not_allowed_and_unknown_path(sdk):
    status, body = sdk.call("GET", "initialize", "", token=False)
    assert status == 405 and body["error_code"] == "method_not_allowed"
    assert sdk.call("GET", "stats", "", token=False) == error("method_not_allowed")
    status, body = sdk.post("no-such-route", {}, token=False)
    assert status == 404 and body["error_code"] == "not_found"


def test_tokens(app, sdk, settings):
    status, init = sdk.post("initialize", init_body(app), token=False)
    init_token = init["token"]
    assert jwt.get_unverified_header(init_token)["alg"] == "HS256"
    claims = jwt.decode(init_token, options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == settings.METRICS_TOKEN_LIFETIME_SECONDS
    assert sdk.post("sessions", {}, token=False) == error("missing_token")
    assert sdk.post("sessions", {"token": 42}, token=False) == error("invalid_token")
    forged = jwt.encode({**claims, "exp": int(time.time()) + 60}, "not-the-secret", algorithm="HS256")
    assert sdk.post("sessions", {"token": forged}, token=False) == error("invalid_token")
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert sdk.post("sessions", {"token": unsigned}, token=False) == error("invalid_token")
    expired = tokens.issue("init", {"p": claims["p"], "c": claims["c"]}, lifetime=-10)
    assert sdk.post("sessions", {"token": expired}, token=False) == error("expired_token")
    unknown = tokens.init_token(
        participant_id=claims["p"], conference_id="00000000-0000-0000-0000-000000000000", key_generation=0
    )
    assert sdk.post("sessions", {"token": unknown}, token=False) == error("invalid_token")
    # An init token is not a session token and vice versa.
    assert sdk.post("events/browser", {"token": init_token, "eventName": "custom"}, token=False) == error(
        "invalid_token"
    )
    status, session = sdk.post("sessions", {"token": init_token}, token=False)
    assert status == 200
    assert sdk.post("sessions", {"token": session["token"]}, token=False) == error("invalid_token")
    expired_session = tokens.issue(
        "session", {"s": jwt.decode(session["token"], options={"verify_signature": False})["s"]}, lifetime=-1
    )
    assert sdk.post("stats", {"token": expired_session, "connectionId": "x", "data": {}}, token=False) == error(
        "expired_token"
    )
    assert sdk.post("stats", {"connectionId": "x", "data": {}}, token=False) == error("missing_token")


def test_session_errors(app, sdk):
    _, init = sdk.post("initialize", init_body(app), token=False)
    for meta in ({"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}, {"k": {"nested": 1}}, {"k": "x" * 300}, ["list"]):
        assert sdk.post("sessions", {"token": init["token"], "meta": meta}, token=False) == error("invalid_meta")
    assert (
        sdk.post("sessions", {"token": init["token"], "meta": {"score": 1.5}, "appVersion": "x" * 40}, token=False)[0]
        == 200
    )
    assert (
        sdk.post("sessions", {"token": init["token"], "devices": "no"}, token=False)[1]["error_code"]
        == "invalid_parameters"
    )


def test_event_errors(app, sdk_factory):
    alice, bob = sdk_factory(), sdk_factory()
    alice.join(app.api_key, "room-1", "alice")
    bob.join(app.api_key, "room-1", "bob")
    assert alice.post("events/browser", {}) == error("missing_parameters")
    assert alice.post("connection", {"eventName": "addConnection"}) == error("missing_parameters")
    assert alice.post("connection", {"eventName": "addConnection", "peerId": "alice"}) == error(
        "participant_equal_peer"
    )
    assert (
        alice.post("connection", {"eventName": "addConnection", "peerId": "bob", "delta": "soon"})[1]["error_code"]
        == "invalid_parameters"
    )
    assert alice.post("connection", {"eventName": "bogus", "peerId": "bob"})[1]["error_code"] == "invalid_parameters"
    _, ids = alice.post("connection", {"eventName": "addConnection", "peerId": "bob", "peerName": "B" * 100})
    assert Conference.objects.get().participants.get(participant_id="bob").participant_name == "B" * 64
    base = {"peerId": ids["peer_id"], "connectionId": ids["connection_id"]}
    assert (
        alice.post("connection", {**base, "eventName": "oniceconnectionstatechange", "data": "weird"})[1]["error_code"]
        == "invalid_parameters"
    )
    assert alice.post("connection", {**base, "eventName": "onconnectionstatechange", "connectionId": "nope"}) == error(
        "connection_not_found"
    )
    missing = "00000000-0000-0000-0000-000000000000"
    assert alice.post("stats", {**base, "connectionId": missing, "data": stats_payload(0)}) == error(
        "connection_not_found"
    )
    assert alice.post("stats", {**base, "data": "not-an-object"})[1]["error_code"] == "invalid_parameters"
    assert alice.post("tracks", {**base, "event": "ontrack", "connectionId": missing, "trackId": "t"}) == error(
        "connection_not_found"
    )
    assert alice.put("tracks", {"event": "mute", "trackId": "none"}) == error("track_not_found")
    assert alice.post("events/get-user-media", {"data": "x"})[1]["error_code"] == "invalid_parameters"
    # Another session's connection is invisible (the reference resolved any UUID).
    assert bob.post("stats", {**base, "data": stats_payload(0)}) == error("connection_not_found")
    assert bob.post("connection", {**base, "eventName": "onconnectionstatechange", "data": "failed"}) == error(
        "connection_not_found"
    )
    assert bob.post("tracks", {**base, "event": "ontrack", "trackId": "t", "data": {"kind": "audio"}}) == error(
        "connection_not_found"
    )
    assert alice.post("stats", {**base, "data": stats_payload(0)}) == (200, "")


def test_connection_batch_reference_and_sdk_shapes(app, sdk):
    sdk.join(app.api_key, "room-1", "alice")
    batch = [{"eventName": "addConnection", "peerId": "bob"}, {"eventName": "addConnection", "peerId": "alice"}]
    # All or nothing: the failing item refuses the request, named, and the first is not kept.
    assert sdk.post("connection/batch", {"delta": 100, "data": batch}) == error("participant_equal_peer")
    assert sdk.last_detail.startswith("data[1]: ")
    assert sdk.post("connection/batch", {"data": [batch[0], "junk"]})[1]["error_code"] == "invalid_parameters"
    assert sdk.last_detail == "data[1]: an event must be an object"
    assert not Connection.objects.exists() and not GenericEvent.objects.filter(category="C").exists()
    status, body = sdk.post("connection/batch", {"delta": 100, "data": batch[:1]})
    assert status == 200
    (first,) = body["data"]
    assert set(first) == {"peer_id", "connection_id"}
    # The SDK's bare array carries no token.
    assert sdk.post(
        "connection/batch", [{"eventName": "onnegotiationneeded", "peerId": "bob", "timeDelta": 1}], token=False
    ) == error("missing_token")
    events = [
        {
            "token": sdk.token,
            "eventName": "onnegotiationneeded",
            "peerId": first["peer_id"],
            "connectionId": first["connection_id"],
            "timeDelta": 5,
        }
    ]
    assert sdk.post("connection/batch", events, token=False) == (200, {"data": [{}]})


def test_cors(app, sdk):
    response = sdk.client.options(
        "/metrics/v1/sessions", HTTP_ORIGIN="https://x.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="PUT"
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert (
        "PUT" in response["Access-Control-Allow-Methods"] and "content-type" in response["Access-Control-Allow-Headers"]
    )
    response = sdk.client.post("/metrics/v1/stats", "{}", content_type="text/plain;charset=UTF-8")
    assert response.status_code == 401 and response["Access-Control-Allow-Origin"] == "*"
    response = sdk.client.post(
        "/metrics/v1/initialize", "{}", content_type="text/plain", HTTP_ORIGIN="https://x.example"
    )
    assert response["Access-Control-Allow-Origin"] == "*"
    assert not sdk.client.get("/metrics/v1/organizations").has_header("Access-Control-Allow-Origin")


def test_too_large_body_answers_in_format(app, sdk, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    status, body = sdk.post("stats", {"data": {"x": "y" * 2000}}, token=False)
    assert status == 413 and body["error_code"] == "invalid_parameters"
