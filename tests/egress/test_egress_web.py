"""A freestyle (web page) egress task end to end: the platform as processes, the media worker
renders the platform's own test card (a moving picture and a 1 kHz tone) in Chromium and
records it; the MP4 is downloaded through the API and decoded. A browser test: bin/test runs
it in a loopback-only network namespace."""

from __future__ import annotations

import asyncio
from collections import deque

import av
import numpy as np
import pytest

from owt.client import EgressClient
from owt.localserver import running_platform
from tests.egress.test_egress_media import ffprobe, wait_status, wait_writing
from tests.streamengine.helpers import IN_LOOPBACK_NAMESPACE

pytestmark = [pytest.mark.timeout(180), pytest.mark.browser, pytest.mark.worker, IN_LOOPBACK_NAMESPACE]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running_platform(tmp_path_factory.mktemp("egress-web")) as running:
        running.start_worker("media-web")
        yield running


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / rate)[int(np.argmax(spectrum))])


async def test_a_web_page_is_recorded_with_its_motion_and_sound(platform, tmp_path):
    service = await asyncio.to_thread(platform.api.create_service, "egress-web", "egress-web-key")
    egress = EgressClient(platform.url, service["_id"], "egress-web-key")
    payload = {
        "layout": "freestyle",
        "url": f"{platform.url}/static/egress/testcard.html",
        "format": "mp4",
        "filename_pattern": "card",
        "video": {"width": 320, "height": 240, "frameRate": 15, "bitrate": 300},
    }
    task_id = (await asyncio.to_thread(egress.start, "web1", payload))["task_id"]
    await wait_writing(egress, task_id, timeout=60)
    await asyncio.sleep(5)
    await asyncio.to_thread(egress.stop, task_id)
    ended = await wait_status(egress, task_id, {"STOPPED", "FAILED"})
    assert ended["status"] == "STOPPED", ended
    assert ended["payload"]["files"] == ["card.mp4"]
    path = tmp_path / "card.mp4"
    path.write_bytes(await asyncio.to_thread(egress.download, task_id, "card.mp4"))
    video = next(s for s in ffprobe(str(path))["streams"] if s["codec_type"] == "video")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 320, 240)
    with av.open(str(path)) as container:
        pictures = [f.to_ndarray(format="rgb24").astype(np.int16) for f in container.decode(video=0)]
    assert len(pictures) >= 3 * 15
    # The card moves: pictures a second apart differ.
    assert np.abs(pictures[-1] - pictures[-16]).mean() > 5
    with av.open(str(path)) as container:
        frames = deque(container.decode(audio=0), maxlen=100)  # the last ~2 s
        rate = frames[0].sample_rate
        samples = np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.float64)
    assert np.sqrt(np.mean(samples**2)) > 0.01  # not silent
    assert abs(dominant_frequency(samples, rate) - 1000) < 30


async def test_without_a_url_the_rooms_viewer_page_is_recorded(platform, loopback_client, tmp_path):
    from owt.client import ManagementClient
    from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack

    service = await asyncio.to_thread(platform.api.create_service, "egress-viewer", "egress-viewer-key")
    egress = EgressClient(platform.url, service["_id"], "egress-viewer-key")
    api = ManagementClient(platform.url, service["_id"], "egress-viewer-key")
    room = (await asyncio.to_thread(api.create_room, "viewer_room"))["_id"]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
        await alice.join(await asyncio.to_thread(api.create_token, room, "alice", "presenter"))
        await alice.publish([SyntheticAudioTrack(), SyntheticVideoTrack(320, 240, pattern="solid", color=(255, 0, 0))])
        payload = {
            "layout": "freestyle",
            "channel": "viewer_room",
            "format": "mp4",
            "filename_pattern": "viewer",
            "video": {"width": 320, "height": 240, "frameRate": 15, "bitrate": 300},
        }
        task_id = (await asyncio.to_thread(egress.start, "view1", payload))["task_id"]
        await wait_writing(egress, task_id, timeout=60)
        await asyncio.sleep(6)
        # The page joined as the task's job: no user of the room.
        users = [p["user"] for p in await asyncio.to_thread(api.request, "GET", f"/v1/rooms/{room}/participants")]
        assert users == ["alice"]
        await asyncio.to_thread(egress.stop, task_id)
        ended = await wait_status(egress, task_id, {"STOPPED", "FAILED"})
    assert ended["status"] == "STOPPED", ended
    path = tmp_path / "viewer.mp4"
    path.write_bytes(await asyncio.to_thread(egress.download, task_id, "viewer.mp4"))
    with av.open(str(path)) as container:
        (last,) = deque(container.decode(video=0), maxlen=1)
    picture = last.to_ndarray(format="rgb24").astype(np.int16)
    # Alice's red camera fills the viewer page's middle.
    red = picture[:, :, 0] - picture[:, :, 1]
    assert (red > 150).mean() > 0.3, red.mean()
    with av.open(str(path)) as container:
        frames = deque(container.decode(audio=0), maxlen=100)
        samples = np.concatenate([f.to_ndarray()[0] for f in frames]).astype(np.float64)
    assert abs(dominant_frequency(samples, frames[0].sample_rate) - 440) < 30
