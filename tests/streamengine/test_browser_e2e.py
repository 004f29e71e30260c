"""End to end in a real browser: two Chromium pages join one room through the sample page.

The portal runs as a real daphne process on a free loopback port with its own SQLite file
(the embedded defaults: in-memory channel layer, media node inside the portal). The room
and tokens come from the management REST API (MAuth, super service from
``manage.py owt_bootstrap``). One page publishes the fake camera/microphone; the other
joins without publishing, subscribes, and must decode video (``framesDecoded`` grows);
the REST API must then list both participants and the stream. A screenshot of the
subscriber page is written to ``test-artifacts/``.

Run it in a loopback-only network namespace (Chromium otherwise pairs its other
interfaces with the engine's loopback candidates; bin/test does this):

    unshare -n sh -c 'ip link set lo up && python -m pytest -m browser tests/streamengine/test_browser_e2e.py'
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from owt.client import ManagementClient
from owt.localserver import ROOT, free_port, manage, portal_env, running_portal
from tests.streamengine.helpers import IN_LOOPBACK_NAMESPACE, wait_until

pytestmark = [
    pytest.mark.browser,
    IN_LOOPBACK_NAMESPACE,
]

ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def portal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A daphne portal on a free port, shared by this module's tests: ``{"url", "service_id", "key"}``."""
    tmp_path = tmp_path_factory.mktemp("portal")
    port = free_port()
    env = portal_env(
        tmp_path,
        OWT_PORTAL_HOST=f"127.0.0.1:{port}",
        MEDIA_HOST_ADDRESSES="127.0.0.1",
        ICE_SERVERS="[]",
        PYTHONUNBUFFERED="1",
    )
    manage(env, "migrate", "--noinput")
    bootstrap = manage(env, "owt_bootstrap")
    service_id = re.search(r"service id: (\S+)", bootstrap)[1]
    key = re.search(r"service key: (\S+)", bootstrap)[1]
    log = tmp_path / "daphne.log"
    with running_portal(env, migrate=False, port=port, log_path=log) as running:
        yield {"url": running.url, "service_id": service_id, "key": key, "log": log}


def frames_decoded(page) -> int:
    return sum(row["framesDecoded"] for row in page.evaluate("() => window.owtDemo.videoStats()"))


@pytest.fixture
def api(portal) -> Iterator[ManagementClient]:
    with ManagementClient(portal["url"], portal["service_id"], portal["key"]) as client:
        yield client


def test_two_browsers_publish_and_subscribe(portal, chromium, api):
    room_id = api.create_room("browser-e2e")["id"]
    publisher_token = api.create_token(room_id, user="alice", role="presenter")
    viewer_token = api.create_token(room_id, user="bob", role="presenter")

    publisher_context = chromium.new_context()
    viewer_context = chromium.new_context(viewport={"width": 1000, "height": 900})
    try:
        publisher = publisher_context.new_page()
        viewer = viewer_context.new_page()
        console: list[str] = []
        for page in (publisher, viewer):
            page.on("console", lambda message: console.append(message.text))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))

        # The publisher joins at once (autojoin) with camera and microphone.
        publisher.goto(f"{portal['url']}/demo/?{urlencode({'token': publisher_token, 'autojoin': '1'})}")
        publisher.wait_for_function("() => window.owtDemo && window.owtDemo.publication", timeout=30000)

        # The viewer fills the form by hand: no publishing, just join.
        viewer.goto(f"{portal['url']}/demo/")
        viewer.fill("#token", viewer_token)
        viewer.uncheck("#publish-audio")
        viewer.uncheck("#publish-video")
        viewer.click("#join")
        viewer.wait_for_function("() => window.owtDemo.subscriptions.size === 1", timeout=30000)

        wait_until(lambda: frames_decoded(viewer) > 0, 30, f"first decoded frame; page log: {console}")
        first = frames_decoded(viewer)
        wait_until(lambda: frames_decoded(viewer) >= first + 30, 30, "frames to keep decoding")
        stats = viewer.evaluate("() => window.owtDemo.videoStats()")
        assert stats[0]["frameWidth"] > 0 and stats[0]["frameHeight"] > 0
        assert viewer.evaluate("() => window.owtDemo.errors") == []
        ARTIFACTS.mkdir(exist_ok=True)
        viewer.screenshot(path=str(ARTIFACTS / "subscriber.png"), full_page=True)
        # The participant list on the viewer page shows both people.
        viewer.wait_for_function("() => document.querySelectorAll('#participants li').length === 2")

        participants = api.request("GET", f"/v1/rooms/{room_id}/participants")
        assert sorted(p["user"] for p in participants) == ["alice", "bob"]
        publisher_id = publisher.evaluate("() => window.owtDemo.client.info.id")
        streams = api.request("GET", f"/v1.1/rooms/{room_id}/streams")
        assert [s["id"] for s in streams] == [publisher.evaluate("() => window.owtDemo.publication.id")]
        assert streams[0]["info"]["owner"] == publisher_id
        assert streams[0]["media"]["video"]["status"] == "active"
        assert {"audio", "video"} <= set(streams[0]["media"])

        # The viewer's log names people, not participant ids.
        log = viewer.inner_text("#log")
        assert "subscribed to alice's stream" in log and publisher_id not in log

        # Mute from the publisher page: the REST API and the viewer both see it.
        publisher.click("#local button[data-kind=video]")
        viewer.wait_for_function(
            "() => document.querySelector('#log').textContent.includes(\"alice's stream: video.status\")"
        )
        stream = api.request("GET", f"/v1/rooms/{room_id}/streams/{streams[0]['id']}")
        assert stream["media"]["video"]["status"] == "inactive"

    finally:
        publisher_context.close()
        viewer_context.close()


