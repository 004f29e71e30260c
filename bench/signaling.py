"""Signaling framings: join-to-first-frame over socket.io vs JSON frames; one more subscription on a shared transport.

A real portal (daphne, embedded defaults in a temporary directory, loopback only) and one
640x480 30 fps VP8 publication. Two measurements:

* **join**: connect, log in, subscribe to the video, first *decoded* frame, for a fresh
  client each time: the JSON-frame client (``/ws/signaling/``), the OWT JS SDK's sequence
  over socket.io straight on a WebSocket, and over socket.io's default polling + upgrade;
* **renegotiate**: one client adds subscriptions to the same stream one by one: on one
  shared RTCPeerConnection (SDK flow: each is a new offer with every m-line so far) vs a
  new peer connection per subscription (JSON client); time to the new track's first
  decoded frame and the portal's CPU time per added subscription.

    python -m bench signaling                # ~1 min
    python -m bench signaling --joins 20 --subscriptions 12
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

from bench.report import emit, percentile

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _cpu_ms(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK * 1000


async def _first_frame(track) -> None:
    await asyncio.wait_for(track.recv(), 20)


async def _join_json(url: str, token: str, stream: str) -> float:
    from streamengine.client import ConferenceClient

    started = time.perf_counter()
    async with ConferenceClient(url.replace("http://", "ws://") + "/ws/signaling/") as client:
        await client.join(token)
        subscription = await client.subscribe(stream, audio=False)
        await _first_frame(subscription.tracks["video"])
        return time.perf_counter() - started


async def _join_sio(url: str, token: str, stream: str, transports: list[str]) -> float:
    from streamengine.sdkflow import SdkFlowClient

    started = time.perf_counter()
    async with SdkFlowClient(url, transports=transports) as client:
        await client.join(token)
        subscription = await client.subscribe(stream, audio=False)
        await _first_frame(subscription.tracks["video"])
        return time.perf_counter() - started


async def _renegotiate(url: str, token: str, stream: str, count: int, pid: int, shared: bool) -> list[dict]:
    from streamengine.client import ConferenceClient
    from streamengine.sdkflow import SdkFlowClient

    rows = []
    client = (
        SdkFlowClient(url, transports=["websocket"])
        if shared
        else ConferenceClient(url.replace("http://", "ws://") + "/ws/signaling/")
    )
    async with client:
        await client.join(token)
        for index in range(1, count + 1):
            cpu, started = _cpu_ms(pid), time.perf_counter()
            subscription = await client.subscribe(stream, audio=False)
            ready = time.perf_counter() - started
            await _first_frame(subscription.tracks["video"])
            first = time.perf_counter() - started
            await asyncio.sleep(0.3)  # let the server settle before reading its CPU time
            rows.append(
                {
                    "transport": "shared (renegotiation)" if shared else "new peer connection",
                    "subscription": index,
                    "m_lines_in_offer": index if shared else 1,
                    "ready_ms": ready * 1000,
                    "first_frame_ms": first * 1000,
                    "portal_cpu_ms": _cpu_ms(pid) - cpu,
                }
            )
    return rows


async def _run(args) -> None:
    from owt.client import ManagementClient
    from owt.localserver import free_port, manage, portal_env, running_portal
    from streamengine.client import ConferenceClient, SyntheticVideoTrack
    from streamengine.media.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    with tempfile.TemporaryDirectory(prefix="bench-signaling-") as workdir:
        port = free_port()
        env = portal_env(
            Path(workdir), OWT_PORTAL_HOST=f"127.0.0.1:{port}", MEDIA_HOST_ADDRESSES="127.0.0.1", ICE_SERVERS="[]"
        )
        manage(env, "migrate", "--noinput", "-v0")
        bootstrap = manage(env, "owt_bootstrap")
        service = re.search(r"service id: (\S+)", bootstrap)[1]
        key = re.search(r"service key: (\S+)", bootstrap)[1]
        with running_portal(env, migrate=False, port=port) as portal, ManagementClient(portal.url, service, key) as api:
            room = api.create_room("bench-signaling")["id"]

            def token() -> str:
                return api.create_token(room, user="bench", role="presenter")

            async with ConferenceClient(f"ws://127.0.0.1:{port}/ws/signaling/") as publisher:
                await publisher.join(token())
                publication = await publisher.publish([SyntheticVideoTrack()], video_codec="vp8")
                await asyncio.sleep(1)
                framings = {
                    "JSON frames (WebSocket)": lambda t: _join_json(portal.url, t, publication.id),
                    "socket.io (WebSocket)": lambda t: _join_sio(portal.url, t, publication.id, ["websocket"]),
                    "socket.io (polling + upgrade)": lambda t: _join_sio(
                        portal.url, t, publication.id, ["polling", "websocket"]
                    ),
                }
                joins = []
                for name, join in framings.items():
                    await join(token())  # warm-up
                    latencies = [await join(token()) for _ in range(args.joins)]
                    joins.append(
                        {
                            "framing": name,
                            "joins": len(latencies),
                            "p50_ms": 1000 * statistics.median(latencies),
                            "p95_ms": 1000 * percentile(latencies, 0.95),
                        }
                    )
                shared = await _renegotiate(
                    portal.url, token(), publication.id, args.subscriptions, portal.process.pid, True
                )
                separate = await _renegotiate(
                    portal.url, token(), publication.id, args.subscriptions, portal.process.pid, False
                )
    base = joins[0]["p50_ms"]
    for row in joins:
        row["vs_json_p50"] = row["p50_ms"] / base
    emit("signaling-join", joins, notes={"publication": "640x480 30 fps VP8 (bars); first decoded frame"})

    def mean(rows: list[dict], key: str) -> float:
        return statistics.mean(r[key] for r in rows[1:]) if len(rows) > 1 else rows[0][key]

    notes = {
        "one more subscription, shared transport (mean of 2..N)": f"{mean(shared, 'first_frame_ms'):.0f} ms to first frame, {mean(shared, 'portal_cpu_ms'):.0f} ms portal CPU",
        "one more subscription, new peer connection (mean of 2..N)": f"{mean(separate, 'first_frame_ms'):.0f} ms to first frame, {mean(separate, 'portal_cpu_ms'):.0f} ms portal CPU",
    }
    emit("signaling-renegotiate", shared + separate, notes=notes)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench signaling", description=__doc__.splitlines()[0])
    parser.add_argument("--joins", type=int, default=10, help="fresh clients per framing")
    parser.add_argument("--subscriptions", type=int, default=8, help="subscriptions added one by one per client")
    args = parser.parse_args(argv)
    import django

    django.setup()
    asyncio.run(_run(args))
