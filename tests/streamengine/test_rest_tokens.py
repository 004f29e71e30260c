"""POST /v1.1/stream-engine/tokens: a login token for a domain the caller owns."""

import base64
import json

import pytest

from streamengine import services as engine_services
from streamengine.models import Token
from tests.streamengine import live_state as ls

URL = "/v1.1/stream-engine/tokens"


@pytest.fixture
def tenant(db):
    service, key, client = ls.tenant("tenant-a")
    return service, key, client, ls.room(service)


def test_token_is_consumable_text(tenant):
    _, _, client, room = tenant
    response = client.post(URL, {"domain": room.id, "user": "alice", "role": "presenter", "preference": {"isp": "x"}})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert list(json.loads(base64.b64decode(text))) == ["tokenId", "host", "secure", "signature"]
    token = engine_services.token_consume(token_string=text)
    assert (token.domain_id, token.user, token.role, token.origin) == (room.id, "alice", "presenter", {"isp": "x"})


def test_header_user_and_role_win(tenant):
    service, key, _, room = tenant
    client = ls.MAuthClient(service, key, user="carol", role="viewer")
    text = client.post(URL, {"domain": room.id, "user": "alice", "role": "presenter"}).content.decode()
    token = engine_services.token_consume(token_string=text)
    assert (token.user, token.role) == ("carol", "viewer")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"user": "a", "role": "presenter"}, 400, 1301),
        ({"domain": "0" * 24, "user": "a", "role": "presenter"}, 404, 1003),
        ({"domain": None, "user": "a", "role": "presenter"}, 400, 1301),
        ({"domain": "ROOM", "user": "a", "role": "nobody"}, 400, 1301),
        ({"domain": "ROOM", "user": "", "role": "presenter"}, 400, 1301),
        ({"domain": "ROOM", "user": "a", "role": "presenter", "preference": "isp"}, 400, 1301),
    ],
)
def test_bad_requests(tenant, body, status, code):
    _, _, client, room = tenant
    body = {key: room.id if value == "ROOM" else value for key, value in body.items()}
    response = client.post(URL, body)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert not Token.objects.exists()


def test_other_tenants_domain_is_unknown(tenant):
    _, _, _, room = tenant
    _, _, other = ls.tenant("tenant-b")
    response = other.post(URL, {"domain": room.id, "user": "a", "role": "presenter"})
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 1003, "message": "Room not found"}}
