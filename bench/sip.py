"""SIP: CPU per concurrent call (G.711 ↔ Opus both ways) and the calls one media worker holds without audio gaps.

The whole platform runs as processes (portal, Celery data + media workers, beat; embedded
defaults in a temporary directory). A room has one publisher (a 440 Hz tone, Opus). sipp
(``-sn uas -rtp_echo``, one process for every call) answers each dial-out and echoes the RTP it
receives, so every call carries audio both ways: the room's Opus is decoded, resampled and
sent as G.711 to sipp; sipp's echo comes back as G.711, is resampled and encoded to Opus into
the call's ``sip`` stream. For N concurrent calls on one media worker (prefork, N children:
a call is one job, and a PJSIP call lives in its worker process), the worker tree's CPU is
measured over a window, and this process subscribes to every call's stream and counts its
audio frames: a call "holds" when it delivers >= 48 of its 50 frames per second and no gap
between two frames is longer than 100 ms.

    python -m bench sip                    # ~1.5 min
    python -m bench sip --calls 1,4,8,12
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import tempfile
import time
from pathlib import Path

from bench.media_jobs import _tree_cpu_seconds
from bench.report import emit

FRAMES_PER_SECOND = 50  # 20 ms Opus frames
MAX_GAP_SECONDS = 0.1


async def _listen(session, window: float) -> tuple[float, float]:
    """(frames per second, longest gap in seconds) of one call's stream over ``window``."""
    track = session.tracks["audio"]
    frames, longest = 0, 0.0
    started = last = time.monotonic()
    while (now := time.monotonic()) - started < window:
        try:
            await asyncio.wait_for(track.recv(), timeout=max(window - (now - started), 0.01))
        except TimeoutError:
            break
        now = time.monotonic()
        longest, last = max(longest, now - last), now
        frames += 1
    longest = max(longest, time.monotonic() - last)
    return frames / window, longest


async def _step(platform, client, room: str, stream: str, sipp_port: int, count: int, window: float) -> dict:
    api = platform.api
    worker = platform.start_worker(f"bench-sip-{count}", concurrency=count)
    calls, sessions = [], []
    try:
        body = {
            "peerURI": f"sip:bench@127.0.0.1:{sipp_port}",
            "mediaIn": {"audio": True, "video": False},
            "mediaOut": {"audio": {"from": stream}, "video": False},
        }
        calls = [api.request("POST", f"/v1/rooms/{room}/sipcalls", json=body)["id"] for _ in range(count)]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = [api.request("GET", f"/v1/rooms/{room}/sipcalls/{c}") for c in calls]
            if all(f["call"]["state"] == "connected" and f["input"] for f in found):
                break
            await asyncio.sleep(0.5)
        sessions = [await client.subscribe(call, video=False) for call in calls]
        await asyncio.sleep(2)  # past start-up (first packets, jitter buffers)
        cpu, wall = _tree_cpu_seconds(worker.pid), time.monotonic()
        heard = await asyncio.gather(*(_listen(session, window) for session in sessions))
        cpu, wall = _tree_cpu_seconds(worker.pid) - cpu, time.monotonic() - wall
    finally:
        for session in sessions:
            with contextlib.suppress(Exception):
                await client.unsubscribe(session)
        for call in calls:
            with contextlib.suppress(Exception):
                api.request("DELETE", f"/v1/rooms/{room}/sipcalls/{call}")
        await asyncio.sleep(1.5)
        worker.terminate()
        worker.wait(30)
        platform.workers.remove(worker)
    rates = [rate for rate, _ in heard]
    gaps = [gap for _, gap in heard]
    return {
        "calls": count,
        "worker_cpu_%": 100 * cpu / wall,
        "cpu_per_call_%": 100 * cpu / wall / count,
        "min_frames_per_s": min(rates),
        "max_gap_ms": 1000 * max(gaps),
        "holds": min(rates) >= FRAMES_PER_SECOND - 2 and max(gaps) <= MAX_GAP_SECONDS,
    }


async def _run(args) -> None:
    from owt.localserver import free_port, running_platform
    from streamengine.client import ConferenceClient, SyntheticAudioTrack
    from streamengine.media.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    rows = []
    sipp_port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="bench-sip-") as workdir,
        running_platform(Path(workdir), MIXER_AUTOSTART="0", SIP_BIND_ADDRESS="127.0.0.1") as platform,
    ):
        sipp = subprocess.Popen(
            ["sipp", "-sn", "uas", "-rtp_echo", "-i", "127.0.0.1", "-p", str(sipp_port), "-bg"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        sipp.wait(10)  # -bg: sipp forks into the background and this one exits
        try:
            api = platform.api
            room = api.create_room("bench-sip")["id"]
            async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as client:
                await client.join(api.create_token(room, user="speaker", role="presenter"))
                tone = await client.publish([SyntheticAudioTrack()])
                for count in args.calls:
                    rows.append(await _step(platform, client, room, tone.id, sipp_port, count, args.window))
        finally:
            subprocess.run(["pkill", "-f", f"sipp -sn uas -rtp_echo -i 127.0.0.1 -p {sipp_port}"], check=False)
    held = [row["calls"] for row in rows if row["holds"]]
    notes = {
        "per call": "PCMU 8 kHz <-> Opus 48 kHz both ways (sipp echoes the room's tone)",
        "max_concurrent_calls_held": max(held) if held else 0,
    }
    emit("sip", rows, notes=notes)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench sip", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured per step")
    args = parser.parse_args(argv)
    import django

    django.setup()
    asyncio.run(_run(args))
