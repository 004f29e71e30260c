"""Egress: CPU per composite HLS task and per web-page (freestyle) task, and the real-time factor each holds.

The whole platform runs as processes (portal, Celery data + media workers, beat; embedded
defaults in a temporary directory). Two Python clients publish 640x360 30 fps VP8 + Opus
into a room; one task at a time runs on one media worker (solo pool), and the worker's CPU
(with every process it started: the page capture's browser, X server and sound server) is
measured over a window after start-up. The real-time factor is the output's video frames
per second over the requested rate (from the task's own progress: frames and duration of
one heartbeat), 1.00 = real time.

* ``composite``: ``flat`` layout, 2 users → 1280x720 30 fps H.264 2 Mbit/s + AAC, HLS
  (the issue's goal: ≤ 1 core);
* ``freestyle``: the platform's test card page (``/static/egress/testcard.html``, a moving picture and a
  tone) rendered by Chromium at 1280x720, recorded at the same settings.

    python -m bench egress                 # ~1 min
    python -m bench egress --window 20 --no-web
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.media_jobs import _tree_cpu_seconds
from bench.report import emit

VIDEO = {"width": 1280, "height": 720, "frameRate": 30, "bitrate": 2000}


async def _wait(egress, task_id: str, ready) -> dict:
    deadline = time.monotonic() + 120  # a worker starting on a loaded machine takes its time
    task: dict = {}
    while time.monotonic() < deadline:
        task = await asyncio.to_thread(egress.status, task_id)
        if ready(task):
            return task
        if task["status"] in ("FAILED", "TIMEOUT", "STOPPED", "SUCCESS"):
            raise RuntimeError(f"task ended: {task['status']} {task['message']}")
        await asyncio.sleep(0.25)
    raise RuntimeError(f"task {task_id} not ready in 120 s: {task.get('status')} {task.get('message')}")


def _video_frames(task: dict) -> tuple[int, float]:
    outputs = task["progress"].get("outputs") or {}
    frames = sum((o.get("frames") or {}).get("video", 0) for o in outputs.values())
    return frames, task["progress"].get("duration", 0.0)


def _dropped(task: dict) -> int:
    """Frames the encoders could not take (their queue was full): what falling behind looks like."""
    return sum(o.get("dropped", 0) for o in (task["progress"].get("outputs") or {}).values())


async def _measure(platform, worker, egress, name: str, payload: dict, window: float) -> dict:
    task_id = (await asyncio.to_thread(egress.start, f"bench{name}{int(time.time())}", payload))["task_id"]
    try:
        await _wait(egress, task_id, lambda t: _video_frames(t)[0] > 0)
        await asyncio.sleep(4)  # past start-up (subscriptions, first keyframes, page load)
        before = await asyncio.to_thread(egress.status, task_id)
        cpu, wall = _tree_cpu_seconds(worker.pid), time.monotonic()
        await asyncio.sleep(window)
        cpu, wall = _tree_cpu_seconds(worker.pid) - cpu, time.monotonic() - wall
        after = await asyncio.to_thread(egress.status, task_id)
    finally:
        await asyncio.to_thread(egress.stop, task_id)
        await _wait(egress, task_id, lambda t: t["status"] in ("STOPPED",))
    (frames_before, seconds_before), (frames_after, seconds_after) = _video_frames(before), _video_frames(after)
    fps = (frames_after - frames_before) / max(seconds_after - seconds_before, 1e-3)
    video = payload["video"]
    return {
        "task": name,
        "output": f"{video['width']}x{video['height']} {video['frameRate']} fps {video['bitrate']} kbps HLS",
        "worker_cpu_cores": cpu / wall,
        "output_fps": fps,
        "real_time_factor": fps / video["frameRate"],
        "frames_dropped": _dropped(after) - _dropped(before),
    }


async def _run(args) -> None:
    from owt.client import EgressClient, ManagementClient
    from owt.localserver import running_platform
    from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack
    from streamengine.media.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-egress-") as workdir,
        # No MCU mixer for the room: the worker runs the task alone.
        running_platform(Path(workdir), MIXER_AUTOSTART="0") as platform,
    ):
        service = platform.api.create_service("bench-egress", "bench-egress-key")
        egress = EgressClient(platform.url, service["_id"], "bench-egress-key")
        api = ManagementClient(platform.url, service["_id"], "bench-egress-key")
        room = api.create_room("bench_egress")["_id"]
        worker = platform.start_worker("bench-egress")
        url = f"{platform.url.replace('http', 'ws')}/ws/signaling/"
        async with ConferenceClient(url) as alice, ConferenceClient(url) as bob:
            for user, client in (("alice", alice), ("bob", bob)):
                await client.join(api.create_token(room, user=user, role="presenter"))
                await client.publish([SyntheticAudioTrack(), SyntheticVideoTrack(640, 360)])
            composite = {"layout": "flat", "channel": room, "format": "hls", "video": VIDEO}
            rows.append(await _measure(platform, worker, egress, "composite", composite, args.window))
        if args.web:
            page = {
                "layout": "freestyle",
                "url": f"{platform.url}/static/egress/testcard.html",
                "format": "hls",
                "video": VIDEO,
            }
            rows.append(await _measure(platform, worker, egress, "freestyle", page, args.window))
    notes = {"inputs": "2 x 640x360 30 fps VP8 + Opus (composite)", "goal": "composite <= 1 core at 1.00x real time"}
    emit("egress", rows, notes=notes)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench egress", description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=10.0, help="seconds measured per task")
    parser.add_argument("--no-web", dest="web", action="store_false", help="skip the freestyle task")
    args = parser.parse_args(argv)
    import django

    django.setup()
    asyncio.run(_run(args))
