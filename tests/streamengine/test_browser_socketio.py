"""Chromium, socket.io-client from the npm registry and one RTCPeerConnection per conference.

Two pages follow the OWT JS SDK's conference sequence (``sdkflow_page/sdkflow.js``, after
owt-client-javascript's ``channel.js``) with socket.io-client 3.1.2, the version the OWT
5.1 sample loads, installed by ``bin/setup --test``. The pages are served from another
origin than the portal (CORS, as the sample app is). Alice publishes her camera and a
canvas on one peer connection; Bob subscribes to both on his; every subscription's m-line
must decode video (``framesDecoded`` grows per mid). Then unpublish, a third subscription
on the same transport, ``subscription-control update``, text and logout.

Run it in a loopback-only network namespace (bin/test does): see test_browser_e2e.py.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from owt.localserver import ROOT, bootstrapped_portal
from tests.streamengine.helpers import IN_LOOPBACK_NAMESPACE, wait_until

PAGE = Path(__file__).parent / "sdkflow_page"
SOCKET_IO_CLIENT = ROOT / "var/js/node_modules/socket.io-client/dist/socket.io.js"

pytestmark = [
    pytest.mark.browser,
    IN_LOOPBACK_NAMESPACE,
]


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    with bootstrapped_portal(tmp_path_factory.mktemp("sio-browser")) as running:
        yield {"url": running.portal.url, "api": running.api}


@pytest.fixture(scope="module")
def page_origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The sample-like page on its own origin (another port than the portal)."""
    assert SOCKET_IO_CLIENT.exists(), "socket.io-client is missing: run bin/setup --test"
    root = tmp_path_factory.mktemp("sdkflow-page")
    for path in [*PAGE.iterdir(), SOCKET_IO_CLIENT]:
        shutil.copy(path, root / path.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def decoding(page, mid: str, more_than: int = 0, width: int | None = None) -> bool:
    stats = page.evaluate("() => window.flow.framesDecoded()").get(mid)
    return bool(stats) and stats["frames"] > more_than and (width is None or stats["width"] == width)


def test_one_peer_connection_carries_two_publications_and_three_subscriptions(portal, page_origin, chromium):
    api = portal["api"]
    room = api.create_room("sio-browser")["id"]
    alice_token = api.create_token(room, user="alice", role="presenter")
    bob_token = api.create_token(room, user="bob", role="presenter")
    alice_context, bob_context = chromium.new_context(), chromium.new_context()
    console: list[str] = []
    try:
        alice, bob = alice_context.new_page(), bob_context.new_page()
        for page in (alice, bob):
            page.on("console", lambda message: console.append(message.text))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
            page.goto(f"{page_origin}/index.html")

        alice_id = alice.evaluate("([url, token]) => window.flow.join(url, token)", [portal["url"], alice_token])
        bob_id = bob.evaluate("([url, token]) => window.flow.join(url, token)", [portal["url"], bob_token])
        camera = alice.evaluate("() => window.flow.publishCamera()")
        canvas = alice.evaluate("() => window.flow.publishCanvas()")
        assert alice.evaluate("() => window.flow.transportId") == camera["id"]
        assert alice.evaluate("() => window.flow.pc.getTransceivers().length") == 3

        wait_until(lambda: bob.evaluate(f"() => window.flow.streams.has('{canvas['id']}')"), 10, "stream add")
        first = bob.evaluate(f"() => window.flow.subscribe('{camera['id']}', ['audio', 'video'])")
        second = bob.evaluate(f"() => window.flow.subscribe('{canvas['id']}', ['video'])")
        assert bob.evaluate("() => window.flow.transportId") == first["id"]
        first_video, second_video = first["mids"][1], second["mids"][0]
        wait_until(lambda: decoding(bob, first_video, 30), 30, f"camera frames; console: {console}")
        wait_until(lambda: decoding(bob, second_video, 30), 30, f"canvas frames; console: {console}")

        # The REST API lists what was made over socket.io as for the JSON framing.
        assert sorted(p["user"] for p in api.request("GET", f"/v1/rooms/{room}/participants")) == ["alice", "bob"]
        assert {s["id"] for s in api.request("GET", f"/v1.1/rooms/{room}/streams")} == {camera["id"], canvas["id"]}

        # Unpublish the canvas: its stream goes, the camera keeps decoding, and a third
        # subscription on the same transport decodes too.
        alice.evaluate(f"() => window.flow.unpublish('{canvas['id']}')")
        wait_until(lambda: not bob.evaluate(f"() => window.flow.streams.has('{canvas['id']}')"), 10, "stream remove")
        third = bob.evaluate(f"() => window.flow.subscribe('{camera['id']}', ['video'])")
        third_video = third["mids"][0]
        wait_until(lambda: decoding(bob, third_video, 30), 30, f"third subscription frames; console: {console}")
        before = bob.evaluate("() => window.flow.framesDecoded()")[first_video]["frames"]
        wait_until(lambda: decoding(bob, first_video, before + 30), 30, "camera frames after renegotiations")

        # subscription-control update to a smaller resolution (the transcoding path).
        bob.evaluate(f"() => window.flow.update('{third['id']}', {{resolution: {{width: 320, height: 240}}}})")
        wait_until(lambda: decoding(bob, third_video, width=320), 30, f"320 px frames; console: {console}")

        alice.evaluate(f"() => window.flow.text('{bob_id}', 'hello bob')")
        wait_until(lambda: bob.evaluate("() => window.flow.texts.length") == 1, 10, "text")
        assert bob.evaluate("() => window.flow.texts[0]") == {"from": alice_id, "to": "me", "message": "hello bob"}

        (ROOT / "test-artifacts").mkdir(exist_ok=True)
        bob.screenshot(path=str(ROOT / "test-artifacts/socketio-subscriber.png"), full_page=True)
        assert alice.evaluate("() => window.flow.errors") == [] and bob.evaluate("() => window.flow.errors") == []
        alice.evaluate("() => window.flow.leave()")
        wait_until(
            lambda: [p["user"] for p in api.request("GET", f"/v1/rooms/{room}/participants")] == ["bob"], 10, "leave"
        )
    finally:
        alice_context.close()
        bob_context.close()
