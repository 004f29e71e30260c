"""Egress end to end: the platform as bin/run starts it (portal, media and data workers, beat),
two Python clients publishing into a room, tasks started through the API, files checked with
ffprobe and decoded; webhooks received by a local HTTP server; a media worker killed mid-task."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections import deque
from pathlib import Path

import av
import numpy as np
import pytest

from owt.client import EgressClient
from owt.localserver import running_platform
from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack
from tests.egress.test_api import Receiver
from tests.streamengine.test_media_jobs import ffprobe

pytestmark = [pytest.mark.timeout(240), pytest.mark.media, pytest.mark.worker, pytest.mark.embedded]

RED, GREEN = (255, 0, 0), (0, 255, 0)
VIDEO = {"width": 640, "height": 360, "frameRate": 30, "bitrate": 600}


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running_platform(tmp_path_factory.mktemp("egress"), EGRESS_WEBHOOK_BACKOFF_SECONDS="0.5") as running:
        running.start_worker("media-1")
        yield running


@pytest.fixture(scope="module")
def egress(platform) -> EgressClient:
    service = platform.api.create_service("egress-media", "egress-media-key")
    return EgressClient(platform.url, service["_id"], "egress-media-key")


@pytest.fixture(scope="module")
def app_api(platform, egress):
    from owt.client import ManagementClient

    return ManagementClient(platform.url, egress.app_id, "egress-media-key")


async def wait_status(egress: EgressClient, task_id: str, statuses: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        task = await asyncio.to_thread(egress.status, task_id)
        if task["status"] in statuses:
            return task
        assert time.monotonic() < deadline, f"still {task['status']}: {task}"
        await asyncio.sleep(0.2)


async def wait_writing(egress: EgressClient, task_id: str, timeout: float = 30) -> None:
    """Until the task's first file set has encoded video."""
    deadline = time.monotonic() + timeout
    while True:
        task = await asyncio.to_thread(egress.status, task_id)
        outputs = task["progress"].get("outputs") or {}
        if any((o.get("frames") or {}).get("video") for o in outputs.values()):
            return
        assert task["status"] in ("ENQUEUED", "PROCESSING"), task
        assert time.monotonic() < deadline, task
        await asyncio.sleep(0.1)


