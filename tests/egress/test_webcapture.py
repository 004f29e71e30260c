"""The web-page capture (egress/webcapture.py) against a real Chromium, Xvfb and PulseAudio.

The test card (``egress/static/egress/testcard.html``, served on 127.0.0.1) moves, plays a 1 kHz tone without a
gesture and paints markers the captured frames are checked for: WebGL (top-left square green,
red without) and edge-to-edge size (bottom-right square yellow). Browser tests run in a
loopback-only network namespace (bin/test):

    unshare -n sh -c 'ip link set lo up && python -m pytest -m browser tests/egress/test_webcapture.py'
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pytest

from egress.webcapture import AUDIO_RATE, AUDIO_SAMPLES, WebCaptureFailed, WebPageCapture
from owt.localserver import ROOT, free_port, serving_directory
from streamengine.media.live_output import LiveOutput, Target, VideoSettings
from tests.streamengine.helpers import IN_LOOPBACK_NAMESPACE, wait_until

pytestmark = [pytest.mark.browser, IN_LOOPBACK_NAMESPACE]

CARD = ROOT / "egress" / "static" / "egress"
WIDTH, HEIGHT, FRAMERATE = 320, 240, 15
CAPTURE_SECONDS = 2.5
RED, GREEN, YELLOW = (255, 0, 0), (0, 255, 0), (255, 255, 0)


@pytest.fixture(scope="module")
def page_url():
    with serving_directory(CARD) as base:
        yield f"{base}/testcard.html"


def descendants(root: int | None = None) -> set[int]:
    """Every live process below ``root`` (this one): Playwright's driver, Chromium's tree, Xvfb …"""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, stack = set(), [root or os.getpid()]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)}


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def naming(marker: str) -> set[int]:
    pids = set()
    for entry in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker.encode() in entry.read_bytes():
                pids.add(int(entry.parent.name))
        except OSError:
            continue
    return pids


def colour_near(rgb: np.ndarray, want: tuple[int, int, int]) -> bool:
    """The mean colour of a patch, within yuv420p's rounding of ``want``."""
    return bool(np.all(np.abs(rgb.reshape(-1, 3).mean(axis=0) - want) < 40))


async def capture_for(capture: WebPageCapture, seconds: float) -> tuple[list, list]:
    video, audio = [], []
    deadline = asyncio.get_running_loop().time() + seconds
    async for kind, frame in capture.frames():
        (video if kind == "video" else audio).append(frame)
        if asyncio.get_running_loop().time() > deadline:
            break
    return video, audio


@pytest.mark.parametrize("webgl", [False, True], ids=["no-webgl", "webgl"])
async def test_page_picture_and_sound(page_url, webgl):
    before = descendants()
    capture = WebPageCapture(page_url, width=WIDTH, height=HEIGHT, framerate=FRAMERATE, webgl=webgl)
    await capture.start()
    try:
        video, audio = await capture_for(capture, CAPTURE_SECONDS)
        started = descendants() - before
        workdir = str(capture.workdir)
        progress = capture.progress()
    finally:
        await capture.stop()
    await capture.stop()  # idempotent

    # Every process the capture started is gone, and nothing still names its directory.
    assert started, "the capture started no process?"
    assert alive(started) == set()
    assert naming(workdir) == set()
    assert not Path(workdir).exists()

    assert progress["page"] == {"status": "loaded", "http_status": 200}
    assert progress["frames"] == {"video": len(video), "audio": len(audio)}

    # Picture: the requested size, yuv420p, on one increasing clock, and moving.
    assert len(video) > 10
    assert {(f.width, f.height, f.format.name) for f in video} == {(WIDTH, HEIGHT, "yuv420p")}
    times = [f.pts * f.time_base for f in video]
    assert times == sorted(times) and len(set(times)) == len(times)
    first, last = (f.to_ndarray(format="rgb24").astype(int) for f in (video[0], video[-1]))
    assert np.abs(first - last).mean() > 10, "the picture does not change"
    # Markers: WebGL as asked, and the page covers the frame to its last pixel.
    assert colour_near(last[2:24, 2:24], GREEN if webgl else RED)
    assert colour_near(last[-24:-2, -24:-2], YELLOW)

    # Sound: 48 kHz s16 stereo, gapless on the same clock, the page's 1 kHz tone.
    assert len(audio) > 10
    assert {(f.format.name, f.layout.name, f.sample_rate, f.samples) for f in audio} == {
        ("s16", "stereo", AUDIO_RATE, AUDIO_SAMPLES)
    }
    assert [f.pts for f in audio] == [audio[0].pts + i * AUDIO_SAMPLES for i in range(len(audio))]
    left = np.concatenate([f.to_ndarray()[0, ::2] for f in audio]).astype(float)  # packed: L R L R …
    assert np.sqrt(np.mean(left**2)) > 1000, "silence"
    spectrum = np.abs(np.fft.rfft(left * np.hanning(len(left))))
    assert abs(np.argmax(spectrum) * AUDIO_RATE / len(left) - 1000) < 20


