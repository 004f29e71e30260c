"""SFU: CPU per forwarded subscriber, max subscribers at >= 29 fps, passthrough vs MediaRelay re-encoding.

One 640x480 30 fps VP8 publication (synthetic, published from this process) and a growing
number of subscribers (aiortc clients that count the encoded frames they receive without
decoding them, spread over worker processes). The portal with its embedded media node
runs in its own process (SQLite in a temporary directory, loopback only), so its CPU
time is measured alone (``/proc/<pid>/stat``). Modes:

* ``passthrough``: the engine forwards the publisher's encoded frames (the default path);
* ``relay``: every subscriber is served by decode + re-encode through aiortc's
  ``MediaRelay`` (the engine's transcoding path forced on), the baseline.

A step holds when every subscriber received >= 29 fps over the measurement window.
Join-to-first-frame = from opening the signaling socket to the first frame received.

    python -m bench sfu                    # ~3 min: noise picture, passthrough 1..32, relay 1..6
    python -m bench sfu --pattern bars --passthrough-steps 1,8,16,32,48 --relay-steps 1,2,4,8,12
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.report import emit, percentile

ROOT = Path(__file__).resolve().parent.parent
TARGET_FPS = 29.0
CLK_TCK = os.sysconf("SC_CLK_TCK")


def _setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "owt.settings")
    django.setup()


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


def _server_env(workdir: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CHANNEL_LAYER")}
    env.update(
        OWT_VAR_DIR=workdir,
        MEDIA_HOST_ADDRESSES="127.0.0.1",
        ICE_SERVERS="[]",
        OWT_TOKEN_LIFETIME_SECONDS="3600",
        DJANGO_SETTINGS_MODULE="owt.settings",
    )
    return env


# --- worker process: many subscribers ----------------------------------------------------


async def _work(url: str) -> None:
    """Commands on stdin (JSON lines): {"add": [tokens], "stream": id} / {"measure": seconds} / {"quit": 1}."""
    from streamengine.client import ConferenceClient
    from streamengine.media.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    subscribers: list[tuple[ConferenceClient, object]] = []
    counts: list[int] = []
    loop = asyncio.get_running_loop()

    async def count(index: int, frames: asyncio.Queue) -> None:
        while True:
            await frames.get()
            counts[index] += 1

    async def join(token: str, stream: str) -> float:
        started = time.perf_counter()
        client = ConferenceClient(url)
        await client.__aenter__()
        await client.join(token)
        session = await client.subscribe(stream, audio=False, encoded=True, timeout=30)
        await asyncio.wait_for(session.frames.get(), 30)
        latency = time.perf_counter() - started
        counts.append(0)
        subscribers.append((client, asyncio.create_task(count(len(counts) - 1, session.frames))))
        return latency

    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            break
        command = json.loads(line)
        if "add" in command:
            latencies = await asyncio.gather(*(join(t, command["stream"]) for t in command["add"]))
            reply = {"latencies": list(latencies)}
        elif "measure" in command:
            before = list(counts)
            await asyncio.sleep(command["measure"])
            reply = {"fps": [(after - b) / command["measure"] for after, b in zip(counts, before, strict=True)]}
        else:
            break
        print(json.dumps(reply), flush=True)
    for client, task in subscribers:
        task.cancel()
        await client.close()


# --- orchestrator ---------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Worker:
    def __init__(self, url: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.sfu", "--worker", url],
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


async def _run_mode(mode: str, steps: list[int], args) -> list[dict]:
    from streamengine.client import ConferenceClient, SyntheticVideoTrack
    from streamengine.media.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-sfu-") as workdir:
        command = [sys.executable, "-m", "bench.sfu", "--serve", "--tokens", str(max(steps) + 1)]
        if mode == "relay":
            command.append("--transcode-all")
        server = subprocess.Popen(
            command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_server_env(workdir)
        )
        workers: list[Worker] = []
        try:
            hello = json.loads(await asyncio.to_thread(server.stdout.readline))
            tokens = hello["tokens"]
            async with ConferenceClient(hello["url"]) as publisher:
                await publisher.join(tokens.pop())
                publication = await publisher.publish([SyntheticVideoTrack(pattern=args.pattern)], video_codec="vp8")
                workers = [Worker(hello["url"]) for _ in range(args.workers)]
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
                    cpu_before, wall_before = _cpu_seconds(server.pid), time.monotonic()
                    measured = await asyncio.gather(*(w.call({"measure": args.window}) for w in workers))
                    cpu = (_cpu_seconds(server.pid) - cpu_before) / (time.monotonic() - wall_before) * 100
                    fps = [x for m in measured for x in m["fps"]]
                    rows.append(
                        {
                            "mode": mode,
                            "subscribers": target,
                            "server_cpu_%": cpu,
                            "min_fps": min(fps) if fps else 0.0,
                            "median_fps": statistics.median(fps) if fps else 0.0,
                            "holds_29fps": bool(fps) and min(fps) >= TARGET_FPS,
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


async def _orchestrate(args) -> None:
    rows = await _run_mode("passthrough", args.passthrough_steps, args)
    rows += await _run_mode("relay", args.relay_steps, args)
    best, capped = _max_holding([r for r in rows if r["mode"] == "passthrough"])
    base, _ = _max_holding([r for r in rows if r["mode"] == "relay"])
    latency = [r for r in rows if r["mode"] == "passthrough" and "join_to_first_frame_ms_p95" in r]
    per_sub = [r["cpu_per_sub_%"] for r in rows if r["mode"] == "passthrough" and "cpu_per_sub_%" in r]
    relay_per_sub = [r["cpu_per_sub_%"] for r in rows if r["mode"] == "relay" and "cpu_per_sub_%" in r]
    notes = {
        "publication": f"640x480 30 fps VP8, synthetic ({args.pattern})",
        "max_subscribers_passthrough": best if capped else f">= {best} (largest tested)",
        "max_subscribers_relay": base,
        "ratio_passthrough_vs_relay": f"{'' if capped else '>= '}{best / base:.1f}x" if base else "n/a",
        "server_cpu_per_subscriber_%_passthrough": round(statistics.median(per_sub), 2) if per_sub else "n/a",
        "server_cpu_per_subscriber_%_relay": round(statistics.median(relay_per_sub), 2) if relay_per_sub else "n/a",
        # The subscribers share the 2 cores with the server, so the fps limit above is often the load
        # generators'; this is what one core of server could carry from the measured slope.
        "est_subscribers_per_server_core_passthrough": round(100 / statistics.median(per_sub)) if per_sub else "n/a",
        "est_subscribers_per_server_core_relay": round(100 / statistics.median(relay_per_sub), 1)
        if relay_per_sub
        else "n/a",
        "join_to_first_frame_ms_single_subscriber": next(
            (
                round(r["join_to_first_frame_ms_p50"])
                for r in rows
                if r["mode"] == "passthrough" and r["subscribers"] == 1
            ),
            "n/a",
        ),
        "join_to_first_frame_ms_p50_p95_all_joins": (
            f"{latency[0]['join_to_first_frame_ms_p50']:.0f} / {latency[0]['join_to_first_frame_ms_p95']:.0f}"
            if latency
            else "n/a"
        ),
        "cores": os.cpu_count(),
        "note": "subscribers (aiortc, no decoding) share the machine's cores with the server",
    }
    columns = [
        "mode",
        "subscribers",
        "server_cpu_%",
        "cpu_per_sub_%",
        "min_fps",
        "median_fps",
        "holds_29fps",
        "join_to_first_frame_ms_p50",
    ]
    emit("sfu", rows, notes=notes, columns=columns)


def _steps(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench sfu", description=__doc__.splitlines()[0])
    parser.add_argument("--passthrough-steps", type=_steps, default=_steps("1,8,16,24,32"))
    parser.add_argument("--relay-steps", type=_steps, default=_steps("1,2,4,6"))
    parser.add_argument("--window", type=float, default=4.0, help="seconds measured per step")
    parser.add_argument("--settle", type=float, default=2.0, help="seconds waited after subscribers join")
    parser.add_argument("--workers", type=int, default=2, help="subscriber processes")
    parser.add_argument("--stop-below", type=float, default=1.0, help="stop a mode when min fps < this x 29")
    parser.add_argument(
        "--pattern", choices=["bars", "noise"], default="noise", help="synthetic picture (noise: full bitrate)"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--transcode-all", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--tokens", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--worker", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    _setup_django()
    if args.serve:
        asyncio.run(_serve(args.transcode_all, args.tokens))
    elif args.worker:
        asyncio.run(_work(args.worker))
    else:
        asyncio.run(_orchestrate(args))


if __name__ == "__main__":
    main(sys.argv[1:])
