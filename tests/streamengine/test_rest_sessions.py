"""The stream-engine REST API over real sessions: what signaling created, REST lists and ends."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from streamengine import services as engine_services
from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack
from streamengine.models import Subscription
from tests.streamengine import live_state as ls
from tests.streamengine.helpers import eventually

pytestmark = pytest.mark.media
BASE = "/v1.1/stream-engine"


@pytest.fixture
def tenant(transactional_db):
    service, _, client = ls.tenant("tenant-a")
    room = ls.room(service)

    def token(user: str) -> str:
        return engine_services.token_create(domain_id=room.id, user=user, role="presenter")

    return {"api": client, "room": room, "token": sync_to_async(token)}


def call(client: ls.MAuthClient, method: str, *args):
    return sync_to_async(getattr(client, method))(*args)


async def test_sessions_listed_and_ended_through_rest(signaling_url, tenant):
    api, room = tenant["api"], tenant["room"]
    async with ConferenceClient(signaling_url) as alice, ConferenceClient(signaling_url) as bob:
        a = await alice.join(await tenant["token"]("alice"))
        b = await bob.join(await tenant["token"]("bob"))
        publication = await alice.publish([SyntheticVideoTrack(), SyntheticAudioTrack()])
        subscription = await bob.subscribe(publication.id)

        pubs = (await call(api, "get", f"{BASE}/publications", {"domain": room.id})).json()
        assert pubs["total"] == 1
        pub = pubs["data"][0]
        assert (pub["id"], pub["participant"], pub["domain"]) == (publication.id, a["id"], room.id)
        assert pub["source"]["video"][0]["format"]["codec"] == "vp8"
        assert pub["source"]["audio"][0]["format"]["codec"] == "opus"
        node_id = pub["locality"]["node"]

        subs = (await call(api, "get", f"{BASE}/subscriptions", {"participant": b["id"]})).json()
        assert [s["id"] for s in subs["data"]] == [subscription.id]
        assert {t["from"] for t in subs["data"][0]["sink"]["video"]} == {publication.id}

        node = (await call(api, "get", f"{BASE}/nodes/{node_id}")).json()
        assert (node["pubs"], node["subs"]) == ([publication.id], [subscription.id])
        bob_rest = (await call(api, "get", f"{BASE}/participants/{b['id']}")).json()
        assert (bob_rest["pubs"], bob_rest["subs"]) == ([], [subscription.id])

        response = await call(api, "delete", f"{BASE}/subscriptions/{subscription.id}")
        assert response.status_code == 200
        await eventually(lambda: not Subscription.objects.filter(id=subscription.id).exists())
        assert (await call(api, "get", f"{BASE}/subscriptions/{subscription.id}")).status_code == 404

        response = await call(api, "delete", f"{BASE}/publications/{publication.id}")
        assert response.status_code == 200
        removed = await bob.wait_for("stream", lambda d: d["status"] == "remove")
        assert removed == {"id": publication.id, "status": "remove"}
        assert (await call(api, "get", f"{BASE}/publications")).json()["total"] == 0
