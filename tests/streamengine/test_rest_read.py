"""Stream-engine REST read side: lists with filters and pagination, get one, tenant scoping."""

import pytest

from streamengine.models import MediaJob
from tests.streamengine import live_state as ls

BASE = "/v1.1/stream-engine"


@pytest.fixture
def world(db):
    """Two tenants; tenant A has a room with a publisher and a viewer on one node."""
    service, _, client = ls.tenant("tenant-a")
    _, _, other = ls.tenant("tenant-b")
    room = ls.room(service)
    node = ls.node()
    alice = ls.participant(room.id, "alice", on=node)
    bob = ls.participant(room.id, "bob", role="viewer", on=node)
    pub = ls.publication(alice)
    sub = ls.subscription(bob, pub)
    return {
        "client": client,
        "other": other,
        "room": room,
        "node": node,
        "alice": alice,
        "bob": bob,
        "pub": pub,
        "sub": sub,
    }


def test_participants_list_shape(world):
    response = world["client"].get(f"{BASE}/participants")
    assert response.status_code == 200
    body = response.json()
    assert (body["total"], body["start"]) == (2, 0)
    alice = body["data"][0]
    assert alice == {
        "id": world["alice"].id,
        "domain": world["room"].id,
        "portal": "specific.channel!abc",
        "type": "webrtc",
        "notifying": True,
        "user": "alice",
        "role": "presenter",
        "permission": ls.PRESENTER,
        "pubs": [world["pub"].id],
        "subs": [],
        "locality": {"agent": "agent-a", "node": "node-1"},
    }
    assert body["data"][1]["subs"] == [world["sub"].id]


def test_publication_shape(world):
    body = world["client"].get(f"{BASE}/publications/{world['pub'].id}").json()
    assert body["id"] == world["pub"].id
    assert body["type"] == "webrtc"
    assert body["participant"] == world["alice"].id
    assert body["domain"] == world["room"].id
    assert body["locality"] == {"agent": "agent-a", "node": "node-1"}
    assert body["source"]["audio"] == [
        {
            "id": f"{world['pub'].id}-0",
            "format": {"codec": "opus", "sampleRate": 48000, "channelNum": 2},
            "status": "active",
        }
    ]
    assert body["source"]["video"][0]["parameters"] == {"resolution": {"width": 640, "height": 480}}
    assert body["source"]["data"] == []
    assert body["info"]["attributes"] == {"label": "cam"}


def test_subscription_and_node_shapes(world):
    sub = world["client"].get(f"{BASE}/subscriptions/{world['sub'].id}/").json()
    assert sub["type"] == "webrtc"
    assert [t["from"] for t in sub["sink"]["video"]] == [world["pub"].id]
    assert sub["participant"] == world["bob"].id
    nodes = world["client"].get(f"{BASE}/nodes").json()
    assert nodes["total"] == 1
    node = nodes["data"][0]
    assert (node["id"], node["agent"], node["type"]) == ("node-1", "agent-a", "webrtc")
    assert node["pubs"] == [world["pub"].id]
    assert node["subs"] == [world["sub"].id]
    assert node["streamAddr"] == {"ip": "127.0.0.1", "port": 0}


def test_filters_from_query_string(world):
    body = world["client"].get(f"{BASE}/participants", {"role": "viewer"}).json()
    assert [p["user"] for p in body["data"]] == ["bob"]
    assert body["total"] == 1
    body = world["client"].get(f"{BASE}/publications", {"participant": world["bob"].id}).json()
    assert body == {"total": 0, "start": 0, "data": []}


def test_filters_from_json_body_and_both_are_anded(world):
    client = world["client"]
    body = client.get_with_body(f"{BASE}/participants", {"query": {"user": "alice"}}).json()
    assert [p["user"] for p in body["data"]] == ["alice"]
    body = client.get_with_body(f"{BASE}/participants?role=viewer", {"query": {"user": "alice"}}).json()
    assert body["total"] == 0
    body = client.get_with_body(f"{BASE}/publications", {"query": {"locality.node": "node-1"}}).json()
    assert body["total"] == 1


