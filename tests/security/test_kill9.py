"""kill -9 of the portal under mixed write load: every acknowledged write is stored.

A real daphne portal on the embedded defaults (its own SQLite file), clients writing through
three APIs at once (OWT rooms and tokens with MAuth, peermetrics ``initialize``), then
SIGKILL while requests are in flight. Afterwards the database file is read directly: each
write that got a 2xx must be there (nothing acknowledged is lost); requests cut off by the
kill may or may not be.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import signal
import sqlite3

import httpx
import pytest

from owt.localserver import manage, portal_env, running_portal
from owt.mauth import build_header
from streamengine.tokens import TokenString

pytestmark = pytest.mark.embedded

WRITERS_PER_KIND = 4
LOAD_SECONDS = 2.0  # before the kill; every writer also stops after MAX_WRITES
MAX_WRITES = 400


def setup_tenants(env: dict) -> dict:
    script = (
        "import json; from conference.services import service_bootstrap_super;"
        "from metrics.models import App, Organization;"
        "service, key = service_bootstrap_super();"
        "app = App.objects.create(organization=Organization.objects.create(name='o'), name='a');"
        "print(json.dumps({'service': service.id, 'key': key, 'api_key': app.api_key}))"
    )
    return json.loads(manage(env, "shell", "-c", script).strip().splitlines()[-1])


async def test_kill9_under_mixed_write_load_loses_no_acknowledged_write(tmp_path):
    # The load is one client address and one service: rate limits would refuse most of it.
    env = portal_env(tmp_path, THROTTLE_OWT_SERVICE="", THROTTLE_METRICS_INITIALIZE="")
    manage(env, "migrate", "--noinput", "-v0")
    tenants = setup_tenants(env)
    acknowledged: dict[str, list[str]] = {"rooms": [], "tokens": [], "conferences": []}
    sequence = itertools.count()

    def mauth() -> dict:
        return {"Authorization": build_header(service_id=tenants["service"], key=tenants["key"])}

    with running_portal(env, migrate=False) as portal:
        async with httpx.AsyncClient(base_url=portal.url, timeout=10) as http:
            first = await http.post("/v1/rooms", json={"name": "seed"}, headers=mauth())
            room_id = first.json()["_id"]

            async def create_rooms() -> None:
                for _ in range(MAX_WRITES):
                    response = await http.post("/v1/rooms", json={"name": f"r{next(sequence)}"}, headers=mauth())
                    if response.status_code == 200:
                        acknowledged["rooms"].append(response.json()["_id"])

            async def create_tokens() -> None:
                for _ in range(MAX_WRITES):
                    body = {
                        "user": f"u{next(sequence)}",
                        "role": "presenter",
                        "preference": {"isp": "i", "region": "r"},
                    }
                    response = await http.post(f"/v1/rooms/{room_id}/tokens", json=body, headers=mauth())
                    if response.status_code == 200:
                        acknowledged["tokens"].append(TokenString.decode(response.text).token_id)

            async def initialize_calls() -> None:
                for _ in range(MAX_WRITES):
                    conference = f"c{next(sequence)}"
                    body = {"apiKey": tenants["api_key"], "conferenceId": conference, "userId": "u", "userName": "u"}
                    response = await http.post(
                        "/metrics/v1/initialize", content=json.dumps(body), headers={"Content-Type": "text/plain"}
                    )
                    if response.status_code == 200:
                        acknowledged["conferences"].append(conference)

            writers = [
                asyncio.create_task(write())
                for write in (create_rooms, create_tokens, initialize_calls)
                for _ in range(WRITERS_PER_KIND)
            ]
            await asyncio.sleep(LOAD_SECONDS)
            portal.process.send_signal(signal.SIGKILL)
            results = await asyncio.gather(*writers, return_exceptions=True)
            assert all(isinstance(r, (httpx.TransportError, type(None))) for r in results), results

    assert all(acknowledged.values()), {kind: len(ids) for kind, ids in acknowledged.items()}
    with sqlite3.connect(tmp_path / "owt.sqlite3") as db:

        def missing(table: str, column: str, ids: list[str]) -> set[str]:
            stored = {row[0] for row in db.execute(f"select {column} from {table}")}  # noqa: S608
            return set(ids) - stored

        assert missing("conference_room", "id", acknowledged["rooms"]) == set()
        assert missing("streamengine_token", "id", acknowledged["tokens"]) == set()
        assert missing("metrics_conference", "conference_id", acknowledged["conferences"]) == set()
