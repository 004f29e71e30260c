"""Analytics end to end: a real Celery worker analyses a published stream and publishes the result.

The platform runs as ``bin/run`` starts it (portal, media worker, beat as separate
processes); alice publishes the synthetic "bars" pattern (a bright bar sweeping across),
bob watches the analytics' stream and hears its events.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from owt.localserver import running_platform
from streamengine.client import ConferenceClient, SignalingError, SyntheticVideoTrack
from streamengine.media.analytics.frames import GREEN, YuvImage
from streamengine.media.analytics.motion import MotionDetector
from tests.streamengine.test_media_jobs import wait_state

pytestmark = [pytest.mark.timeout(120), pytest.mark.media, pytest.mark.worker, pytest.mark.embedded]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running_platform(tmp_path_factory.mktemp("analytics")) as running:
        running.start_worker("media-1")
        yield running


def green_share(frame) -> float:
    """How much of the frame (chroma samples) is the motion box's green, after VP8 both ways."""
    image = YuvImage.from_frame(frame)
    green = (np.abs(image.u.astype(int) - GREEN[1]) < 20) & (np.abs(image.v.astype(int) - GREEN[2]) < 20)
    return float(green.mean())


async def stream_listed(api, room: str, stream_id: str, present: bool, timeout: float = 15) -> dict | None:
    deadline = time.monotonic() + timeout
    while True:
        streams = {s["id"]: s for s in await asyncio.to_thread(api.request, "GET", f"/v1/rooms/{room}/streams")}
        if (stream_id in streams) == present:
            return streams.get(stream_id)
        assert time.monotonic() < deadline, f"stream {stream_id} {'never listed' if present else 'still listed'}"
        await asyncio.sleep(0.25)


async def test_motion_analytics_publishes_a_boxed_stream_and_announces_its_events(platform, loopback_client):
    api = platform.api
    room = api.create_room("analyse-me")["id"]
    signaling = f"{platform.url.replace('http', 'ws')}/ws/signaling/"
    async with ConferenceClient(signaling) as alice, ConferenceClient(signaling) as bob:
        await alice.join(api.create_token(room, user="alice", role="presenter"))
        await bob.join(api.create_token(room, user="bob", role="viewer"))
        camera = await alice.publish([SyntheticVideoTrack(pattern="bars")])
        with pytest.raises(SignalingError, match="Only an analytics job"):
            await alice.request("analytics-event", {"event": {"type": "motion", "box": [0, 0, 1, 1]}})
        body = {"algorithm": "motion", "media": {"video": {"from": camera.id}, "audio": False}}
        created = api.request("POST", f"/v1/rooms/{room}/analytics", json=body)
        assert created["analytics"] == {"algorithm": MotionDetector.id}
        path = f"/v1/rooms/{room}/analytics/{created['id']}"
        await wait_state(api, path, {"running"})
        stream = await stream_listed(api, room, created["id"], present=True)
        assert stream["info"]["owner"] == "admin" and stream["info"]["type"] == "analytics"
        assert stream["media"]["video"]["format"]["codec"] == "vp8"

        watching = await bob.subscribe(created["id"], audio=False)
        boxed = 0
        async with asyncio.timeout(15):
            while boxed < 10:
                frame = await watching.tracks["video"].recv()
                assert (frame.width, frame.height) == (640, 480)
                boxed += green_share(frame) > 0.01
        announced = await bob.wait_for("analytics", lambda data: data["id"] == created["id"], timeout=10)
        assert announced["event"]["type"] == "motion" and len(announced["event"]["box"]) == 4
        # The bar spans the picture's height: so does what moved.
        assert announced["event"]["box"][1] == 0 and announced["event"]["box"][3] == 480

        await asyncio.sleep(2)
        shown = api.request("GET", path)
        progress = shown["progress"]
        print("analytics progress:", progress)
        assert progress["frames"]["analysed"] > 30 and progress["frames"]["out"] > 30
        assert progress["events"] >= 1 and progress["last_event"]["type"] in ("motion", "motion-end")
        assert progress["recent_events"][-1] == progress["last_event"]
        assert [a["id"] for a in api.request("GET", f"/v1.1/rooms/{room}/analytics")] == [created["id"]]

        api.request("DELETE", path)
        ended = await wait_state(api, path, {"finished", "failed"})
        assert ended["state"] == "finished", ended
        await stream_listed(api, room, created["id"], present=False)


async def test_the_analytics_ends_with_its_stream_or_its_source(platform, loopback_client):
    api = platform.api
    room = api.create_room("analyse-and-end")["id"]
    signaling = f"{platform.url.replace('http', 'ws')}/ws/signaling/"
    async with ConferenceClient(signaling) as alice:
        await alice.join(api.create_token(room, user="alice", role="presenter"))
        camera = await alice.publish([SyntheticVideoTrack()])
        body = {"algorithm": "brightness", "media": {"video": {"from": camera.id, "format": {"codec": "h264"}}}}
        # Its stream unpublished by the operator (DELETE /streams/{id}): the job stops.
        first = api.request("POST", f"/v1.1/rooms/{room}/analytics", json=body)
        path = f"/v1/rooms/{room}/analytics/{first['id']}"
        await wait_state(api, path, {"running"})
        stream = await stream_listed(api, room, first["id"], present=True)
        assert stream["media"]["video"]["format"]["codec"] == "h264"
        api.request("DELETE", f"/v1/rooms/{room}/streams/{first['id']}")
        assert (await wait_state(api, path, {"finished", "failed"}))["state"] == "finished"
        # Its source unpublished: the job is complete, its stream goes.
        second = api.request("POST", f"/v1/rooms/{room}/analytics", json=body)
        path = f"/v1/rooms/{room}/analytics/{second['id']}"
        await wait_state(api, path, {"running"})
        await stream_listed(api, room, second["id"], present=True)
        await alice.unpublish(camera)
        ended = await wait_state(api, path, {"finished", "failed"})
        assert ended["state"] == "finished", ended
        assert await stream_listed(api, room, second["id"], present=False) is None
