"""MCU mixer: CPU of one view's mixer (4 inputs → one VP8 picture), its added latency, cost per subscriber.

The platform runs as processes (portal with the SFU, Celery data + media workers, beat;
embedded defaults in a temporary directory, ``MIXER_AUTOSTART=1``). Four publishers in this
process send 640x360 video at 30 fps (``bars`` pattern) and a tone; the room's view mixes
them into 640x480 at 24 fps, VP8 (OWT's defaults). Measured:

* **mixer CPU**: the media worker's CPU (``/proc``; the mixer is its only job) over a window,
  in % of one core, with the mixer's own frame counts (inputs decoded, pictures encoded);
* **added latency**: one input (a solid colour) changes colour; the time until a subscriber of
  the mixed stream sees it, minus the time until a direct subscriber of that input sees it
  (the mixer's decode + composite + encode + second hop), median of ``--flips``. The other
  inputs loop a pre-encoded VP8 clip (no encoding in this process), so the publishers take
  little of the machine;
* **per extra subscriber**: N subscribers of the mixed stream (encoded, not decoded, so they
  cost this process little): the portal's (SFU's) CPU per subscriber and the media worker's
  CPU, which should not grow (every subscriber gets the same encoded frames).

    python -m bench mixer                      # ~1.5 min
    python -m bench mixer --subscribers 1,4,8 --window 8
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import av
from aiortc.mediastreams import MediaStreamTrack

from bench.media_jobs import _tree_cpu_seconds
from bench.report import emit
from streamengine.media.encoding import VideoEncoder

VIEW = {"label": "common", "video": {"parameters": {"resolution": {"width": 640, "height": 480}, "framerate": 24}}}
FLIP_COLOURS = ((255, 0, 0), (0, 0, 255))


async def _wait(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await condition()
        if result:
            return result
        await asyncio.sleep(0.25)
    raise RuntimeError(f"timed out waiting for {what}")


async def _cpu_percent(pid: int, window: float) -> float:
    before, started = _tree_cpu_seconds(pid), time.monotonic()
    await asyncio.sleep(window)
    return 100 * (_tree_cpu_seconds(pid) - before) / (time.monotonic() - started)


class PreEncodedVideoTrack(MediaStreamTrack):
    """A publisher that costs almost nothing: a clip encoded once, its VP8 packets looped at
    30 fps (aiortc only packetizes packets), so the machine's CPU is left to the mixer."""

    kind = "video"

    def __init__(self, packets: list[bytes]) -> None:
        super().__init__()
        self.packets = packets
        self.sent = 0
        self.started: float | None = None

    async def recv(self) -> av.Packet:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        due = self.started + self.sent / 30
        if due > now:
            await asyncio.sleep(due - now)
        packet = av.Packet(self.packets[self.sent % len(self.packets)])
        packet.pts, packet.time_base = self.sent * 3000, Fraction(1, 90000)
        self.sent += 1
        return packet


def encoded_clip(width: int, height: int, seconds: int = 2) -> list[bytes]:
    """``seconds`` of the moving-bars pattern in VP8 (a keyframe each second)."""
    from streamengine.client import SyntheticVideoTrack

    pattern = SyntheticVideoTrack(width, height, pattern="bars")
    encoder = VideoEncoder("vp8", width, height, 30, 800, 1)
    packets = []
    for index in range(30 * seconds):
        frame = av.VideoFrame(width, height, "yuv420p")
        frame.planes[0].update(pattern.planes[index % len(pattern.planes)])
        frame.planes[1].update(pattern.chroma[0])
        frame.planes[2].update(pattern.chroma[1])
        packets += [bytes(packet) for packet in encoder.encode(frame, index * 3000)]
    return packets


class ColourWatch:
    """Reads a decoded track continuously (so no frames queue up unread) and notes when the
    pixel at (x, y) turns red or blue."""

    def __init__(self, track, x: int, y: int) -> None:
        self.track, self.x, self.y = track, x, y
        self.changes: list[tuple[float, bool]] = []
        self.task = asyncio.create_task(self._watch())

    async def _watch(self) -> None:
        red: bool | None = None
        while True:
            frame = await self.track.recv()
            pixel = frame.to_ndarray(format="rgb24")[self.y, self.x]
            now_red = int(pixel[0]) > 160 and int(pixel[2]) < 100
            if now_red != red:
                red = now_red
                self.changes.append((time.monotonic(), red))

    def seen(self, red: bool, after: float) -> float | None:
        return next((at for at, colour in self.changes if colour == red and at >= after), None)


async def _added_latency(viewer, flipping, stream_id: str, mixed: str, flips: int) -> list[float]:
    # The flipping input is the first one: the top-left region of the 2x2 template.
    direct = ColourWatch((await viewer.subscribe(stream_id, audio=False)).tracks["video"], 320, 180)
    mix = ColourWatch((await viewer.subscribe(mixed, audio=False)).tracks["video"], 160, 120)
    await asyncio.sleep(2)
    added = []
    try:
        for flip in range(flips):
            red = flip % 2 == 1
            flipped = time.monotonic()
            flipping.set_color(FLIP_COLOURS[0] if red else FLIP_COLOURS[1])
            await asyncio.sleep(1.5)
            direct_at, mixed_at = direct.seen(red, flipped), mix.seen(red, flipped)
            if direct_at is not None and mixed_at is not None:
                added.append(1000 * (mixed_at - direct_at))
    finally:
        direct.task.cancel()
        mix.task.cancel()
    return added


