"""``runplatform --workers 2`` on PostgreSQL + Redis: both portal processes answer REST, and two
participants whose signaling sockets landed on different processes meet in one room.

The processes share one listening socket, so the kernel picks which one accepts a connection;
the test opens connections until each process holds one, and tells them apart by which
process owns the server end of the connection (``/proc``). Skipped unless the tests run on
PostgreSQL with ``REDIS_URL`` set (the CI's second run), as the portals need both.
"""

from __future__ import annotations

import http.client
import os
from pathlib import Path

import pytest
import redis
from django.db import connection

from owt.client import ManagementClient
from owt.localserver import PortalWorkers, running_portal_workers
from owt.mauth import build_header
from streamengine.client import ConferenceClient

ATTEMPTS = 60  # connections tried until each process holds one (the kernel spreads them at random)


def distributed_env(settings, var: Path) -> dict:
    if connection.vendor != "postgresql":
        pytest.skip("the portal processes share the test database: run with DATABASE_URL (PostgreSQL)")
    redis_url = os.environ.get("REDIS_URL", "")
    try:
        reachable = bool(redis_url) and redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()
    except redis.RedisError:
        reachable = False
    if not reachable:
        pytest.skip("the portal processes need Redis: set REDIS_URL to a reachable server")
    db = settings.DATABASES["default"]
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "owt.settings",
        "OWT_VAR_DIR": str(var),
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CHANNEL_LAYER": "redis",
        "SECRET_KEY": "portal-workers-test-" + "k" * 40,
        "MEDIA_HOST_ADDRESSES": "127.0.0.1",
        "ICE_SERVERS": "[]",
        "MIXER_AUTOSTART": "false",
        "THROTTLE_OWT_SERVICE": "",
        "LOG_LEVEL": "WARNING",
    }


def serving_process(client_port: int, pids: list[int]) -> int | None:
    """Which of ``pids`` holds the server end of the loopback TCP connection from ``client_port``."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[2].rsplit(":", 1)[1], 16) == client_port and fields[9] != "0":
                inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) in inodes:
                    return pid
            except OSError:  # closed meanwhile
                continue
    return None


def rest_on_each_process(portal: PortalWorkers) -> set[int]:
    """``GET /v1/rooms`` on new connections until every portal process has answered one."""
    served: set[int] = set()
    for _ in range(ATTEMPTS):
        http_connection = http.client.HTTPConnection("127.0.0.1", portal.port, timeout=10)
        try:
            authorization = build_header(service_id=portal.service_id, key=portal.key)
            http_connection.request("GET", "/v1/rooms", headers={"Authorization": authorization})
            response = http_connection.getresponse()
            assert response.status == 200, response.read()
            response.read()
            # Kept alive after the answer: the process that answered still holds the connection.
            served.add(serving_process(http_connection.sock.getsockname()[1], portal.pids))
        finally:
            http_connection.close()
        if served >= set(portal.pids):
            break
    return served


async def client_on_each_process(portal: PortalWorkers) -> dict[int, ConferenceClient]:
    """A connected signaling client on each portal process (the others are closed)."""
    clients: dict[int, ConferenceClient] = {}
    signaling_url = portal.url.replace("http://", "ws://") + "/ws/signaling/"
    for _ in range(ATTEMPTS):
        client = await ConferenceClient(signaling_url).__aenter__()
        pid = serving_process(client.ws.local_address[1], portal.pids)
        if pid is None or pid in clients:
            await client.close()
            continue
        clients[pid] = client
        if len(clients) == len(portal.pids):
            break
    return clients


@pytest.mark.django_db(transaction=True)
async def test_two_portal_processes_share_rest_and_signaling(settings, tmp_path):
    env = distributed_env(settings, tmp_path)
    with running_portal_workers(env, 2, log_path=tmp_path / "runplatform.log") as portal:
        assert len(portal.pids) == 2
        assert rest_on_each_process(portal) == set(portal.pids)

        with ManagementClient(portal.url, portal.service_id, portal.key) as api:
            room = api.create_room("across processes")["_id"]
            tokens = [api.create_token(room, user=user, role="presenter") for user in ("alice", "bob")]
        clients = await client_on_each_process(portal)
        assert set(clients) == set(portal.pids)
        alice, bob = (clients[pid] for pid in portal.pids)
        try:
            await alice.join(tokens[0])
            joined = await bob.join(tokens[1])
            # Bob's join reaches Alice's process through the Redis channel layer.
            seen = await alice.wait_for("participant", lambda data: data["action"] == "join", timeout=15)
            assert seen["data"]["id"] == joined["id"]
            with ManagementClient(portal.url, portal.service_id, portal.key) as api:
                participants = api.request("GET", f"/v1/rooms/{room}/participants")
            assert {participant["user"] for participant in participants} == {"alice", "bob"}
        finally:
            for client in clients.values():
                await client.close()