async def test_frames_encode_through_live_output(page_url, tmp_path):
    """The frames' timestamps fit the platform's encoder: an MP4 of the page's size and rate,
    as long as the capture, with moving pictures and the tone."""
    path = tmp_path / "page.mp4"
    output = LiveOutput(Target(str(path), "mp4"), {"video", "audio"}, VideoSettings(framerate=FRAMERATE))
    async with WebPageCapture(page_url, width=WIDTH, height=HEIGHT, framerate=FRAMERATE, webgl=False) as capture:
        deadline = asyncio.get_running_loop().time() + CAPTURE_SECONDS
        async for kind, frame in capture.frames():
            output.push(kind, frame)
            if asyncio.get_running_loop().time() > deadline:
                break
    await asyncio.to_thread(output.close)
    assert not output.failure

    with av.open(str(path)) as container:
        video, audio = container.streams.video[0], container.streams.audio[0]
        assert (video.width, video.height) == (WIDTH, HEIGHT)
        assert abs(video.average_rate - FRAMERATE) < FRAMERATE / 10  # frames / duration of a short file
        assert abs(float(container.duration / av.time_base) - CAPTURE_SECONDS) < 1.0
        pictures = [f.to_ndarray(format="gray").astype(int) for f in container.decode(video)]
        container.seek(0)
        sound = np.concatenate([f.to_ndarray()[0] for f in container.decode(audio)])
    assert np.abs(pictures[0] - pictures[-1]).mean() > 10
    assert np.sqrt(np.mean(sound**2)) > 0.03  # fltp: full scale is 1.0; the tone plays at 0.3


async def test_unreachable_url_fails_with_the_reason():
    before = descendants()
    capture = WebPageCapture(f"http://127.0.0.1:{free_port()}/", width=WIDTH, height=HEIGHT, framerate=10, webgl=False)
    with pytest.raises(WebCaptureFailed) as failed:
        await capture.start()
    assert "ERR_CONNECTION_REFUSED" in failed.value.reason
    assert capture.progress()["page"]["status"] == "failed"
    assert alive(descendants() - before) == set()


async def test_a_helper_dying_ends_the_frames_with_the_reason(page_url):
    capture = WebPageCapture(page_url, width=WIDTH, height=HEIGHT, framerate=FRAMERATE, webgl=False, audio=False)
    await capture.start()
    try:
        (xvfb,) = (pid for pid in descendants() if Path(f"/proc/{pid}/comm").read_text().strip() == "Xvfb")
        frames = 0
        with pytest.raises(WebCaptureFailed) as failed:
            async for _kind, _frame in capture.frames():
                frames += 1
                if frames == 5:
                    os.kill(xvfb, signal.SIGKILL)  # the display goes away under the browser
        # Whichever notices first: the display server's exit, the grab, or the browser losing its display.
        reason = failed.value.reason
        assert reason == "Xvfb was killed (SIGKILL)" or "lost" in reason or reason == "the browser exited", reason
    finally:
        await capture.stop()
    assert naming(str(capture.workdir)) == set()


CAPTURING_PROCESS = """
import asyncio, sys
from egress.webcapture import WebPageCapture

async def main():
    capture = WebPageCapture(sys.argv[1], width=320, height=240, framerate=10, webgl=False)
    await capture.start()
    print(capture.workdir, flush=True)
    async for _ in capture.frames():
        pass

asyncio.run(main())
"""


def test_the_helpers_die_with_a_killed_capturing_process(page_url):
    """A worker killed mid-capture (no stop()) leaves no Xvfb, PulseAudio, parec or Chromium."""
    worker = subprocess.Popen(
        [sys.executable, "-c", CAPTURING_PROCESS, page_url], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        workdir = worker.stdout.readline().strip()
        assert workdir, "the capture did not start"
        started = descendants(worker.pid)
        names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in started}
    finally:
        worker.kill()
        worker.wait()
    assert {"Xvfb", "pulseaudio", "parec", "chromium"} <= names
    wait_until(lambda: not alive(started), 10, f"helpers to die: {alive(started)}")
    shutil.rmtree(workdir)  # what stop() would have removed
