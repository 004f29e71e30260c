"""Media nodes: registration, placement by load, heartbeats, dead-node drop, Redis mode."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.db import connection
from django.utils import timezone

from streamengine import services
from streamengine.client import ConferenceClient, SignalingError, SyntheticVideoTrack
from streamengine.models import Domain, Node, Participant
from streamengine.node import MediaNode
from tests.streamengine.helpers import eventually

REDIS_URL = "redis://127.0.0.1:6379/6"


def register(node_id: str, load: float, age: float = 0.0) -> Node:
    node = services.node_register(
        node_id=node_id, agent="host", channel_name=f"ch.{node_id}", stream_addr={}, embedded=False
    )
    Node.objects.filter(id=node_id).update(load=load, heartbeat_at=timezone.now() - timedelta(seconds=age))
    return node


def test_rooms_are_placed_on_the_least_loaded_live_node(db):
    services.domain_configure(domain_id="r1", owner="svc", config={})
    services.domain_configure(domain_id="r2", owner="svc", config={})
    register("busy", 0.9)
    register("idle", 0.1)
    register("dead", 0.0, age=60)
    assert services.domain_place(domain_id="r1", stale_after=15).id == "idle"
    # A room stays where it is while its node lives, whatever the loads do.
    Node.objects.filter(id="idle").update(load=1.0)
    assert services.domain_place(domain_id="r1", stale_after=15).id == "idle"
    assert services.domain_place(domain_id="r2", stale_after=15).id == "busy"
    # Restricted to one node (an embedded node on the in-memory layer): the room moves there.
    assert services.domain_place(domain_id="r2", stale_after=15, only="idle").id == "idle"
    # Its node dies: the room moves.
    Node.objects.filter(id="idle").update(heartbeat_at=timezone.now() - timedelta(seconds=60))
    assert services.domain_place(domain_id="r1", stale_after=15).id == "busy"


def test_no_live_node_is_an_engine_error(db):
    services.domain_configure(domain_id="r1", owner="svc", config={})
    register("dead", 0.0, age=60)
    with pytest.raises(services.NoMediaNode):
        services.domain_place(domain_id="r1", stale_after=15)


def test_reaping_reports_participants_once(db):
    domain = services.domain_configure(domain_id="r1", owner="svc", config={})
    register("dead", 0.0, age=60)
    register("live", 0.0)
    Domain.objects.filter(id="r1").update(node_id="dead")
    Participant.objects.create(id="p1", domain=domain, user="u", role="presenter")
    assert services.node_reap_dead(stale_after=15) == {"dead": ["p1"]}
    assert services.node_reap_dead(stale_after=15) == {}
    assert list(Node.objects.values_list("id", flat=True)) == ["live"]
    assert Domain.objects.get(id="r1").node_id is None


def test_heartbeat_updates_load_and_reports_reaped_nodes(db):
    register("n1", 0.0, age=5)
    assert services.node_heartbeat(node_id="n1", load=0.25)
    node = Node.objects.get(id="n1")
    assert node.load == 0.25 and (timezone.now() - node.heartbeat_at).total_seconds() < 5
    assert not services.node_heartbeat(node_id="gone", load=0.1)


async def test_login_without_a_node_is_refused(signaling_url, room, token, settings):
    settings.MEDIA_NODE_EMBEDDED = False
    async with ConferenceClient(signaling_url) as client:
        with pytest.raises(SignalingError, match="No media node available"):
            await client.join(await token(await room()))


@pytest.mark.media
async def test_dead_node_drops_its_participants(signaling_url, room, token, settings):
    settings.MEDIA_NODE_EMBEDDED = False
    settings.MEDIA_NODE_HEARTBEAT_SECONDS = 0.2
    node = MediaNode(embedded=False)
    await node.start()
    domain = await room()
    try:
        async with ConferenceClient(signaling_url) as alice:
            await alice.join(await token(domain))
            assert await database_sync_to_async(lambda: Domain.objects.get(id=domain).node_id)() == node.id
            await alice.publish([SyntheticVideoTrack()])
            for task in node.tasks:  # the node hangs: no more heartbeats, no more commands
                task.cancel()
            assert await alice.wait_for("drop", timeout=10) is None
            await eventually(lambda: not Participant.objects.filter(domain_id=domain).exists())
            assert not await database_sync_to_async(Node.objects.filter(id=node.id).exists)()
    finally:
        await node.sfu.close()


def redis_available() -> bool:
    import redis

    try:
        return redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        return False


@pytest.fixture
def redis_layer(settings):
    if not redis_available():
        pytest.skip("Redis is not reachable at " + REDIS_URL)
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
    settings.MEDIA_NODE_EMBEDDED = False
    yield


async def publish_and_receive(signaling_url: str, domain: str, token) -> None:
    async with ConferenceClient(signaling_url) as alice, ConferenceClient(signaling_url) as bob:
        await alice.join(await token(domain))
        await bob.join(await token(domain))
        publication = await alice.publish([SyntheticVideoTrack()])
        subscription = await bob.subscribe(publication.id, audio=False)
        frame = await asyncio.wait_for(subscription.tracks["video"].recv(), 10)
        assert frame.width == 640


@pytest.mark.media
async def test_separate_node_over_redis_channel_layer(signaling_url, room, token, redis_layer):
    node = MediaNode(embedded=False)
    await node.start()
    try:
        await publish_and_receive(signaling_url, await room(), token)
    finally:
        await node.stop()


def node_process_env(settings) -> dict:
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CHANNEL_LAYER": "redis",
        "REDIS_URL": REDIS_URL,
        "CHANNEL_REDIS_URL": REDIS_URL,
        "MEDIA_HOST_ADDRESSES": "127.0.0.1",
        "ICE_SERVERS": "[]",
        "MEDIA_NODE_HEARTBEAT_SECONDS": str(settings.MEDIA_NODE_HEARTBEAT_SECONDS),
    }


async def start_node_process(settings) -> asyncio.subprocess.Process:
    """``manage.py medianode`` in its own process (needs the test database to be PostgreSQL)."""
    if connection.vendor != "postgresql":
        pytest.skip("the node process needs the test database: run with DATABASE_URL (PostgreSQL)")
    root = Path(__file__).resolve().parents[2]
    process = await asyncio.create_subprocess_exec(
        sys.executable, "manage.py", "medianode", cwd=root, env=node_process_env(settings), stdout=subprocess.PIPE
    )
    line = await asyncio.wait_for(process.stdout.readline(), 30)
    assert line.startswith(b"media node ")
    return process


@pytest.mark.media
async def test_medianode_command_process(signaling_url, room, token, redis_layer, settings):
    """``manage.py medianode`` in its own process, portal in this one, Redis in between."""
    process = await start_node_process(settings)
    try:
        await publish_and_receive(signaling_url, await room(), token)
    finally:
        process.terminate()
        assert await asyncio.wait_for(process.wait(), 10) == 0
    assert not await database_sync_to_async(Node.objects.exists)()


@pytest.mark.media
async def test_killed_node_process_drops_its_participants(signaling_url, room, token, redis_layer, settings):
    settings.MEDIA_NODE_HEARTBEAT_SECONDS = 0.3
    process = await start_node_process(settings)
    try:
        domain = await room()
        async with ConferenceClient(signaling_url) as alice:
            await alice.join(await token(domain))
            await alice.publish([SyntheticVideoTrack()])
            process.kill()  # no goodbye: the portal's watchdog notices the silence
            assert await alice.wait_for("drop", timeout=15) is None
        await eventually(lambda: not Participant.objects.filter(domain_id=domain).exists())
        assert not await database_sync_to_async(Node.objects.exists)()
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def test_no_embedded_node_starts_after_the_portal_stopped(transactional_db, settings):
    """A browser reconnecting while the portal stops must not leave a node row behind, which
    the next start would report as a node that missed its heartbeats."""
    from streamengine.node import ensure_embedded_node, stop_embedded_node

    settings.MEDIA_NODE_EMBEDDED = True
    settings.MEDIA_HOST_ADDRESSES = ["127.0.0.1"]
    assert await ensure_embedded_node() is not None
    await stop_embedded_node(final=True)
    assert await ensure_embedded_node() is None
    assert not await Node.objects.acount()
