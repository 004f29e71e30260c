"""End to end in headless Chromium: a real loopback WebRTC call reported to the API.

The page (``browser_call.html``) is served from its own origin, so every SDK request is
cross-origin (CORS, including the preflighted PUTs). The API runs in a daphne subprocess
on a fresh SQLite file; the test reads what landed straight from that file. Then the
dashboard page is opened with a logged-in user and must draw the summary's charts.

Run inside a loopback-only namespace::

    unshare -n sh -c 'ip link set lo up && python -m pytest -m browser tests/metrics'
"""

from __future__ import annotations

import functools
import json
import sqlite3
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from owt.localserver import free_port, manage, portal_env, running_portal

pytestmark = pytest.mark.browser

HERE = Path(__file__).resolve().parent
SAMPLES = 4

SETUP = """
from django.contrib.auth import get_user_model
from metrics.models import App, Organization
user = get_user_model().objects.create_user("viewer", password="pw")
organization = Organization.objects.create(name="E2E")
organization.members.add(user)
print(App.objects.create(organization=organization, name="E2E", interval=1000).api_key)
"""


@pytest.fixture
def server(tmp_path):
    """The project under daphne with its own SQLite file; summaries built in-process (eager Celery)."""
    env = portal_env(tmp_path, CELERY_TASK_ALWAYS_EAGER="1")
    manage(env, "migrate", "-v0")
    api_key = manage(env, "shell", "-c", SETUP).split()[-1]  # the shell may print an auto-import banner first
    with running_portal(env, migrate=False, log_path=tmp_path / "daphne.log") as portal:
        yield {"base": portal.url, "api_key": api_key, "db": tmp_path / "owt.sqlite3"}


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def page_origin():
    """A second origin serving the test page (static files of this folder)."""
    handler = functools.partial(QuietHandler, directory=str(HERE))
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def rows(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(db) as connection:
        return connection.execute(sql, args).fetchall()


def test_browser_call_lands_in_the_api(server, page_origin, chromium):
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(
            f"{page_origin}/browser_call.html?api={server['base']}/metrics/v1&key={server['api_key']}&samples={SAMPLES}"
        )
        result = page.evaluate("window.result")
        assert result["ok"], result.get("error")
        ids = result["value"]
        assert ids["interval"] == 1000  # the app's interval, as an integer

        db = server["db"]
        ((conference_id, ongoing, duration),) = rows(db, "SELECT id, ongoing, duration FROM metrics_conference")
        assert not ongoing and duration > 0
        assert rows(db, "SELECT count(*) FROM metrics_session WHERE end_time IS NOT NULL") == [(2,)]
        connections = rows(
            db, "SELECT id, state, type, connection_info, end_time FROM metrics_connection ORDER BY created_at"
        )
        assert len(connections) == 2
        for connection_id, state, kind, info, end_time in connections:
            info = json.loads(info)
            assert state == "connected" and info["established"] is True and end_time is not None
            assert kind == "h"  # loopback host candidates, from the stats' selected pair
            assert info["negotiations"][0]["status"] in ("connected", "stable")
            stats = rows(
                db, "SELECT data FROM metrics_genericevent WHERE category='S' AND connection_id=?", connection_id
            )
            assert len(stats) == SAMPLES
            last = json.loads(stats[-1][0])
            assert last["connection"]["state"] == "succeeded"
            assert (
                last["audio"]["inbound"][0]["packetsReceived"] > 0 and last["video"]["inbound"][0]["framesDecoded"] > 0
            )
            assert last["audio"]["outbound"][0]["track"]["type"] == "media-source"
            types = {
                t
                for (t,) in rows(
                    db,
                    "SELECT type FROM metrics_genericevent WHERE category='C' AND connection_id=?",
                    connection_id,
                )
            }
            assert {
                "addConnection",
                "peerDetails",
                "onicecandidate",
                "onsignalingstatechange",
                "onconnectionstatechange",
            } <= types
        assert sorted(rows(db, "SELECT kind, direction FROM metrics_track")) == sorted(
            [("a", "o"), ("v", "o")] * 2 + [("a", "i"), ("v", "i")] * 2
        )
        muted = rows(db, "SELECT track_info FROM metrics_track WHERE direction='o' AND kind='a'")
        assert sorted(json.loads(info).get("muted") for (info,) in muted) == [False, True]
        issues = {code for (code,) in rows(db, "SELECT code FROM metrics_issue")}
        assert not issues & {
            "connection_failed",
            "ice_failed",
            "no_connection",
            "no_media_access",
            "getusermedia_error",
        }
        ((summary,),) = rows(db, "SELECT data FROM metrics_summary WHERE conference_id=?", conference_id)
        summary = json.loads(summary)
        assert len(summary["connections"]) == 2
        for connection in summary["connections"]:
            assert len(connection["samples"]) == SAMPLES
            assert all(sample["bitrate_in"] > 0 for sample in connection["samples"][1:])
            assert connection["averages"]["audio_mos"] is not None

        # The dashboard draws it for a logged-in member.
        page.goto(f"{server['base']}/metrics/v1/dashboard")
        page.fill("input[name=username]", "viewer")
        page.fill("input[name=password]", "pw")
        page.click("button[type=submit]")
        page.click("tr.conference")
        page.wait_for_selector("#charts g[data-series] polyline", timeout=20000)
        assert page.locator("#participants li").count() == 2
        assert page.locator("#charts svg").count() == 7
    finally:
        context.close()
