"""SFU: server CPU per subscriber and max fan-out at >= 29 fps, forwarding vs MediaRelay re-encoding.

One 640x480 30 fps VP8 publication (synthetic, published from this process) and a growing
number of subscribers in worker processes. The subscribers are cheap: they count and check
the RTP packets (one SSRC, no sequence gaps, a keyframe first) and decode only their first
frames, without aiortc's jitter buffer, NACKs or decoder, so the machine's cores go to the
server. The portal with its embedded media node runs in its own process (SQLite in a
temporary directory, loopback only), so its CPU time is measured alone (``/proc/<pid>/stat``);
server CPU per subscriber is the slope over the steps. Modes:

* ``rtp`` (the default path): the engine forwards the publisher's RTP packets, rewritten
  per subscriber (``streamengine/media/rtpforward.py``);
* ``frames`` (``MEDIA_FORWARD_RTP=0``): it forwards the publisher's encoded frames
  (depacketized once, packetized again per subscriber by aiortc's sender);
* ``relay``: every subscriber is served by decode + re-encode through aiortc's
  ``MediaRelay`` (the engine's transcoding path forced on), the baseline.

A step holds when every subscriber received >= 29 fps (frames = RTP marker bits) over the
measurement window. Join-to-first-frame = from opening the signaling socket to the first packet.

    python -m bench sfu                    # ~3 min: rtp 1..64 and relay 1..6 subscribers, 1.5 Mbps
    python -m bench sfu --modes rtp,frames,relay --pattern noise   # the ~11 Mbps worst case
    python -m bench sfu --pattern bars --forward-steps 1,16,32,64 --relay-steps 1,2,4,8,12
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import fractions
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av
import numpy as np
from aiortc.codecs.vpx import vp8_depayload
from aiortc.mediastreams import MediaStreamTrack

from bench.report import emit, percentile
from streamengine.media.rtpforward import is_keyframe_start

ROOT = Path(__file__).resolve().parent.parent
TARGET_FPS = 29.0
FRAMERATE = 30
VIDEO_CLOCK = 90000
MODES = ("rtp", "frames", "relay")
DEFAULT_MODES = "rtp,relay"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")
    django.setup()


# --- publisher: pre-encoded video -------------------------------------------------------------


class PreEncodedVideoTrack(MediaStreamTrack):
    """640x480 30 fps VP8 encoded once, up front, and sent in a loop: the publisher costs no
    encoder, so the machine's cores go to the server and the subscribers.

    ``pattern``: ``grain`` (a bar sweeping over a gradient with film-grain noise: the encoder
    reaches ``kbps``), ``bars`` (the same without grain: far below it) or ``noise`` (random
    luma: the encoder overshoots any target, ~10 Mbps). The loop starts with a keyframe;
    :meth:`restart` (a keyframe request) makes it the next frame, as an encoder would.
    """

    kind = "video"

    def __init__(self, pattern: str, kbps: float, seconds: float = 2.0) -> None:
        from streamengine.client import SyntheticVideoTrack
        from streamengine.media.encoding import VideoEncoder

        super().__init__()
        source = SyntheticVideoTrack(pattern="noise" if pattern == "noise" else "bars")
        encoder = VideoEncoder("vp8", 640, 480, FRAMERATE, kbps, keyframe_seconds=1000)
        grain = np.random.default_rng(17)
        self.packets: list[bytes] = []
        for index in range(int(seconds * FRAMERATE)):
            luma = np.frombuffer(source.planes[index % len(source.planes)], np.uint8)
            if pattern == "grain":
                luma = luma + grain.integers(0, 16, luma.size, dtype=np.uint8)  # the gradient tops at 235
            frame = av.VideoFrame(640, 480, "yuv420p")
            for plane, data in zip(frame.planes, (luma.tobytes(), *source.chroma), strict=True):
                plane.update(data)
            self.packets += [bytes(p) for p in encoder.encode(frame, index * VIDEO_CLOCK // FRAMERATE)]
        self.kbps = sum(map(len, self.packets)) * 8 / 1000 / seconds
        self.index = 0
        self.sent = 0
        self.started: float | None = None

    def restart(self) -> None:
        self.index = 0

    async def recv(self) -> av.Packet:
        if self.started is None:
            self.started = time.monotonic()
        delay = self.started + self.sent / FRAMERATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        packet = av.Packet(self.packets[self.index])
        packet.pts, packet.time_base = self.sent * VIDEO_CLOCK // FRAMERATE, fractions.Fraction(1, VIDEO_CLOCK)
        self.index = (self.index + 1) % len(self.packets)
        self.sent += 1
        return packet


# --- server process: portal + embedded node --------------------------------------------


async def _serve(transcode_all: bool, tokens: int) -> None:
    from django.core.management import call_command

    from owt.asgi import application
    from streamengine import services
    from streamengine.asgi_ws import serve_asgi
    from streamengine.node import ensure_embedded_node

    await asyncio.to_thread(call_command, "migrate", verbosity=0)
    config = {
        "roles": [
            {
                "role": "presenter",
                "publish": {"audio": True, "video": True},
                "subscribe": {"audio": True, "video": True},
            }
        ]
    }

    def prepare() -> list[str]:
        services.domain_configure(domain_id="bench", owner="bench", config=config)
        return [services.token_create(domain_id="bench", user=f"u{i}", role="presenter") for i in range(tokens)]

    issued = await asyncio.to_thread(prepare)
    await ensure_embedded_node(transcode_all=transcode_all)
    async with serve_asgi(application) as base:
        print(json.dumps({"url": f"{base}/ws/signaling/", "tokens": issued}), flush=True)
        # Run until the orchestrator closes our stdin.
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)


def _server_env(workdir: str, mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CHANNEL_LAYER")}
    env.update(
        MEDIA_FORWARD_RTP="0" if mode == "frames" else "1",
        OWT_VAR_DIR=workdir,
        MEDIA_HOST_ADDRESSES="127.0.0.1",
        ICE_SERVERS="[]",
        OWT_TOKEN_LIFETIME_SECONDS="3600",
        DJANGO_SETTINGS_MODULE="owt.settings",
    )
    return env


# --- worker process: many subscribers ----------------------------------------------------


class RtpCheck:
    """One cheap subscriber's video: counts and validates the RTP packets, decodes a sample.

    No jitter buffer, NACK or decoder thread (``ConferenceClient.subscribe(rtp=...)``), so a
    subscriber costs little more than its SRTP decryption: the benchmark measures the server.
    Checks: one SSRC, the first packet starts a keyframe, sequence numbers (a gap is a
    packet missing when a later one came; it is lost if it never comes, a retransmission of
    the node's own NACK to the publisher may fill it); the first ``decode`` frames are
    reassembled in sequence order and decoded with PyAV.
    """

    def __init__(self, decode: int) -> None:
        self.ssrcs: set[int] = set()
        self.packets = self.frames = self.bytes = self.gaps = self.reordered = 0
        self.last_seq: int | None = None
        self.missing: set[int] = set()
        self.keyframe_first: bool | None = None
        self.first = asyncio.Event()
        self.decode_left = decode
        self.decoder = av.CodecContext.create("vp8", "r") if decode else None
        self.pending: dict[int, object] = {}  # the sample's packets by sequence number
        self.next_seq: int | None = None
        self.partial: list[bytes] = []
        self.decoded: list[tuple[int, int]] = []
        self.decode_errors = 0

    def __call__(self, kind: str, packet) -> None:
        if kind != "video":
            return
        self.packets += 1
        self.bytes += len(packet.payload)
        self.ssrcs.add(packet.ssrc)
        seq = packet.sequence_number
        if self.last_seq is None:
            self.keyframe_first = is_keyframe_start("vp8", packet.payload)
            self.first.set()
            self.last_seq = self.next_seq = seq
        else:
            ahead = (seq - self.last_seq) & 0xFFFF
            if ahead and ahead < 0x8000:
                self.gaps += ahead - 1
                if len(self.missing) < 10000:
                    self.missing.update((self.last_seq + i) & 0xFFFF for i in range(1, ahead))
                self.last_seq = seq
            else:
                self.reordered += 1
                self.missing.discard(seq)
        if packet.marker:
            self.frames += 1
        if self.decode_left:
            self._sample(packet)

    def _sample(self, packet) -> None:
        """Decode the first frames, their packets put back in order (a late one is waited for)."""
        self.pending[packet.sequence_number] = packet
        while self.decode_left and self.next_seq in self.pending:
            packet = self.pending.pop(self.next_seq)
            self.next_seq = (self.next_seq + 1) & 0xFFFF
            self.partial.append(vp8_depayload(packet.payload))
            if packet.marker:
                self.decode_left -= 1
                try:
                    frames = self.decoder.decode(av.Packet(b"".join(self.partial)))
                    self.decoded += [(f.width, f.height) for f in frames]
                except av.FFmpegError:
                    self.decode_errors += 1
                self.partial = []
        if not self.decode_left:
            self.pending.clear()

    def report(self) -> dict:
        return {
            "ssrcs": len(self.ssrcs),
            "gaps": self.gaps,
            "lost": len(self.missing),
            "reordered": self.reordered,
            "keyframe_first": bool(self.keyframe_first),
            "decoded": len(self.decoded),
            "decoded_640x480": sum(size == (640, 480) for size in self.decoded),
            "decode_errors": self.decode_errors,
        }


async def _work(url: str, decode: int) -> None:
    """Commands on stdin (JSON lines): {"add": [tokens], "stream": id} / {"measure": seconds} / {"quit": 1}."""
    from streamengine.client import ConferenceClient
    from streamengine.media.ice import use_host_addresses, use_receive_buffer

    use_host_addresses(["127.0.0.1"])
    # Browser-sized: a keyframe's burst is not lost while the busy machine schedules us late.
    use_receive_buffer(4 * 1024 * 1024)
    subscribers: list[tuple[ConferenceClient, RtpCheck]] = []
    loop = asyncio.get_running_loop()

    async def join(token: str, stream: str) -> float:
        started = time.perf_counter()
        client = ConferenceClient(url)
        await client.__aenter__()
        await client.join(token)
        check = RtpCheck(decode)
        await client.subscribe(stream, audio=False, rtp=check, timeout=30)
        await asyncio.wait_for(check.first.wait(), 30)
        subscribers.append((client, check))
        return time.perf_counter() - started

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        if "add" in command:
            latencies = await asyncio.gather(*(join(t, command["stream"]) for t in command["add"]))
            reply = {"latencies": list(latencies)}
        elif "measure" in command:
            window = command["measure"]
            before = [(check.frames, check.packets, check.bytes) for _, check in subscribers]
            await asyncio.sleep(window)
            rates = [
                ((c.frames - f) / window, (c.packets - p) / window, (c.bytes - b) * 8 / 1000 / window)
                for (_, c), (f, p, b) in zip(subscribers, before, strict=True)
            ]
            reply = {"rates": rates, "checks": [check.report() for _, check in subscribers]}
        elif "ping" in command:
            reply = {}
        else:
            break
        print(json.dumps(reply), flush=True)
    for client, _ in subscribers:
        await client.close()


# --- orchestrator ---------------------------------------------------------------------------


def _cpu_times(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLK_TCK, int(fields[12]) / CLK_TCK


def _cpu_seconds(pid: int) -> float:
    return sum(_cpu_times(pid))


class Worker:
    def __init__(self, url: str, decode: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sfu", "--worker", url, "--decode", str(decode)],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "owt.settings"},
        )

    async def call(self, command: dict) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = await asyncio.to_thread(self.process.stdout.readline)
        if not line:
            raise RuntimeError("bench worker exited")
        return json.loads(line)

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(30)


def _check_failures(check: dict, decode: int) -> list[str]:
    """How a subscriber's stream was not what the publisher sent, as a decoder needs it."""
    failures = {
        "several SSRCs": check["ssrcs"] != 1,
        "first packet not a keyframe": not check["keyframe_first"],
        "decode errors": check["decode_errors"] > 0,
        f"fewer than {decode} frames decoded at 640x480": check["decoded_640x480"] < decode,
    }
    return [reason for reason, failed in failures.items() if failed]


async def _run_mode(mode: str, steps: list[int], args) -> list[dict]:
    from streamengine.client import ConferenceClient
    from streamengine.media.ice import use_host_addresses
    from streamengine.media.passthrough import route_keyframe_requests

    use_host_addresses(["127.0.0.1"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sfu-") as workdir:
        command = [sys.executable, "-m", "bench.sfu", "--serve", "--tokens", str(max(steps) + 1)]
        if mode == "relay":
            command.append("--transcode-all")
        server = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_server_env(workdir, mode)
        )
        workers: list[Worker] = []
        try:
            hello = json.loads(await asyncio.to_thread(server.stdout.readline))
            tokens = hello["tokens"]
            async with ConferenceClient(hello["url"]) as publisher:
                await publisher.join(tokens.pop())
                video = PreEncodedVideoTrack(args.pattern, args.kbps)
                publication = await publisher.publish([video], video_codec="vp8")
                # The server's keyframe requests restart the loop at its keyframe.
                route_keyframe_requests(publication.pc.getSenders()[0], video.restart)
                workers = [Worker(hello["url"], args.decode) for _ in range(args.workers)]
                await asyncio.gather(*(w.call({"ping": 1}) for w in workers))  # started: imports done
                await asyncio.sleep(args.settle)
                latencies: list[float] = []
                current = 0
                for target in [0, *steps]:
                    additions = [tokens.pop() for _ in range(target - current)]
                    shares = [additions[i :: len(workers)] for i in range(len(workers))]
                    replies = await asyncio.gather(
                        *(
                            w.call({"add": s, "stream": publication.id})
                            for w, s in zip(workers, shares, strict=True)
                            if s
                        )
                    )
                    latencies += [x for r in replies for x in r["latencies"]]
                    current = target
                    await asyncio.sleep(args.settle)
                    pids = [w.process.pid for w in workers]
                    (user_before, sys_before), clients_before = _cpu_times(server.pid), sum(map(_cpu_seconds, pids))
                    wall_before, sent_before = time.monotonic(), video.sent
                    measured = await asyncio.gather(*(w.call({"measure": args.window}) for w in workers))
                    wall = time.monotonic() - wall_before
                    user, system = _cpu_times(server.pid)
                    user, system = (user - user_before) / wall * 100, (system - sys_before) / wall * 100
                    clients = (sum(map(_cpu_seconds, pids)) - clients_before) / wall * 100
                    rates = [x for m in measured for x in m["rates"]]
                    fps = [r[0] for r in rates]
                    checks = [c for m in measured for c in m["checks"]]
                    rows.append(
                        {
                            "mode": mode,
                            "subscribers": target,
                            "server_cpu_%": user + system,
                            "server_sys_cpu_%": system,
                            "clients_cpu_%": clients,
                            # What the publisher sent meanwhile: below 29, the machine starved the source.
                            "source_fps": (video.sent - sent_before) / wall,
                            "min_fps": min(fps) if fps else 0.0,
                            "median_fps": statistics.median(fps) if fps else 0.0,
                            "packets_per_s": statistics.median(r[1] for r in rates) if rates else 0.0,
                            "kbps": statistics.median(r[2] for r in rates) if rates else 0.0,
                            "holds_29fps": bool(fps) and min(fps) >= TARGET_FPS,
                            "seq_gaps": sum(c["gaps"] for c in checks),
                            "lost": sum(c["lost"] for c in checks),
                            "failed_checks": sum(bool(_check_failures(c, args.decode)) for c in checks),
                            "check_failures": dict(
                                collections.Counter(f for c in checks for f in _check_failures(c, args.decode))
                            ),
                            "join_to_first_frame_ms_p50": 1000 * percentile(latencies, 0.5) if latencies else 0.0,
                        }
                    )
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
                    if fps and min(fps) < TARGET_FPS * args.stop_below:
                        break
                if latencies:
                    rows[-1]["join_to_first_frame_ms_p95"] = 1000 * percentile(latencies, 0.95)
        finally:
            for worker in workers:
                worker.close()
            server.stdin.close()
            server.wait(30)
    idle = rows[0]["server_cpu_%"]
    for row in rows[1:]:
        row["cpu_per_sub_%"] = (row["server_cpu_%"] - idle) / row["subscribers"]
    return rows


def _max_holding(rows: list[dict]) -> tuple[int, bool]:
    """Largest subscriber count that held 29 fps, and whether a larger tested count failed."""
    held = [r["subscribers"] for r in rows if r["subscribers"] and r["holds_29fps"]]
    failed = any(r["subscribers"] and not r["holds_29fps"] for r in rows)
    return (max(held) if held else 0), failed


def _per_subscriber(rows: list[dict], column: str) -> float | None:
    """% of one core per subscriber: the slope of ``column`` over the steps (idle step included)."""
    if len(rows) < 2:
        return None
    return statistics.linear_regression([r["subscribers"] for r in rows], [r[column] for r in rows]).slope


def _summary(mode: str, rows: list[dict]) -> dict:
    best, capped = _max_holding(rows)
    per_sub = _per_subscriber(rows, "server_cpu_%")
    kernel = _per_subscriber(rows, "server_sys_cpu_%")
    clients = _per_subscriber(rows, "clients_cpu_%")
    packet_rate = statistics.median(r["packets_per_s"] for r in rows[1:]) if len(rows) > 1 else 0
    latency = [r for r in rows if "join_to_first_frame_ms_p95" in r]
    return {
        f"{mode}: max_subscribers_at_29fps": best if capped else f">= {best} (largest tested)",
        f"{mode}: server_cpu_per_subscriber_%": round(per_sub, 2) if per_sub is not None else "n/a",
        # System time: the sends' kernel work, on loopback including delivery to (and waking) the
        # subscriber processes, which a network interface would not cost.
        f"{mode}: of_which_kernel_%": round(kernel, 2) if kernel is not None else "n/a",
        f"{mode}: est_subscribers_per_server_core": round(100 / per_sub) if per_sub else "n/a",
        # Forwarding costs per packet sent (SRTP, a send system call each): the figure scales with packets/s.
        f"{mode}: server_us_per_packet_per_subscriber": (
            round(per_sub / 100 / packet_rate * 1e6, 1) if per_sub is not None and packet_rate else "n/a"
        ),
        f"{mode}: subscriber_processes_cpu_per_subscriber_%": round(clients, 2) if clients is not None else "n/a",
        # The checks hold for a subscriber's whole life: the last step has them all.
        f"{mode}: failed_subscriber_checks": f"{rows[-1]['failed_checks']} {rows[-1]['check_failures'] or ''}".strip(),
        f"{mode}: join_to_first_frame_ms_p50_p95": (
            f"{latency[0]['join_to_first_frame_ms_p50']:.0f} / {latency[0]['join_to_first_frame_ms_p95']:.0f}"
            if latency
            else "n/a"
        ),
    }


async def _orchestrate(args) -> None:
    rows: list[dict] = []
    notes: dict = {"publication": f"640x480 30 fps VP8, pre-encoded ({args.pattern}, target {args.kbps:.0f} kbps)"}
    per_sub: dict[str, float | None] = {}
    for mode in args.modes:
        mode_rows = await _run_mode(mode, args.relay_steps if mode == "relay" else args.forward_steps, args)
        rows += mode_rows
        per_sub[mode] = _per_subscriber(mode_rows, "server_cpu_%")
        notes.update(_summary(mode, mode_rows))
    relay = per_sub.get("relay")
    for mode, value in per_sub.items():
        if mode != "relay" and relay and value:
            notes[f"relay_cpu_per_subscriber / {mode}_cpu_per_subscriber"] = f"{relay / value:.0f}x"
    notes.update(
        cores=os.cpu_count(),
        note=(
            "server CPU per subscriber = slope of the server process's CPU over the steps; the subscribers "
            "(cheap RTP receivers, separate processes) and the publisher share the machine's cores"
        ),
    )
    columns = [
        "mode",
        "subscribers",
        "server_cpu_%",
        "server_sys_cpu_%",
        "cpu_per_sub_%",
        "clients_cpu_%",
        "source_fps",
        "min_fps",
        "median_fps",
        "packets_per_s",
        "kbps",
        "holds_29fps",
        "seq_gaps",
        "lost",
        "failed_checks",
        "join_to_first_frame_ms_p50",
    ]
    emit("sfu", rows, notes=notes, columns=columns)


def _steps(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def _modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()]
    unknown = set(modes) - set(MODES)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown mode(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODES)}"
        )
    return modes


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench sfu", description=__doc__.splitlines()[0])
    parser.add_argument("--modes", type=_modes, default=_modes(DEFAULT_MODES), help=f"of {', '.join(MODES)}")
    parser.add_argument("--forward-steps", type=_steps, default=_steps("1,16,32,48,64"))
    parser.add_argument("--relay-steps", type=_steps, default=_steps("1,2,4,6"))
    parser.add_argument("--window", type=float, default=4.0, help="seconds measured per step")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds waited after subscribers join")
    parser.add_argument("--workers", type=int, default=2, help="subscriber processes")
    parser.add_argument("--decode", type=int, default=10, help="frames each subscriber decodes (from its first)")
    parser.add_argument("--stop-below", type=float, default=1.0, help="stop a mode when min fps < this x 29")
    parser.add_argument(
        "--pattern",
        choices=["grain", "bars", "noise"],
        default="grain",
        help="picture: grain reaches --kbps, bars stays far below, noise overshoots (~10 Mbps)",
    )
    parser.add_argument("--kbps", type=float, default=1500, help="the publication's target bitrate")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--transcode-all", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _setup_django()
    if args.serve:
        asyncio.run(_serve(args.transcode_all, args.tokens))
    elif args.worker:
        asyncio.run(_work(args.worker, args.decode))
    else:
        asyncio.run(_orchestrate(args))


if __name__ == "__main__":
    main(sys.argv[1:])