def test_reused_token_and_rest_drop_reach_the_page(portal, chromium, api):
    room_id = api.create_room("browser-drop")["id"]
    token = api.create_token(room_id, user="carol", role="viewer")
    context = chromium.new_context()
    try:
        first, second = context.new_page(), context.new_page()
        for page in (first, second):
            page.goto(f"{portal['url']}/demo/?{urlencode({'token': token, 'autojoin': '1'})}")
        first.wait_for_function("() => document.body.dataset.status === 'joined'")
        # The token is one-time: the second page's login is refused with the server's reason.
        second.wait_for_function("() => document.body.dataset.status === 'failed'")
        assert "already used" in second.evaluate("() => window.owtDemo.errors.join(' ')")
        assert second.is_visible("#failure") and "already used" in second.inner_text("#failure-message")
        assert "fresh one" in second.inner_text("#failure-hint")
        # A viewer may not publish: the page reports the refusal and stays in the room.
        first.wait_for_function("() => window.owtDemo.errors.some(e => e.includes('unauthorized'))")
        assert "may not publish" in first.inner_text("#failure-hint")
        assert first.evaluate("() => document.body.dataset.status") == "joined"

        (participant,) = api.request("GET", f"/v1/rooms/{room_id}/participants")
        assert participant["user"] == "carol"
        api.request("DELETE", f"/v1/rooms/{room_id}/participants/{participant['id']}")
        first.wait_for_function("() => document.body.dataset.status === 'dropped'")
        assert "removed from the room" in first.inner_text("#failure-message")
        assert api.request("GET", f"/v1/rooms/{room_id}/participants") == []
    finally:
        context.close()


# Before the page's scripts: peer connections made while window.blockIce is true gather no
# candidate at all (relay only, and there is no TURN server), so ICE can never connect.
BLOCK_ICE = """
window.blockIce = true;
const NativePeerConnection = window.RTCPeerConnection;
window.RTCPeerConnection = class extends NativePeerConnection {
  constructor(config) {
    super(window.blockIce ? { ...config, iceTransportPolicy: "relay" } : config);
  }
};
"""


def test_ice_failure_shows_the_error_and_retry_publishes(portal, chromium, api):
    room_id = api.create_room("browser-ice")["id"]
    token = api.create_token(room_id, user="dave", role="presenter")
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.add_init_script(BLOCK_ICE)
        page.goto(f"{portal['url']}/demo/?{urlencode({'token': token, 'autojoin': '1'})}")
        # The session timeout (30 s) ends the publish unless Chromium declares ICE failed first.
        page.wait_for_selector("#failure:not([hidden])", timeout=45000)
        assert page.evaluate("() => document.body.dataset.failure") == "publish"
        assert "no network path to the media server" in page.inner_text("#failure-hint")
        assert page.evaluate("() => document.body.dataset.status") == "joined"
        assert page.evaluate("() => window.owtDemo.publication") is None

        page.evaluate("() => { window.blockIce = false; }")
        page.click("#retry")
        page.wait_for_function("() => window.owtDemo.publication", timeout=30000)
        assert page.is_hidden("#failure")
        # One publication: the failed attempt was unpublished, not left half-open on the server.
        publication_id = page.evaluate("() => window.owtDemo.publication.id")
        assert [s["id"] for s in api.request("GET", f"/v1.1/rooms/{room_id}/streams")] == [publication_id]
        publications = api.request("GET", "/v1.1/stream-engine/publications")["data"]
        assert [p["id"] for p in publications if p["domain"] == room_id] == [publication_id]
    finally:
        context.close()


def test_failed_join_shows_the_error_and_retry_joins(portal, chromium, api):
    room_id = api.create_room("browser-join-retry")["id"]
    context = chromium.new_context()
    try:
        page = context.new_page()
        page.goto(f"{portal['url']}/demo/?{urlencode({'token': 'not a token', 'autojoin': '1'})}")
        page.wait_for_function("() => document.body.dataset.status === 'failed'")
        assert page.evaluate("() => document.body.dataset.failure") == "join"
        assert "not a room token" in page.inner_text("#failure-hint")

        page.fill("#token", api.create_token(room_id, user="erin", role="viewer"))
        page.uncheck("#publish-audio")
        page.uncheck("#publish-video")
        page.click("#retry")
        page.wait_for_function("() => document.body.dataset.status === 'joined'")
        assert page.is_hidden("#failure")
        assert page.inner_text("#participants") == "erin · viewer (me)"
    finally:
        context.close()
