"""End to end on a real socket: migrate, `owt_bootstrap`, daphne, then the client as a user would."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from owt.client import ManagementClient, OwtApiError

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    env = {**os.environ, "OWT_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "owt.settings"}
    env.pop("DATABASE_URL", None)  # its own SQLite file, not the test database
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)
    printed = subprocess.run([*manage, "owt_bootstrap"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    lines = dict(line.split(": ", 1) for line in printed.stdout.splitlines())
    again = subprocess.run([*manage, "owt_bootstrap"], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    assert again.stdout == printed.stdout  # idempotent
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "owt.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(150):
            try:
                httpx.get(f"{base}/health/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, lines["OWT super service id"], lines["OWT super service key"]
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_round_trip_over_daphne(server):
    base, super_id, super_key = server
    with ManagementClient(base, super_id, super_key) as admin:
        created = admin.create_service("app", "app-key")
        with ManagementClient(base, created["_id"], "app-key", version="v1.1") as api:
            room = api.create_room("live", {"views": [{"video": {"maxInput": 4}}]})
            assert api.list_rooms(per_page=1)[0]["_id"] == room["_id"]
            assert api.patch_room(room["_id"], {"participantLimit": 3})["participantLimit"] == 3
            token = api.create_token(room["_id"], "alice", "presenter")
            assert isinstance(token, str) and len(token) > 100
            with pytest.raises(OwtApiError) as info:
                admin.get_room(room["_id"])
            assert info.value.code == 1003
            assert api.delete_room(room["_id"]) == "Room deleted"
        assert admin.delete_service(created["_id"]) == "Service deleted"
