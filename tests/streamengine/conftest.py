"""Fixtures for live signaling/media tests: a real WebSocket server in the test's loop.

The portal application is served by ``streamengine.asgi_ws`` on a free loopback port in
the test's event loop, so the embedded media node and the in-memory channel layer live
in this process and the database is the test database (``transactional_db``: the
consumer's queries run in worker threads and must see committed rows).
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass

import pytest
from channels.db import database_sync_to_async
from channels.layers import DEFAULT_CHANNEL_LAYER, channel_layers, get_channel_layer

from streamengine import services
from streamengine.client import ConferenceClient, Session, SyntheticVideoTrack

DEFAULT_ROOM = {
    "inputLimit": -1,
    "participantLimit": -1,
    "roles": [
        {"role": "presenter", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}},
        {"role": "viewer", "publish": {"audio": False, "video": False}, "subscribe": {"audio": True, "video": True}},
        {"role": "guest", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}},
        {"role": "sip", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}},
    ],
    "views": [{"label": "common", "audio": {"format": {"codec": "opus", "sampleRate": 48000, "channelNum": 2}}}],
    "mediaIn": {
        "audio": [{"codec": "opus", "sampleRate": 48000, "channelNum": 2}, {"codec": "pcmu"}],
        "video": [{"codec": "h264"}, {"codec": "vp8"}, {"codec": "vp9"}],
    },
    "mediaOut": {
        "audio": [{"codec": "opus", "sampleRate": 48000, "channelNum": 2}],
        "video": {"format": [{"codec": "vp8"}]},
    },
    "notifying": {"participantActivities": True, "streamChange": True},
}


@pytest.fixture
def room(transactional_db):
    """``await room(**overrides)`` → domain id of a fresh room shaped like OWT's default room."""
    counter = iter(range(1, 1000))

    def make(**overrides) -> str:
        config = copy.deepcopy(DEFAULT_ROOM)
        config.update(overrides)
        domain_id = f"{next(counter):024x}"
        services.domain_configure(domain_id=domain_id, owner="svc", config=config)
        return domain_id

    return database_sync_to_async(make)


@pytest.fixture
def token(transactional_db):
    def make(domain_id: str, role: str = "presenter", user: str = "user") -> str:
        return services.token_create(domain_id=domain_id, user=user, role=role)

    return database_sync_to_async(make)


@pytest.fixture
async def signaling_url(settings, transactional_db):
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    settings.ICE_SERVERS_JSON = "[]"
    settings.MEDIA_NODE_EMBEDDED = True
    from owt.asgi import application
    from streamengine.asgi_ws import serve_asgi
    from streamengine.media.ice import use_host_addresses
    from streamengine.node import stop_embedded_node

    use_host_addresses(["127.0.0.1"])  # the test's aiortc clients share the process
    # Each test has its own event loop; a Redis channel layer made in an earlier loop holds
    # locks and connections bound to it, so every test gets a fresh layer object.
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    async with serve_asgi(application) as base:
        yield f"{base}/ws/signaling/"
        await stop_embedded_node()
    layer = get_channel_layer()
    await layer.flush()
    if hasattr(layer, "close_pools"):
        await layer.close_pools()
    channel_layers.backends.pop(DEFAULT_CHANNEL_LAYER, None)
    use_host_addresses([])


@dataclass
class Pair:
    """Two participants in one fresh room: their clients and the login results of their joins."""

    domain: str
    alice: ConferenceClient
    bob: ConferenceClient
    alice_info: dict
    bob_info: dict


@dataclass
class PublishedPair(Pair):
    """A pair where alice publishes a video stream that bob receives encoded."""

    publication: Session
    subscription: Session


@pytest.fixture
def bob_role() -> str:
    """Bob's role in ``pair``; a test changes it with ``@pytest.mark.parametrize("bob_role", [...])``."""
    return "presenter"


@pytest.fixture
async def pair(signaling_url, room, token, bob_role):
    """A fresh default room that alice (presenter) and bob (``bob_role``) have joined.

    Both clients are closed at teardown.
    """
    domain = await room()
    async with ConferenceClient(signaling_url) as alice, ConferenceClient(signaling_url) as bob:
        alice_info = await alice.join(await token(domain, user="alice"))
        bob_info = await bob.join(await token(domain, user="bob", role=bob_role))
        yield Pair(domain=domain, alice=alice, bob=bob, alice_info=alice_info, bob_info=bob_info)


@pytest.fixture
async def published_pair(pair):
    """``pair`` once alice publishes a synthetic video (VP8, the client's default) and bob has its first frame.

    Bob's subscription is video only and encoded: its ``frames`` queue holds the forwarded
    frames, the first of which this fixture has taken. The clients close with ``pair``.
    """
    publication = await pair.alice.publish([SyntheticVideoTrack()])
    subscription = await pair.bob.subscribe(publication.id, audio=False, encoded=True)
    await asyncio.wait_for(subscription.frames.get(), 10)
    return PublishedPair(**vars(pair), publication=publication, subscription=subscription)
