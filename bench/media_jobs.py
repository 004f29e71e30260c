"""Media jobs: CPU per passthrough recording vs per transcoded output, recordings one worker holds in real time.

The whole platform runs as processes (portal, Celery data + media workers, beat; embedded
defaults in a temporary directory) and one 640x480 30 fps VP8 + Opus publication from this
process. For each step, N jobs run at once on one media worker (``prefork``, N children);
the worker's CPU (its children's, from ``/proc``) is measured over a window, and a job
"holds" when its video frames written per second stay >= 29 (from the job's progress).

* ``recording``: passthrough into Matroska (no decode, no encode);
* ``streaming-out``: HLS into the portal's folder, H.264 + AAC encoded per output (when that
  job kind is installed), the issue's baseline.

    python -m bench media_jobs                       # ~2 min
    python -m bench media_jobs --recordings 1,4,8,12 --outputs 1,2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from bench.report import emit

CLK_TCK = os.sysconf("SC_CLK_TCK")
TARGET_FPS = 29.0


def _tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and all its descendants (the prefork pool, a capture's browser)."""
    parents, seconds = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        parents[child] = int(fields[1])
        seconds[child] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    tree, grew = {pid}, True
    while grew:
        found = {child for child, parent in parents.items() if parent in tree} - tree
        tree |= found
        grew = bool(found)
    return sum(seconds.get(process, 0.0) for process in tree)


def _spec(kind: str, stream: str) -> tuple[str, dict]:
    media = {"audio": {"from": stream}, "video": {"from": stream}}
    if kind == "recording":
        return "recordings", {"container": "mkv", "media": media}
    return "streaming-outs", {"protocol": "hls", "media": media}  # into the portal's HLS folder


async def _step(platform, room: str, stream: str, kind: str, count: int, window: float) -> dict:
    api = platform.api
    worker = platform.start_worker(f"bench-{kind}-{count}", concurrency=count)
    (collection, body), jobs = _spec(kind, stream), []
    try:
        for _ in range(count):
            jobs.append(api.request("POST", f"/v1/rooms/{room}/{collection}", json=body)["id"])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            states = [api.request("GET", f"/v1/rooms/{room}/{collection}/{j}")["state"] for j in jobs]
            if all(s == "running" for s in states):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(2)  # past start-up (subscribe, first keyframe)
        frames = [api.request("GET", f"/v1/rooms/{room}/{collection}/{j}")["progress"] for j in jobs]
        cpu, wall = _tree_cpu_seconds(worker.pid), time.monotonic()
        await asyncio.sleep(window)
        cpu, wall = _tree_cpu_seconds(worker.pid) - cpu, time.monotonic() - wall
        after = [api.request("GET", f"/v1/rooms/{room}/{collection}/{j}")["progress"] for j in jobs]
        # Frames and duration come from the same heartbeat, so the rate has no sampling lag.
        fps = [
            ((a.get("frames") or {}).get("video", 0) - (b.get("frames") or {}).get("video", 0))
            / max(a.get("duration", 0) - b.get("duration", 0), 1e-3)
            for a, b in zip(after, frames, strict=True)
        ]
        running = sum(api.request("GET", f"/v1/rooms/{room}/{collection}/{j}")["state"] == "running" for j in jobs)
    finally:
        for job in jobs:
            api.request("DELETE", f"/v1/rooms/{room}/{collection}/{job}")
        await asyncio.sleep(1.5)
        worker.terminate()
        worker.wait(30)
        platform.workers.remove(worker)
    return {
        "job": kind,
        "concurrent": count,
        "worker_cpu_%": 100 * cpu / wall,
        "cpu_per_job_%": 100 * cpu / wall / max(running, 1),
        "running": running,  # the others were left pending by the host's CPU budget
        "min_video_fps": min(fps),
        "holds_29fps": min(fps) >= TARGET_FPS,
    }


async def _run(args) -> None:
    from owt.localserver import running_platform
    from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack
    from streamengine.jobs.kinds import __all__ as installed
    from streamengine.media.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    rows = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-media-jobs-") as workdir,
        running_platform(Path(workdir)) as platform,
    ):
        api = platform.api
        room = api.create_room("bench-media-jobs")["id"]
        async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as publisher:
            await publisher.join(api.create_token(room, user="camera", role="presenter"))
            camera = await publisher.publish([SyntheticAudioTrack(), SyntheticVideoTrack(pattern=args.pattern)])
            for count in args.recordings:
                rows.append(await _step(platform, room, camera.id, "recording", count, args.window))
            if "StreamingOutJob" in installed:
                for count in args.outputs:
                    rows.append(await _step(platform, room, camera.id, "streaming-out", count, args.window))
    one = {r["job"]: r["cpu_per_job_%"] for r in rows if r["concurrent"] == 1}
    held = [r["concurrent"] for r in rows if r["job"] == "recording" and r["holds_29fps"]]
    notes = {
        "publication": f"640x480 30 fps VP8 ({args.pattern}) + Opus",
        "max_concurrent_recordings_held": max(held) if held else 0,
    }
    if {"recording", "streaming-out"} <= set(one):
        ratio = one["streaming-out"] / max(one["recording"], 0.01)
        notes["transcoded_output_vs_passthrough_recording_cpu"] = f"{ratio:.1f}x (one job each)"
    emit("media_jobs", rows, notes=notes)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench media_jobs", description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    parser.add_argument("--outputs", type=lambda s: [int(x) for x in s.split(",")], default=[1])
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured per step")
    parser.add_argument("--pattern", default="bars", choices=("bars", "noise"))
    args = parser.parse_args(argv)
    import django

    django.setup()
    asyncio.run(_run(args))