def test_pagination(world):
    for index in range(5):
        ls.participant(world["room"].id, f"extra{index}")
    client = world["client"]
    body = client.get(f"{BASE}/participants", {"start": 2, "limit": 3}).json()
    assert (body["total"], body["start"], len(body["data"])) == (7, 2, 3)
    assert [p["user"] for p in body["data"]] == ["extra0", "extra1", "extra2"]
    body = client.get(f"{BASE}/participants", {"start": 6}).json()
    assert [p["user"] for p in body["data"]] == ["extra4"]
    body = client.get_with_body(f"{BASE}/participants", {"start": 1, "limit": 1}).json()
    assert [p["user"] for p in body["data"]] == ["bob"]


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        ({"colour": "red"}, "Unknown query key: colour"),
        ({"limit": "0"}, "limit"),
        ({"start": "-1"}, "start"),
        ({"limit": "many"}, "limit"),
    ],
)
def test_bad_list_queries(world, query, fragment):
    response = world["client"].get(f"{BASE}/participants", query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == 1301
    assert fragment in error["message"]


def test_bad_body_queries(world):
    response = world["client"].get_with_body(f"{BASE}/participants", {"query": ["user", "alice"]})
    assert response.status_code == 400
    response = world["client"].get_with_body(f"{BASE}/participants", {"query": {"user": {"$ne": "x"}}})
    assert response.status_code == 400
    assert "must be a string or a number" in response.json()["error"]["message"]


def test_other_tenant_sees_nothing(world):
    other = world["other"]
    for resource in ("participants", "publications", "subscriptions"):
        assert other.get(f"{BASE}/{resource}").json() == {"total": 0, "start": 0, "data": []}
    assert other.get(f"{BASE}/participants/{world['alice'].id}").status_code == 404
    response = other.get(f"{BASE}/publications/{world['pub'].id}")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": 1004, "message": "Stream not found"}}
    assert other.delete(f"{BASE}/publications/{world['pub'].id}").status_code == 404
    # The shared node is listed, but without tenant A's sessions.
    node = other.get(f"{BASE}/nodes/node-1").json()
    assert (node["pubs"], node["subs"]) == ([], [])


def test_unknown_ids(world):
    client = world["client"]
    response = client.get(f"{BASE}/participants/nope")
    assert response.json() == {"error": {"code": 1005, "message": "Participant not found"}}
    assert client.get(f"{BASE}/subscriptions/nope").json()["error"]["code"] == 1001
    assert client.get(f"{BASE}/nodes/nope").status_code == 404


def test_needs_mauth(world):
    from rest_framework.test import APIClient

    response = APIClient().get(f"{BASE}/participants")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 1101


def test_create_routes_are_not_offered(world):
    response = world["client"].post(f"{BASE}/nodes", {"id": "n"})
    assert response.status_code == 405
    assert "error" in response.json()


def test_a_streaming_publication_is_validated_and_scoped_to_the_callers_domains(world, settings):
    # Only type "streaming" is created by REST (a streaming-in job: tests/streamengine/test_streaming_in.py).
    response = world["client"].post(f"{BASE}/publications", {"type": "webrtc"})
    assert response.status_code == 400 and "type" in response.json()["error"]["message"]
    body = {"type": "streaming", "participant": "nope", "media": {"audio": "auto", "video": True}}
    response = world["client"].post(f"{BASE}/publications", {**body, "info": {"url": "rtsp://8.8.8.8/x"}})
    assert response.status_code == 404
    other = world["other"].post(
        f"{BASE}/publications",
        {**body, "participant": world["room"].id, "info": {"url": "rtsp://8.8.8.8/x"}},
    )
    assert other.status_code == 404
    settings.STREAMING_IN_ALLOW_PRIVATE = False
    body["participant"] = world["room"].id
    refused = world["client"].post(f"{BASE}/publications", {**body, "info": {"url": "rtsp://10.0.0.1/x"}})
    assert refused.status_code == 400 and "non-public address" in refused.json()["error"]["message"]
    assert not MediaJob.objects.exists()


def test_participant_locality_is_its_domains_node(world):
    from streamengine.models import Domain

    carol = ls.participant(world["room"].id, "carol")
    Domain.objects.filter(id=world["room"].id).update(node=world["node"])
    client = world["client"]
    body = client.get(f"{BASE}/participants/{carol.id}").json()
    assert body["locality"] == {"agent": "agent-a", "node": "node-1"}
    body = client.get(f"{BASE}/participants", {"locality.node": "node-1"}).json()
    assert body["total"] == 3
    assert client.get(f"{BASE}/participants", {"locality.agent": "elsewhere"}).json()["total"] == 0
