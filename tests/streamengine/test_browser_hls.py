"""Chromium plays a room's HLS streaming-out with hls.js (from the npm registry) from another origin.

The whole platform runs as processes inside the loopback-only namespace (bin/test), a
Python client publishes a camera, the streaming-out job encodes H.264 + AAC into the
portal's HLS folder, and the page must see ``video.currentTime`` advance.
"""

from __future__ import annotations

import asyncio
import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

from owt.localserver import ROOT, running_platform
from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack
from streamengine.media.ice import use_host_addresses
from tests.streamengine.helpers import IN_LOOPBACK_NAMESPACE, wait_until

PAGE = Path(__file__).parent / "hls_page"
HLS_JS = ROOT / "var/js/node_modules/hls.js/dist/hls.min.js"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(180),
    IN_LOOPBACK_NAMESPACE,
]


@pytest.fixture
def page_origin(tmp_path: Path):
    assert HLS_JS.exists(), "hls.js is missing: run bin/setup --test"
    for path in (PAGE / "index.html", HLS_JS):
        shutil.copy(path, tmp_path / path.name)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


class Camera(threading.Thread):
    """A Python publisher on its own event loop (Playwright's sync API owns this thread's)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True)
        self.url, self.token = url, token
        self.stream: str | None = None
        self.published, self.done = threading.Event(), threading.Event()

    def run(self) -> None:
        asyncio.run(self._publish())

    async def _publish(self) -> None:
        async with ConferenceClient(self.url) as camera:
            await camera.join(self.token)
            self.stream = (await camera.publish([SyntheticAudioTrack(), SyntheticVideoTrack()])).id
            self.published.set()
            while not self.done.is_set():
                await asyncio.sleep(0.2)


def test_hls_output_plays_in_chromium(tmp_path_factory, page_origin, chromium):
    use_host_addresses(["127.0.0.1"])
    try:
        with running_platform(tmp_path_factory.mktemp("hls-browser")) as platform:
            platform.start_worker("media-1")
            api = platform.api
            room = api.create_room("hls-browser")["id"]
            token = api.create_token(room, user="camera", role="presenter")
            camera = Camera(f"{platform.url.replace('http', 'ws')}/ws/signaling/", token)
            camera.start()
            try:
                assert camera.published.wait(30)
                media = {
                    "audio": {"from": camera.stream},
                    "video": {"from": camera.stream, "parameters": {"keyFrameInterval": 1}},
                }
                body = {"protocol": "hls", "parameters": {"hlsTime": 1, "hlsListSize": 4}, "media": media}
                url = api.request("POST", f"/v1/rooms/{room}/streaming-outs", json=body)["url"]

                def playlist_has_segments() -> bool:
                    response = api.http.get(url)
                    return response.status_code == 200 and "#EXTINF" in response.text

                wait_until(playlist_has_segments, 40, "an HLS playlist with segments")
                context = chromium.new_context()
                try:
                    page = context.new_page()
                    page.goto(f"{page_origin}/index.html")
                    page.evaluate("(url) => window.play(url)", url)
                    position = "() => document.getElementById('player').currentTime"
                    first = wait_until(lambda: page.evaluate(position), 40, "playback to start")
                    wait_until(lambda: page.evaluate(position) >= first + 2, 30, "currentTime to advance")
                    assert page.evaluate("() => window.errors") == []
                    (ROOT / "test-artifacts").mkdir(exist_ok=True)
                    page.screenshot(path=str(ROOT / "test-artifacts/hls-player.png"))
                finally:
                    context.close()
            finally:
                camera.done.set()
                camera.join(10)
    finally:
        use_host_addresses([])
