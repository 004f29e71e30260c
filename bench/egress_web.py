"""Web-page egress capture: CPU and frame rate of x11grab + PulseAudio vs CDP screencast.

The test card egress/static/egress/testcard.html (a picture that changes every repaint, a 1 kHz tone) is
served on 127.0.0.1 and captured for ``--window`` seconds after a warm-up, each way:

* **x11grab**: ``egress.webcapture.WebPageCapture`` — Chromium in a private Xvfb, the display
  grabbed by PyAV's x11grab at the requested rate and converted to yuv420p; with ``+audio``
  also a private PulseAudio null sink read by parec (48 kHz s16);
* **screencast**: headless Chromium, CDP ``Page.startScreencast`` (JPEG, every Nth repaint for
  about the requested rate), each JPEG decoded here (PyAV mjpeg) and converted to yuv420p.
  No sound (it would need the same PulseAudio path as x11grab).

Columns: delivered frames per second, *changed* frames per second (pictures that differ from
the previous one: what the page really shows), and the CPU of everything the capture runs, in
% of one core, split into the browser (Chromium + the Playwright driver), Xvfb, sound
(pulseaudio + parec) and this Python process (the grab/decode thread, conversion, the loop), and how late the event loop wakes up
(p99 of 10 ms sleeps: what the capture leaves to the job sharing its loop); for x11grab also
how long ``start()`` (display, sound, browser, page load) and ``stop()`` take.
The frames are consumed, not encoded (the encoder costs the same whichever path feeds it).

    python -m bench egress_web                               # ~2 min
    python -m bench egress_web --sizes 1280x720 --window 5 --paths x11grab
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import time
from collections.abc import Coroutine
from pathlib import Path

import av
import numpy as np
from playwright.async_api import async_playwright

from bench.report import emit, percentile
from egress.webcapture import CHROMIUM, WebPageCapture, browser_args
from owt.localserver import ROOT, serving_directory

CARD = ROOT / "egress" / "static" / "egress"
CLK_TCK = os.sysconf("SC_CLK_TCK")
REPAINT_RATE = 60  # Chromium repaints an animated page at 60 Hz
GROUPS = {"chromium": "browser", "chrome": "browser", "node": "browser", "Xvfb": "xvfb", "pulseaudio": "sound"}
GROUPS["parec"] = "sound"


def _tree_cpu(root: int) -> dict[str, float]:
    """CPU seconds of ``root`` (group ``python``) and all its descendants, by group."""
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[str, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name = text[text.index("(") + 1 : text.rindex(")")]
        fields = text.rsplit(")", 1)[1].split()
        pid = int(stat.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        stats[pid] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    totals: dict[str, float] = {}
    stack = [root]
    while stack:
        pid = stack.pop()
        name, seconds = stats.get(pid, ("", 0.0))
        group = "python" if pid == root else next((g for k, g in GROUPS.items() if name.startswith(k)), "other")
        totals[group] = totals.get(group, 0.0) + seconds
        stack += children.get(pid, [])
    return totals


class _Counter:
    """Frames delivered and frames whose picture changed (a sparse sample of the luma plane)."""

    def __init__(self) -> None:
        self.frames = 0
        self.changed = 0
        self.previous: np.ndarray | None = None

    def add(self, frame: av.VideoFrame) -> None:
        sample = np.frombuffer(frame.planes[0], np.uint8)[::97].copy()
        self.frames += 1
        if self.previous is None or not np.array_equal(sample, self.previous):
            self.changed += 1
        self.previous = sample


async def _loop_lag(until: float) -> list[float]:
    """How late 10 ms sleeps wake up: what the capture leaves of the event loop (ms)."""
    lags = []
    while (now := time.monotonic()) < until:
        await asyncio.sleep(0.01)
        lags.append(1000 * (time.monotonic() - now - 0.01))
    return lags


async def _measure(counter: _Counter, warmup: float, window: float) -> dict:
    await asyncio.sleep(warmup)
    cpu, frames, changed, started = _tree_cpu(os.getpid()), counter.frames, counter.changed, time.monotonic()
    lags = await _loop_lag(started + window)
    after, wall = _tree_cpu(os.getpid()), time.monotonic() - started
    row = {
        "fps": (counter.frames - frames) / wall,
        "changed fps": (counter.changed - changed) / wall,
        "loop lag p99 ms": percentile(lags, 0.99),
        "cpu %": 100 * (sum(after.values()) - sum(cpu.values())) / wall,
    }
    for group in ("browser", "xvfb", "sound", "python"):
        row[f"{group} %"] = 100 * (after.get(group, 0.0) - cpu.get(group, 0.0)) / wall
    return row


async def x11grab(
    url: str, width: int, height: int, framerate: int, *, audio: bool, webgl: bool, window: float
) -> dict:
    counter = _Counter()
    capture = WebPageCapture(url, width=width, height=height, framerate=framerate, webgl=webgl, audio=audio)
    started = time.monotonic()
    await capture.start()
    start_seconds = time.monotonic() - started

    async def consume() -> None:
        async for kind, frame in capture.frames():
            if kind == "video":
                counter.add(frame)

    consumer = asyncio.create_task(consume())
    try:
        row = await _measure(counter, 2.0, window)
    finally:
        consumer.cancel()
        started = time.monotonic()
        await capture.stop()
    row |= {"dropped": capture.progress()["dropped"], "start s": start_seconds, "stop s": time.monotonic() - started}
    return row


async def screencast(url: str, width: int, height: int, framerate: int, *, webgl: bool, window: float) -> dict:
    counter = _Counter()
    decoder = av.CodecContext.create("mjpeg", "r")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=browser_args(webgl=webgl, audio=False)
        )
        try:
            page = await browser.new_page(viewport={"width": width, "height": height})
            await page.goto(url, wait_until="load")
            session = await page.context.new_cdp_session(page)

            def on_frame(event: dict) -> None:
                # The browser sends the next frame only once this one is acknowledged.
                asyncio.ensure_future(session.send("Page.screencastFrameAck", {"sessionId": event["sessionId"]}))
                for frame in decoder.decode(av.Packet(base64.b64decode(event["data"]))):
                    counter.add(frame.reformat(format="yuv420p"))

            session.on("Page.screencastFrame", on_frame)
            await session.send(
                "Page.startScreencast",
                {
                    "format": "jpeg",
                    "quality": 80,
                    "maxWidth": width,
                    "maxHeight": height,
                    "everyNthFrame": max(1, round(REPAINT_RATE / framerate)),
                },
            )
            row = await _measure(counter, 2.0, window)
            await session.send("Page.stopScreencast")
        finally:
            await browser.close()
    return row


def _one(path: str, url: str, width: int, height: int, args: argparse.Namespace) -> Coroutine[None, None, dict]:
    if path == "screencast":
        return screencast(url, width, height, args.fps, webgl=args.webgl, window=args.window)
    audio = path == "x11grab+audio"
    return x11grab(url, width, height, args.fps, audio=audio, webgl=args.webgl, window=args.window)


async def _run(args: argparse.Namespace) -> list[dict]:
    rows = []
    with serving_directory(CARD) as base:
        for size in args.sizes.split(","):
            width, height = (int(n) for n in size.split("x"))
            for path in args.paths.split(","):
                row = await _one(path, f"{base}/testcard.html", width, height, args)
                rows.append({"path": path, "size": size, "requested fps": args.fps} | row)
    return rows


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench egress_web", description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1280x720,640x360")
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--paths", default="x11grab,x11grab+audio,screencast")
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured per run (after 2 s warm-up)")
    parser.add_argument("--webgl", action="store_true", help="WebGL on (SwiftShader) instead of no GPU at all")
    args = parser.parse_args(argv)
    rows = asyncio.run(_run(args))
    emit(
        "egress_web",
        rows,
        notes={"cores": os.cpu_count(), "load average (1 min) after": os.getloadavg()[0], "webgl": args.webgl},
    )
