"""Streaming-ins end to end: a real Celery worker pulls RTSP/RTMP sources started by the test
on loopback and publishes them into the room; a Python client subscribes and decodes.

Sources: gst-rtsp-server serving an ffmpeg-made file (``rtsp_server.py``), and ffmpeg as an
RTMP server in listen mode (``-listen 1``: it serves one client, then exits — which is also
how the reconnect test drops the source).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator

import pytest

from owt.localserver import free_port, running_platform
from streamengine.client import ConferenceClient
from tests.streamengine.rtsp_server import pattern_file, rtsp_source, wait_listening

pytestmark = [pytest.mark.timeout(240), pytest.mark.media, pytest.mark.worker, pytest.mark.embedded]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running_platform(
        tmp_path_factory.mktemp("streaming-in"), STREAMING_IN_ALLOW_PRIVATE="1", STREAMING_IN_RECONNECT_SECONDS="20"
    ) as running:
        running.start_worker("media-1")
        yield running


@contextlib.contextmanager
def rtmp_source(port: int) -> Iterator[subprocess.Popen]:
    """ffmpeg pushing a 30 fps test pattern (H.264 + AAC) to the first RTMP client that connects."""
    command = ["ffmpeg", "-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=30"]
    command += ["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000"]
    command += ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30", "-pix_fmt", "yuv420p"]
    command += ["-c:a", "aac", "-f", "flv", "-listen", "1", f"rtmp://127.0.0.1:{port}/live/x"]
    source = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    try:
        wait_listening(port)
        yield source
    finally:
        source.kill()
        source.wait()


def post_streaming_in(platform, room: str, url: str, version: str = "v1.1"):
    return platform.api.http.post(
        f"{platform.url}/{version}/rooms/{room}/streaming-ins",
        json={"connection": {"url": url}, "media": {"audio": "auto", "video": True}, "attributes": {"cam": "lobby"}},
        headers={"Authorization": platform.api.authorization()},
        timeout=40,
    )


async def count_frames(session, kind: str, seconds: float) -> int:
    track = session.tracks[kind]
    await asyncio.wait_for(track.recv(), 10)  # the first one (a keyframe for video)
    frames, started = 0, time.monotonic()
    while time.monotonic() - started < seconds:
        await asyncio.wait_for(track.recv(), 5)
        frames += 1
    return frames


def job_of(platform, stream: str) -> dict:
    """The job's row in the platform's SQLite file (no API lists streaming-in jobs)."""
    with contextlib.closing(sqlite3.connect(platform.var / "owt.sqlite3")) as db:
        state, reason, progress = db.execute(
            "SELECT state, reason, progress FROM streamengine_mediajob WHERE id = ?", (stream,)
        ).fetchone()
    return {"state": state, "reason": reason, "progress": json.loads(progress)}


async def watch_and_stop(platform, room: str, stream: dict) -> None:
    """Subscribe: decoded video at the source's rate (30 fps) and audio; then DELETE."""
    api = platform.api
    assert stream["info"]["owner"] == "admin" and stream["info"]["type"] == "streaming"
    assert stream["info"]["attributes"] == {"cam": "lobby"} and stream["id"].isdigit()
    listed = api.request("GET", f"/v1/rooms/{room}/streams")
    assert [s["id"] for s in listed] == [stream["id"]]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as bob:
        await bob.join(api.create_token(room, user="bob", role="viewer"))
        watching = await bob.subscribe(stream["id"])
        video, audio = await asyncio.gather(count_frames(watching, "video", 3), count_frames(watching, "audio", 3))
    assert video >= 75, f"{video} video frames in 3 s"
    assert audio >= 120, f"{audio} audio frames in 3 s"  # 20 ms Opus frames: 150 in 3 s
    api.request("DELETE", f"/v1/rooms/{room}/streaming-ins/{stream['id']}")
    assert api.request("GET", f"/v1/rooms/{room}/streams") == []


async def test_rtsp_camera_is_published_and_plays_at_its_frame_rate(platform, loopback_client, tmp_path):
    room = platform.api.create_room("rtsp-in")["id"]
    port = free_port()
    with rtsp_source(pattern_file(tmp_path / "pattern.mkv"), port):
        created = await asyncio.to_thread(post_streaming_in, platform, room, f"rtsp://127.0.0.1:{port}/live")
        assert created.status_code == 200, created.text
        stream = created.json()
        assert stream["media"]["video"]["original"][0]["format"]["codec"] == "h264"  # passthrough (v1.1 form)
        assert stream["media"]["audio"]["format"]["codec"] == "opus"  # AAC decoded, Opus by aiortc
        await watch_and_stop(platform, room, stream)


async def test_rtmp_source_is_published_and_survives_a_reconnect(platform, loopback_client):
    room = platform.api.create_room("rtmp-in")["id"]
    port = free_port()
    with rtmp_source(port):
        created = await asyncio.to_thread(post_streaming_in, platform, room, f"rtmp://127.0.0.1:{port}/live/x", "v1")
        assert created.status_code == 200, created.text
        stream = created.json()
        assert stream["media"]["video"]["format"]["codec"] == "h264"  # v1.0 form
    # The source went away (ffmpeg served its one client): the job reconnects on the same stream.
    with rtmp_source(port):
        deadline = time.monotonic() + 30
        while (job := await asyncio.to_thread(job_of, platform, stream["id"]))["progress"].get("reconnects", 0) < 1:
            assert time.monotonic() < deadline and job["state"] == "running", job
            await asyncio.sleep(1)
        assert job["progress"]["last_error"]
        await watch_and_stop(platform, room, stream)


async def test_an_unreachable_source_fails_the_job_with_a_reason(platform):
    room = platform.api.create_room("nothing-there")["id"]
    port = free_port()  # nothing listens there
    created = await asyncio.to_thread(post_streaming_in, platform, room, f"rtsp://127.0.0.1:{port}/live")
    assert created.status_code == 503, created.text
    error = created.json()["error"]
    assert error["code"] == 1201
    assert f"cannot open the source rtsp://127.0.0.1:{port}/live" in error["message"], error
    assert platform.api.request("GET", f"/v1/rooms/{room}/streams") == []


async def test_stream_engine_publication_of_type_streaming_is_the_same_job(platform, loopback_client):
    api = platform.api
    room = api.create_room("engine-in")["id"]
    port = free_port()
    with rtmp_source(port):
        body = {
            "type": "streaming",
            "participant": room,
            "media": {"audio": "auto", "video": "auto"},
            "info": {"url": f"rtmp://127.0.0.1:{port}/live/x"},
        }
        created = await asyncio.to_thread(
            api.http.post,
            f"{platform.url}/v1.1/stream-engine/publications",
            json=body,
            headers={"Authorization": api.authorization()},
            timeout=40,
        )
        assert created.status_code == 200, created.text
        stream = created.json()["id"]
        publication = api.request("GET", f"/v1.1/stream-engine/publications/{stream}")
        assert publication["info"]["type"] == "streaming" and publication["info"]["owner"] == "admin"
        api.request("DELETE", f"/v1.1/stream-engine/publications/{stream}")
        deadline = time.monotonic() + 10
        while (job := await asyncio.to_thread(job_of, platform, stream))["state"] not in ("finished", "failed"):
            assert time.monotonic() < deadline, job
            await asyncio.sleep(0.5)
        assert job["state"] == "finished", job
