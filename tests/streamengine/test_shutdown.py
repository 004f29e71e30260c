"""A portal stops on SIGTERM while participants come and go, and leaves no participant behind."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3

import pytest
from websockets.asyncio.client import ClientConnection, connect

from owt.localserver import manage, portal_env, running_portal

pytestmark = pytest.mark.embedded

ROOM = "a" * 24


def make_tokens(env: dict, count: int) -> list[str]:
    script = (
        "import json; from streamengine import services;"
        f"services.domain_configure(domain_id={ROOM!r}, owner='svc', config={{'roles': [{{'role': 'presenter',"
        " 'publish': {'audio': True, 'video': True}, 'subscribe': {'audio': True, 'video': True}}]});"
        f"print(json.dumps([services.token_create(domain_id={ROOM!r}, user=f'u{{i}}', role='presenter')"
        f" for i in range({count})]))"
    )
    return json.loads(manage(env, "shell", "-c", script).strip().splitlines()[-1])


async def login(url: str, token: str) -> ClientConnection:
    socket = await connect(url)
    data = {"token": token, "userAgent": {"sdk": {"type": "Python", "version": "test"}}, "protocol": "1.2"}
    await socket.send(json.dumps({"type": "request", "id": 1, "event": "login", "data": data}))
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), 10))
        if frame.get("type") == "ack":
            assert frame["status"] == "ok", frame
            return socket


async def test_sigterm_with_participants_leaving_exits_cleanly(tmp_path):
    """Three participants; one leaves (and is parked for reconnection), SIGTERM, the others
    close their sockets while the portal stops: it exits at once, no participant is left."""
    env = portal_env(tmp_path, PYTHONFAULTHANDLER="1")
    manage(env, "migrate", "--noinput", "-v0")
    tokens = make_tokens(env, 3)
    log_path = tmp_path / "daphne.log"
    with running_portal(env, migrate=False, log_path=log_path) as portal:
        url = f"ws://127.0.0.1:{portal.port}/ws/signaling/"
        sockets = [await login(url, token) for token in tokens]
        await sockets[0].close()
        await asyncio.sleep(0.3)
        portal.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.1)
        for socket in sockets[1:]:
            await socket.close()
        for _ in range(50):
            if portal.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        returncode = portal.process.poll()
    assert returncode is not None, "the portal is still running 5 s after SIGTERM"
    assert returncode in (0, -signal.SIGTERM), (returncode, log_path.read_text()[-3000:])
    with sqlite3.connect(tmp_path / "owt.sqlite3") as db:
        assert db.execute("select count(*) from streamengine_participant").fetchone()[0] == 0