async def _run(args) -> None:
    from owt.localserver import running_platform
    from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack
    from streamengine.media.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    rows: list[dict] = []
    with (
        tempfile.TemporaryDirectory(prefix="bench-mixer-") as workdir,
        running_platform(Path(workdir), MIXER_AUTOSTART="1") as platform,
    ):
        api = platform.api
        room = api.create_room("bench-mixer", {"views": [VIEW]})["id"]
        mixed = f"{room}-common"
        worker = platform.start_worker("bench-mixer")
        signaling = f"{platform.url.replace('http', 'ws')}/ws/signaling/"
        clients = [ConferenceClient(signaling) for _ in range(args.inputs + 1)]
        for client in clients:
            await client.__aenter__()
        try:
            flipping = SyntheticVideoTrack(640, 360, pattern="solid", color=FLIP_COLOURS[1])
            clip = encoded_clip(640, 360)
            streams = []
            for index, client in enumerate(clients[:-1]):
                await client.join(api.create_token(room, user=f"input-{index}", role="presenter"))
                video = flipping if index == 0 else PreEncodedVideoTrack(clip)
                streams.append((await client.publish([SyntheticAudioTrack(), video], video_codec="vp8")).id)
            viewer = clients[-1]
            await viewer.join(api.create_token(room, user="viewer", role="viewer"))

            async def mixing_all():
                jobs = api.request("GET", "/v1.1/stream-engine/processors")["data"]
                processor = next((j for j in jobs if j["domain"] == room and j["type"] == "video"), None)
                return processor if processor and len(processor["inputs"]["video"]) == args.inputs else None

            processor = await _wait(mixing_all, 60, f"the mixer to take {args.inputs} inputs")
            await asyncio.sleep(3)  # past start-up (keyframes, first layouts)
            detail = f"/v1.1/stream-engine/processors/{processor['id']}"
            progress = api.request("GET", detail)["info"]["progress"]
            cpu = await _cpu_percent(worker.pid, args.window)
            rate = api.request("GET", detail)["info"]["progress"]
            seconds = max(rate["duration"] - progress["duration"], 1e-3)
            rows.append(
                {
                    "measure": f"mixer, {args.inputs} inputs 640x360 -> 640x480 24 fps VP8",
                    "media_worker_cpu_%": cpu,
                    "inputs_decoded_fps": (rate["framesIn"] - progress["framesIn"]) / seconds,
                    "output_fps": (rate["framesOut"] - progress["framesOut"]) / seconds,
                    "encode_ms_per_picture": rate["encodeMs"],
                }
            )
            added = await _added_latency(viewer, flipping, streams[0], mixed, args.flips)
            latency = {
                "added_latency_ms_median": round(statistics.median(added), 1) if added else None,
                "added_latency_ms_max": round(max(added), 1) if added else None,
                "latency_samples": len(added),
            }
            await viewer.close()
            clients.pop()
            subscribers: list[ConferenceClient] = []
            baseline_portal = await _cpu_percent(platform.portal_pid, args.window)
            baseline_worker = await _cpu_percent(worker.pid, args.window)
            for count in args.subscribers:
                while len(subscribers) < count:
                    client = ConferenceClient(signaling)
                    await client.__aenter__()
                    await client.join(api.create_token(room, user=f"sub-{len(subscribers)}", role="viewer"))
                    await client.subscribe(mixed, encoded=True)
                    subscribers.append(client)
                await asyncio.sleep(2)
                portal, media = await asyncio.gather(
                    _cpu_percent(platform.portal_pid, args.window), _cpu_percent(worker.pid, args.window)
                )
                rows.append(
                    {
                        "measure": f"{count} subscribers of the mixed stream",
                        "portal_cpu_%": portal,
                        "portal_cpu_per_subscriber_%": (portal - baseline_portal) / count,
                        "media_worker_cpu_%": media,
                        "media_worker_delta_%": media - baseline_worker,
                    }
                )
            for client in subscribers:
                await client.close()
        finally:
            for client in clients:
                await client.close()
    notes = {**latency, "goal": "4-input mix <= 1 core (100 %), <= 150 ms added latency"}
    columns = ["measure", "media_worker_cpu_%", "inputs_decoded_fps", "output_fps", "encode_ms_per_picture"]
    columns += ["portal_cpu_%", "portal_cpu_per_subscriber_%", "media_worker_delta_%"]
    emit("mixer", rows, notes=notes, columns=columns)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench mixer", description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=4)
    parser.add_argument("--subscribers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    parser.add_argument("--window", type=float, default=6.0, help="seconds measured per step")
    parser.add_argument("--flips", type=int, default=8, help="colour changes timed for the latency")
    args = parser.parse_args(argv)
    import django

    django.setup()
    asyncio.run(_run(args))