def download_all(egress: EgressClient, task_id: str, folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    found = {}
    for file in egress.files(task_id):
        path = folder / file["name"]
        path.write_bytes(egress.download(task_id, file["name"]))
        found[file["name"]] = path
    return found


def video_stats(path: Path) -> tuple[float, float]:
    """(seconds of video, video bits per second) from the packets themselves."""
    completed = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time,size"]
        + ["-of", "json", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    packets = json.loads(completed.stdout)["packets"]
    times = [float(p["pts_time"]) for p in packets]
    seconds = max(times) - min(times) + 1 / 30
    return seconds, sum(int(p["size"]) for p in packets) * 8 / seconds


def last_picture(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        (frame,) = deque(container.decode(video=0), maxlen=1)
        return frame.to_ndarray(format="rgb24")


def audio_level(path: Path) -> float:
    """RMS of the decoded AAC (float samples, full scale 1.0)."""
    with av.open(str(path)) as container:
        samples = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


async def publish(platform, app_api, room: str, user: str, color: tuple[int, int, int]) -> ConferenceClient:
    client = ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/")
    await client.__aenter__()
    await client.join(await asyncio.to_thread(app_api.create_token, room, user, "presenter"))
    await client.publish([SyntheticAudioTrack(), SyntheticVideoTrack(320, 240, pattern="solid", color=color)])
    return client


async def test_flat_composite_into_hls_with_webhooks(platform, egress, app_api, loopback_client, tmp_path):
    receiver = Receiver([])
    await asyncio.to_thread(egress.set_webhook, receiver.url, "w" * 32)
    room = (await asyncio.to_thread(app_api.create_room, "egress_flat"))["_id"]
    alice = await publish(platform, app_api, room, "alice", RED)
    bob = await publish(platform, app_api, room, "bob", GREEN)
    try:
        payload = {"layout": "flat", "channel": "egress_flat", "workerUid": 7, "format": "hls", "video": VIDEO}
        started = await asyncio.to_thread(egress.start, "flat1", {**payload, "filename_pattern": "{channel}_{task_id}"})
        task_id = started["task_id"]
        await wait_status(egress, task_id, {"PROCESSING"})
        await wait_writing(egress, task_id)
        # The worker is in the room as its workerUid, and no user of it (REST lists the users).
        users = [p["user"] for p in await asyncio.to_thread(app_api.request, "GET", f"/v1/rooms/{room}/participants")]
        assert sorted(users) == ["alice", "bob"]
        await asyncio.sleep(10)
        stopping = await asyncio.to_thread(egress.stop, task_id, "stop1")
        assert stopping["status"] in ("STOPPING", "STOPPED") and stopping["request_id"] == "stop1"
        ended = await wait_status(egress, task_id, {"STOPPED"})
    finally:
        for client in (alice, bob):
            await client.__aexit__(None, None, None)
    name = f"egress_flat_{task_id}"
    assert ended["payload"]["files"][0] == f"{name}.m3u8" and f"{name}_00001.ts" in ended["payload"]["files"]
    files = await asyncio.to_thread(download_all, egress, task_id, tmp_path / "flat")
    playlist = files[f"{name}.m3u8"].read_text()
    assert "#EXT-X-ENDLIST" in playlist and "#EXT-X-TARGETDURATION" in playlist
    probe = ffprobe(str(files[f"{name}.m3u8"]))
    video = next(s for s in probe["streams"] if s["codec_type"] == "video")
    audio = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], video["width"], video["height"]) == ("h264", 640, 360)
    assert video["r_frame_rate"] == "30/1"
    assert (audio["codec_name"], int(audio["sample_rate"]), audio["channels"]) == ("aac", 48000, 2)
    seconds, bitrate = video_stats(files[f"{name}.m3u8"])
    wall = ended["recording"]["ended"] - ended["recording"]["started"]
    assert wall > 9 and abs(seconds - wall) <= 0.1 * wall, (seconds, wall)
    assert abs(bitrate - 600_000) <= 60_000, bitrate
    # 2 users on a 16:9 canvas: side by side, in publishing order (alice red, bob green).
    picture = last_picture(files[f"{name}.m3u8"])
    left, right = picture[180, 160], picture[180, 480]
    assert left[0] > 180 and left[1] < 80, left
    assert right[1] > 180 and right[0] < 80, right
    assert audio_level(files[f"{name}.m3u8"]) > 0.05  # two 440 Hz tones at -12 dBFS, mixed
    # Webhooks: every state change, signed, delivered by the data worker.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and len(receiver.received) < 4:
        await asyncio.sleep(0.2)
    announced = [json.loads(body)["status"] for _, body in receiver.received]
    assert announced[0] == "ENQUEUED" and "PROCESSING" in announced and announced[-1] == "STOPPED", announced
    receiver.close()


async def test_individual_one_file_set_per_user_and_the_maximum_duration(
    platform, egress, app_api, loopback_client, tmp_path
):
    room = (await asyncio.to_thread(app_api.create_room, "egress_each"))["_id"]
    alice = await publish(platform, app_api, room, "alice", RED)
    bob = await publish(platform, app_api, room, "bob", GREEN)
    try:
        payload = {
            "layout": "individual",
            "channel": room,
            "format": "mp4",
            "filename_pattern": "rec_{user}",
            "video": {"width": 320, "height": 240, "frameRate": 15, "bitrate": 200},
            "max_duration_s": 6,
        }
        task_id = (await asyncio.to_thread(egress.start, "each1", payload))["task_id"]
        ended = await wait_status(egress, task_id, {"TIMEOUT", "FAILED"}, timeout=40)
    finally:
        for client in (alice, bob):
            await client.__aexit__(None, None, None)
    assert ended["status"] == "TIMEOUT" and "maximum duration of 6 s" in ended["message"], ended
    files = await asyncio.to_thread(download_all, egress, task_id, tmp_path / "each")
    assert sorted(files) == ["rec_alice.mp4", "rec_bob.mp4"]
    by_user = {f["user"]: f["name"] for f in await asyncio.to_thread(egress.files, task_id)}
    assert by_user == {"alice": "rec_alice.mp4", "bob": "rec_bob.mp4"}
    for name, color in (("rec_alice.mp4", 0), ("rec_bob.mp4", 1)):
        video = next(s for s in ffprobe(str(files[name]))["streams"] if s["codec_type"] == "video")
        assert (video["width"], video["height"]) == (320, 240)
        assert last_picture(files[name])[120, 160][color] > 180


async def test_a_killed_worker_requeues_the_task_and_another_finishes_it(platform, egress, app_api, loopback_client):
    room = (await asyncio.to_thread(app_api.create_room, "egress_kill"))["_id"]
    alice = await publish(platform, app_api, room, "alice", RED)
    try:
        payload = {"layout": "flat", "channel": room, "format": "hls", "video": VIDEO, "filename_pattern": "k"}
        task_id = (await asyncio.to_thread(egress.start, "kill1", payload))["task_id"]
        await wait_writing(egress, task_id)
        await asyncio.sleep(7)  # past the first 6 s segment
        victim = platform.workers[-1]
        platform.kill(victim)
        killed = time.monotonic()
        requeued = await wait_status(egress, task_id, {"ENQUEUED", "FAILED"}, timeout=15)
        assert time.monotonic() - killed < 10
        assert "stopped renewing its lease" in requeued["message"]
        platform.start_worker("media-2")
        again = await wait_status(egress, task_id, {"PROCESSING"}, timeout=30)
        assert again["retry_count"] == 1
        await wait_writing(egress, task_id)
        await asyncio.to_thread(egress.stop, task_id)
        ended = await wait_status(egress, task_id, {"STOPPED"})
    finally:
        await alice.__aexit__(None, None, None)
    # The killed part's segments stay; the second attempt writes its own names.
    assert {"k.m3u8", "k_00001.ts", "k_part2.m3u8", "k_part2_00001.ts"} <= set(ended["payload"]["files"])
