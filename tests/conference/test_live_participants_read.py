"""GET /v1[.1]/rooms/{r}/participants and PATCH body validation."""

import pytest

from streamengine.models import Participant
from tests.streamengine import live_state as ls


@pytest.fixture
def world(db):
    service, _, client = ls.tenant("tenant-a")
    room = ls.room(service)
    alice = ls.participant(room.id, "alice")
    bob = ls.participant(room.id, "bob", role="viewer")
    return {"client": client, "room": room, "alice": alice, "bob": bob}


@pytest.mark.parametrize("version", ["v1", "v1.1"])
def test_list_and_get(world, version):
    client, room = world["client"], world["room"]
    response = client.get(f"/{version}/rooms/{room.id}/participants")
    assert response.status_code == 200
    assert response.json() == [
        {"id": world["alice"].id, "user": "alice", "role": "presenter", "permission": ls.PRESENTER},
        {"id": world["bob"].id, "user": "bob", "role": "viewer", "permission": ls.PRESENTER},
    ]
    one = client.get(f"/{version}/rooms/{room.id}/participants/{world['bob'].id}/").json()
    assert one["user"] == "bob"


def test_unknown_foreign_and_unauthenticated(world):
    client, room = world["client"], world["room"]
    response = client.get(f"/v1/rooms/{room.id}/participants/nope")
    assert response.json() == {"error": {"code": 1005, "message": "Participant not found"}}
    other_room = ls.room(world["room"].service, "other")
    assert client.get(f"/v1/rooms/{other_room.id}/participants/{world['alice'].id}").status_code == 404
    _, _, other = ls.tenant("tenant-b")
    assert other.get(f"/v1/rooms/{room.id}/participants").json()["error"]["code"] == 1003
    from rest_framework.test import APIClient

    assert APIClient().get(f"/v1/rooms/{room.id}/participants").status_code == 401


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"op": "replace"}, "non-empty JSON array"),
        ([], "non-empty JSON array"),
        (
            [{"op": "add", "path": "/permission/publish", "value": {"audio": True, "video": True}}],
            '[0].op: must be "replace"',
        ),
        ([{"op": "replace", "path": "/permission/admin", "value": True}], "[0].path"),
        ([{"op": "replace", "path": "/permission/publish/audio", "value": "yes"}], "[0].value: must be true or false"),
        ([{"op": "replace", "path": "/permission/subscribe", "value": {"audio": True}}], "[0].value"),
        ([{"op": "replace", "path": "/permission/subscribe/video"}], "[0].value"),
    ],
)
def test_patch_validation(world, body, fragment):
    response = world["client"].patch(f"/v1/rooms/{world['room'].id}/participants/{world['alice'].id}", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 1301
    assert fragment in error["message"]
    assert Participant.objects.get(id=world["alice"].id).permission == ls.PRESENTER
