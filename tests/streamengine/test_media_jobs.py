"""Media jobs end to end: a real Celery worker joins the room through the portal and records.

The platform runs as ``bin/run`` starts it (portal, media worker, beat as separate
processes, embedded defaults in a temporary directory); the publisher is the Python client
in this process; every file is checked with ffprobe.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from pathlib import Path

import pytest

from owt.localserver import running_platform
from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack

pytestmark = [pytest.mark.timeout(180), pytest.mark.media, pytest.mark.worker, pytest.mark.embedded]


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running_platform(tmp_path_factory.mktemp("media-jobs")) as running:
        running.start_worker("media-1")
        yield running


def ffprobe(path: str) -> dict:
    completed = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", path],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def decoded_seconds(path: str) -> float:
    """How much of the file really decodes (its last video frame's time): what a player plays."""
    completed = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time", "-of", "csv=p=0", path],
        capture_output=True,
        text=True,
        timeout=60,
    )
    times = [float(line.split(",")[0]) for line in completed.stdout.split() if line.strip()]
    return max(times) if times else 0.0


async def wait_state(api, path: str, states: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        recording = await asyncio.to_thread(api.request, "GET", path)
        if recording["state"] in states:
            return recording
        assert time.monotonic() < deadline, f"still {recording['state']}: {recording}"
        await asyncio.sleep(0.25)


async def test_passthrough_recording_into_matroska(platform, loopback_client):
    api = platform.api
    room = api.create_room("record-me")["id"]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
        await alice.join(api.create_token(room, user="alice", role="presenter"))
        camera = await alice.publish([SyntheticAudioTrack(), SyntheticVideoTrack()])
        created = api.request(
            "POST",
            f"/v1/rooms/{room}/recordings",
            json={"container": "mkv", "media": {"audio": {"from": camera.id}, "video": {"from": camera.id}}},
        )
        path = f"/v1/rooms/{room}/recordings/{created['id']}"
        assert created["state"] == "pending" and created["media"]["video"]["from"] == camera.id
        running = await wait_state(api, path, {"running"})
        started = time.monotonic()
        # The job is no user: REST lists alice alone; its subscription is typed "recording".
        assert [p["user"] for p in api.request("GET", f"/v1/rooms/{room}/participants")] == ["alice"]
        engine_subscriptions = api.request("GET", "/v1.1/stream-engine/subscriptions")["data"]
        assert [s["type"] for s in engine_subscriptions if s["domain"] == room] == ["recording"]
        await asyncio.sleep(6)
        progress = api.request("GET", path)["progress"]
        assert progress["frames"]["video"] > 60 and progress["frames"]["audio"] > 100 and progress["bytes"] > 0
        api.request("DELETE", path)
        ended = await wait_state(api, path, {"finished", "failed"})
        wall = time.monotonic() - started
    assert ended["state"] == "finished", ended
    file = ended["storage"]["file"]
    assert file == running["storage"]["file"] and file.endswith(".mkv")
    probe = ffprobe(file)
    codecs = {s["codec_type"]: s for s in probe["streams"]}
    assert codecs["video"]["codec_name"] == "vp8" and codecs["audio"]["codec_name"] == "opus"
    assert (codecs["video"]["width"], codecs["video"]["height"]) == (640, 480)
    duration = float(probe["format"]["duration"])
    assert abs(duration - wall) <= 0.1 * wall + 0.5, (duration, wall)
    starts = [float(s.get("start_time", 0)) for s in probe["streams"]]
    assert max(starts) - min(starts) <= 0.1
    downloaded = api.http.get(f"{platform.url}{ended['download']}", headers={"Authorization": api.authorization()})
    assert downloaded.status_code == 200 and downloaded.content == Path(file).read_bytes()


async def test_worker_killed_mid_recording_is_detected_and_the_job_restarts(platform, loopback_client):
    api = platform.api
    room = api.create_room("kill-9")["id"]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
        await alice.join(api.create_token(room, user="alice", role="presenter"))
        camera = await alice.publish([SyntheticVideoTrack()])
        created = api.request(
            "POST", f"/v1/rooms/{room}/recordings", json={"media": {"audio": False, "video": {"from": camera.id}}}
        )
        path = f"/v1/rooms/{room}/recordings/{created['id']}"
        first = await wait_state(api, path, {"running"})
        await asyncio.sleep(4)
        worker = platform.workers[-1]
        platform.kill(worker)
        killed = time.monotonic()
        # beat's reaper finds the lapsed lease: pending again (attempt 2), never left running.
        offered = await wait_state(api, path, {"pending", "failed"}, timeout=15)
        assert time.monotonic() - killed < 10
        assert "stopped renewing its lease" in offered["progress"]["last_error"]
        platform.start_worker("media-2")
        second = await wait_state(api, path, {"running"}, timeout=60)
        assert second["storage"]["file"] != first["storage"]["file"]
        await asyncio.sleep(3)
        api.request("DELETE", path)
        await wait_state(api, path, {"finished"})
    # The killed worker's part plays up to its last seconds (Matroska clusters flushed every second).
    assert decoded_seconds(first["storage"]["file"]) >= 2.5
    assert ffprobe(second["storage"]["file"])["streams"][0]["codec_name"] == "vp8"


async def test_h264_with_opus_into_fragmented_mp4_transcodes_only_the_audio(platform, loopback_client):
    api = platform.api
    room = api.create_room("record-mp4")["id"]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
        await alice.join(api.create_token(room, user="alice", role="presenter"))
        camera = await alice.publish([SyntheticAudioTrack(), SyntheticVideoTrack()], video_codec="h264")
        created = api.request(
            "POST",
            f"/v1/rooms/{room}/recordings",
            json={"container": "mp4", "media": {"audio": {"from": camera.id}, "video": {"from": camera.id}}},
        )
        path = f"/v1/rooms/{room}/recordings/{created['id']}"
        await wait_state(api, path, {"running"})
        started = time.monotonic()
        await asyncio.sleep(5)
        api.request("DELETE", path)
        ended = await wait_state(api, path, {"finished", "failed"})
        wall = time.monotonic() - started
    assert ended["state"] == "finished", ended
    probe = ffprobe(ended["storage"]["file"])
    codecs = {s["codec_type"]: s["codec_name"] for s in probe["streams"]}
    assert codecs == {"video": "h264", "audio": "aac"}
    assert abs(float(probe["format"]["duration"]) - wall) <= 0.1 * wall + 0.5
    assert decoded_seconds(ended["storage"]["file"]) >= 3


async def test_patch_switches_the_recorded_source_without_breaking_the_file(platform, loopback_client):
    api = platform.api
    room = api.create_room("record-switch")["id"]
    signaling = f"{platform.url.replace('http', 'ws')}/ws/signaling/"
    async with ConferenceClient(signaling) as alice, ConferenceClient(signaling) as bob:
        await alice.join(api.create_token(room, user="alice", role="presenter"))
        await bob.join(api.create_token(room, user="bob", role="presenter"))
        first = await alice.publish([SyntheticVideoTrack()])
        second = await bob.publish([SyntheticVideoTrack()])
        created = api.request(
            "POST", f"/v1/rooms/{room}/recordings", json={"media": {"audio": False, "video": {"from": first.id}}}
        )
        path = f"/v1/rooms/{room}/recordings/{created['id']}"
        await wait_state(api, path, {"running"})
        started = time.monotonic()
        await asyncio.sleep(3)
        patched = api.request("PATCH", path, json=[{"op": "replace", "path": "/media/video/from", "value": second.id}])
        assert patched["media"]["video"]["from"] == second.id
        await asyncio.sleep(4)
        assert api.request("GET", path)["state"] == "running"
        api.request("DELETE", path)
        ended = await wait_state(api, path, {"finished", "failed"})
        wall = time.monotonic() - started
    assert ended["state"] == "finished", ended
    # One file, decodable across the switch, as long as the recording ran.
    assert decoded_seconds(ended["storage"]["file"]) >= wall - 1.5


async def test_a_finished_recording_goes_to_the_recordings_storage(tmp_path_factory, loopback_client):
    """Another storage backend (here a FileSystemStorage elsewhere; S3 the same way) gets the file at the end."""
    archive = tmp_path_factory.mktemp("archive")
    options = json.dumps({"location": str(archive)})
    with running_platform(tmp_path_factory.mktemp("stored"), RECORDINGS_STORAGE_OPTIONS=options) as stored:
        stored.start_worker("media-stored")
        api = stored.api
        room = api.create_room("record-stored")["id"]
        async with ConferenceClient(f"{stored.url.replace('http', 'ws')}/ws/signaling/") as alice:
            await alice.join(api.create_token(room, user="alice", role="presenter"))
            camera = await alice.publish([SyntheticVideoTrack()])
            body = {"media": {"audio": False, "video": {"from": camera.id}}}
            path = f"/v1/rooms/{room}/recordings/{api.request('POST', f'/v1/rooms/{room}/recordings', json=body)['id']}"
            local = (await wait_state(api, path, {"running"}))["storage"]["file"]
            await asyncio.sleep(3)
            api.request("DELETE", path)
            ended = await wait_state(api, path, {"finished", "failed"})
        assert ended["state"] == "finished", ended
        assert ended["storage"] == {"host": "FileSystemStorage", "file": f"{room}/{Path(local).name}"}
        assert not Path(local).exists()  # moved, not copied
        kept = archive / room / Path(local).name
        assert ffprobe(str(kept))["streams"][0]["codec_name"] == "vp8"
        downloaded = api.http.get(f"{stored.url}{ended['download']}", headers={"Authorization": api.authorization()})
        assert downloaded.status_code == 200 and downloaded.content == kept.read_bytes()
