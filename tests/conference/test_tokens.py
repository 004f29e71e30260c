"""Room tokens over HTTP: shape, header user/role priority, validation, single use under concurrency."""

import base64
import json
import threading

import pytest
from django.db import connection

from conference.services import service_create
from owt.client import ManagementClient, OwtApiError
from streamengine import services as engine
from streamengine.exceptions import TokenAlreadyUsed
from streamengine.models import Token


def decode(token):
    return json.loads(base64.b64decode(token))


def test_token_text_shape_and_stored_row(api, settings):
    room = api.create_room("r")
    token = api.create_token(room["_id"], "alice", "presenter", {"isp": "isp1", "region": "eu"})
    body = decode(token)
    assert list(body) == ["tokenId", "host", "secure", "signature"]
    assert body["host"] == settings.OWT_PORTAL_HOST
    row = Token.objects.get(id=body["tokenId"])
    assert (row.domain_id, row.user, row.role, row.origin) == (
        room["_id"],
        "alice",
        "presenter",
        {"isp": "isp1", "region": "eu"},
    )
    assert (row.expires_at - row.created_at).total_seconds() == pytest.approx(180, abs=2)


def test_default_preference(api):
    room = api.create_room("r")
    row = Token.objects.get(id=decode(api.create_token(room["_id"], "bob", "viewer"))["tokenId"])
    assert row.origin == {"isp": "isp", "region": "region"}


def test_header_user_and_role_win_over_body(api, make_client):
    room = api.create_room("r")
    signed = make_client(api.service_id, api.key, user="Zoë", role="viewer")
    row = Token.objects.get(id=decode(signed.create_token(room["_id"], "ignored", "presenter"))["tokenId"])
    assert (row.user, row.role) == ("Zoë", "viewer")


@pytest.mark.parametrize(
    "body",
    [{"user": "u", "role": "nobody"}, {"user": "", "role": "presenter"}, {"role": "presenter"}, {"user": "u"},
     {"user": 5, "role": "presenter"}, {"user": "u", "role": "presenter", "preference": "fast"}],
)  # fmt: skip
def test_invalid_token_requests(api, body):
    room = api.create_room("r")
    with pytest.raises(OwtApiError) as info:
        api.request("POST", f"/v1/rooms/{room['_id']}/tokens", json=body)
    assert (info.value.status, info.value.code) == (400, 1301)
    assert not Token.objects.exists()


def test_role_must_exist_in_this_room(api):
    room = api.create_room("r", {"roles": [{"role": "guest", "subscribe": {"audio": True}}]})
    assert decode(api.create_token(room["_id"], "u", "guest"))["tokenId"]
    with pytest.raises(OwtApiError) as info:
        api.create_token(room["_id"], "u", "presenter")
    assert info.value.message == "Name or role not valid"


@pytest.mark.django_db(transaction=True)
def test_token_single_use_under_concurrency(http):
    """Many simultaneous logins with one token: exactly one wins (real threads, own connections)."""
    service = service_create(name="t", key="k")
    api = ManagementClient("http://testserver", service.id, "k", http=http)
    room = api.create_room("r")
    for _ in range(3):
        token = api.create_token(room["_id"], "u", "presenter")
        results, barrier = [], threading.Barrier(8)

        def login(token=token, results=results, barrier=barrier):
            barrier.wait()
            try:
                engine.token_consume(token_string=token)
                results.append("ok")
            except TokenAlreadyUsed:
                results.append("used")
            except Exception as exc:  # any other outcome must show up in the assertion
                results.append(repr(exc))
            finally:
                connection.close()

        threads = [threading.Thread(target=login) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(results) == ["ok"] + ["used"] * 7


def test_an_unknown_or_foreign_room_is_a_404_before_the_body_is_judged(api, other_api):
    theirs = other_api.create_room("theirs")["_id"]
    for room_id in (theirs, "0" * 24):
        for body in ({"user": "u", "role": "presenter"}, {"user": 7}, ["not", "an", "object"]):
            with pytest.raises(OwtApiError) as info:
                api.request("POST", f"/v1/rooms/{room_id}/tokens", json=body)
            assert (info.value.status, info.value.code) == (404, 1003)
    assert not Token.objects.exists()
