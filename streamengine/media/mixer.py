"""The MCU's media path: composite decoded video per layout, mix audio, detect the speaker.

A mixer job (``streamengine/jobs/mixing.py``) feeds each input's decoded frames in and
publishes two tracks:

* :class:`MixedVideoTrack` composites the latest frame of every input into its region
  (:class:`VideoCompositor`: ``letterbox`` keeps the aspect ratio on the background
  colour, ``crop`` fills the region) at the view's frame rate, and encodes it **once**
  with PyAV (``encoding.VideoEncoder``: the view's codec, bitrate and key-frame interval).
  It hands aiortc ``av.Packet``s, which a sender only packetizes, so the SFU forwards the
  same encoded frames to every subscriber of the mixed stream.
* :class:`MixedAudioTrack` sums the inputs' 20 ms blocks (:class:`AudioMixer`, 48 kHz;
  aiortc encodes the Opus once) and measures each input's level for voice activity.

Nothing here imports Django: the job does the room's bookkeeping.
"""

from __future__ import annotations

import asyncio
import fractions
import math
import threading
import time
from collections import deque
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streamengine.media.encoding import VIDEO_CLOCK, VideoEncoder

AUDIO_RATE = 48000
AUDIO_BLOCK = 960  # 20 ms at 48 kHz, Opus' frame
# An input's audio queue holds at most this many 20 ms blocks (jitter between its
# decoder and the mixer's clock); older blocks are dropped rather than delay the mix.
AUDIO_QUEUE_BLOCKS = 10
# Voice activity: a level in dBFS over this counts as speech; the active input changes to
# another one only when it has been the loudest for ``ACTIVE_HOLD_SECONDS``.
SPEECH_DBFS = -50.0
ACTIVE_HOLD_SECONDS = 0.6
LEVEL_SMOOTHING = 0.3  # exponential smoothing of the per-block level (dB)
SILENCE = np.zeros(AUDIO_BLOCK, np.int16)


def bt601(r: int, g: int, b: int) -> tuple[int, int, int]:
    """An sRGB colour in limited-range BT.601 YUV, as the encoders expect it."""
    y = 16 + (65.481 * r + 128.553 * g + 24.966 * b) / 255
    u = 128 + (-37.797 * r - 74.203 * g + 112.0 * b) / 255
    v = 128 + (112.0 * r - 93.786 * g - 18.214 * b) / 255
    return round(y), round(u), round(v)


def fraction(value: Any) -> Fraction:
    """A layout area value: ``{"numerator", "denominator"}`` (mixed info) or ``"n/d"`` (REST)."""
    if isinstance(value, dict):
        return Fraction(int(value["numerator"]), int(value["denominator"]) or 1)
    return Fraction(str(value))


def _even(value: float) -> int:
    return int(round(value / 2)) * 2


@dataclass(frozen=True)
class Placement:
    """Where one input goes on the canvas, in pixels (even, for 4:2:0 chroma)."""

    stream: str
    x: int
    y: int
    width: int
    height: int


def placements(layout: list[dict], width: int, height: int) -> list[Placement]:
    """The pixel rectangles of a mixed stream's layout (entries without a stream are empty)."""
    result = []
    for entry in layout:
        if not entry.get("stream"):
            continue
        area = entry["region"]["area"]
        x, y = _even(fraction(area["left"]) * width), _even(fraction(area["top"]) * height)
        w = min(_even(fraction(area["width"]) * width), width - x)
        h = min(_even(fraction(area["height"]) * height), height - y)
        if w >= 2 and h >= 2:
            result.append(Placement(entry["stream"], x, y, w, h))
    return result


def planes(frame: av.VideoFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Y, U, V of a yuv420p frame as arrays (no padding)."""
    stacked = frame.to_ndarray()
    height, width = frame.height, frame.width
    chroma = stacked[height:].reshape(-1)
    quarter = (height // 2) * (width // 2)
    return (
        stacked[:height],
        chroma[:quarter].reshape(height // 2, width // 2),
        chroma[quarter : 2 * quarter].reshape(height // 2, width // 2),
    )


class VideoCompositor:
    """The canvas of one view: background colour, each input's latest frame in its region."""

    def __init__(
        self, width: int, height: int, *, background: tuple[int, int, int] = (0, 0, 0), fit: str = "letterbox"
    ):
        self.width, self.height = width, height
        self.background = bt601(*background)
        self.fit = fit
        self.layout: list[Placement] = []
        self.latest: dict[str, av.VideoFrame] = {}
        # A scaled input is reused until its next frame (inputs slower than the output).
        self.scaled: dict[str, tuple[av.VideoFrame, Placement, tuple]] = {}
        # compose() runs in a worker thread: a layout change must not clear the canvas while
        # a picture is being drawn with the old layout (the old regions would stay drawn).
        self.lock = threading.Lock()
        self._clear()

    def _clear(self) -> None:
        y, u, v = self.background
        self.y = np.full((self.height, self.width), y, np.uint8)
        self.u = np.full((self.height // 2, self.width // 2), u, np.uint8)
        self.v = np.full((self.height // 2, self.width // 2), v, np.uint8)

    def set_layout(self, layout: list[Placement]) -> None:
        with self.lock:
            if layout != self.layout:
                self.layout = layout
                self.scaled.clear()
                self._clear()  # regions that are gone show the background

    def update(self, stream: str, frame: av.VideoFrame) -> None:
        self.latest[stream] = frame

    def forget(self, stream: str) -> None:
        with self.lock:
            self.latest.pop(stream, None)
            self.scaled.pop(stream, None)

    def _fit(self, frame: av.VideoFrame, region: Placement) -> tuple:
        """(scaled Y, U, V, x, y) of ``frame`` in ``region`` per the fit policy."""
        scale = (min if self.fit == "letterbox" else max)(region.width / frame.width, region.height / frame.height)
        width = max(2, _even(frame.width * scale))
        height = max(2, _even(frame.height * scale))
        scaled = frame.reformat(width=width, height=height, format="yuv420p")
        y, u, v = planes(scaled)
        if self.fit != "letterbox":  # crop: the centre of the covering picture
            left, top = (width - region.width) // 4 * 2, (height - region.height) // 4 * 2
            y = y[top : top + region.height, left : left + region.width]
            u = u[top // 2 : (top + region.height) // 2, left // 2 : (left + region.width) // 2]
            v = v[top // 2 : (top + region.height) // 2, left // 2 : (left + region.width) // 2]
        height, width = y.shape
        x = region.x + (region.width - width) // 4 * 2
        top = region.y + (region.height - height) // 4 * 2
        return y, u, v, x, top

    def compose(self) -> av.VideoFrame:
        with self.lock:
            return self._compose()

    def _compose(self) -> av.VideoFrame:
        for region in self.layout:
            frame = self.latest.get(region.stream)
            if frame is None:
                continue
            cached = self.scaled.get(region.stream)
            if cached is None or cached[0] is not frame or cached[1] != region:
                cached = (frame, region, self._fit(frame, region))
                self.scaled[region.stream] = cached
                y, u, v, x, top = cached[2]
                h, w = y.shape
                self.y[top : top + h, x : x + w] = y
                self.u[top // 2 : top // 2 + h // 2, x // 2 : x // 2 + w // 2] = u
                self.v[top // 2 : top // 2 + h // 2, x // 2 : x // 2 + w // 2] = v
        stacked = np.concatenate([self.y.reshape(-1), self.u.reshape(-1), self.v.reshape(-1)])
        return av.VideoFrame.from_ndarray(stacked.reshape(self.height * 3 // 2, self.width), format="yuv420p")


class MixedVideoTrack(MediaStreamTrack):
    """The mixed picture at the view's frame rate, as encoded packets (aiortc only packetizes them).

    Compositing and encoding run in a worker thread so the job's event loop (RTP in,
    decoding hand-off) keeps up; a tick that is late is skipped, not queued.
    """

    kind = "video"

    def __init__(self, compositor: VideoCompositor, encoder: VideoEncoder, framerate: int) -> None:
        super().__init__()
        self.compositor = compositor
        self.encoder = encoder
        self.period = 1 / framerate
        self.started: float | None = None
        self.ticks = 0
        self.pending: deque[av.Packet] = deque()
        self.encoded = 0
        self.encode_seconds = 0.0

    def request_keyframe(self) -> None:
        """A subscriber's PLI/FIR (routed here by the sender): the next picture is a keyframe."""
        self.encoder.keyframe_wanted = True

    def _render(self, pts: int) -> list[av.Packet]:
        started = time.perf_counter()
        packets = self.encoder.encode(self.compositor.compose(), pts)
        self.encode_seconds += time.perf_counter() - started
        return packets

    async def recv(self) -> av.Packet:
        while not self.pending:
            if self.readyState != "live":
                raise MediaStreamError
            now = time.monotonic()
            if self.started is None:
                self.started = now
            due = self.started + self.ticks * self.period
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > self.period:  # behind: drop the missed ticks
                self.ticks += int((now - due) / self.period)
            pts = round(self.ticks * self.period * VIDEO_CLOCK)
            self.ticks += 1
            self.pending.extend(await asyncio.to_thread(self._render, pts))
        packet = self.pending.popleft()
        packet.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.encoded += 1
        return packet


class AudioMixer:
    """Sums 48 kHz mono 20 ms blocks of the inputs; keeps each input's level (dBFS)."""

    def __init__(self) -> None:
        self.queues: dict[str, deque[np.ndarray]] = {}
        self.resamplers: dict[str, av.AudioResampler] = {}
        self.pending: dict[str, np.ndarray] = {}
        self.levels: dict[str, float] = {}

    def push(self, stream: str, frame: av.AudioFrame) -> None:
        resampler = self.resamplers.get(stream)
        if resampler is None:
            resampler = self.resamplers[stream] = av.AudioResampler(format="s16", layout="mono", rate=AUDIO_RATE)
        queue = self.queues.setdefault(stream, deque(maxlen=AUDIO_QUEUE_BLOCKS))
        samples = self.pending.get(stream, np.zeros(0, np.int16))
        for resampled in resampler.resample(frame):
            samples = np.concatenate([samples, resampled.to_ndarray().reshape(-1)])
        while len(samples) >= AUDIO_BLOCK:
            queue.append(samples[:AUDIO_BLOCK])
            samples = samples[AUDIO_BLOCK:]
        self.pending[stream] = samples

    def forget(self, stream: str) -> None:
        for table in (self.queues, self.resamplers, self.pending, self.levels):
            table.pop(stream, None)

    def take(self, stream: str) -> np.ndarray:
        """The next 20 ms of ``stream`` (silence if it has none queued); updates its level."""
        queue = self.queues.get(stream)
        block = queue.popleft() if queue else None
        if block is None:
            block, level = SILENCE, -120.0
        else:
            rms = math.sqrt(float(np.mean(block.astype(np.float64) ** 2))) or 1e-6
            level = 20 * math.log10(rms / 32768)
        previous = self.levels.get(stream, level)
        self.levels[stream] = previous + LEVEL_SMOOTHING * (level - previous)
        return block

    def mix(self, inputs: set[str]) -> np.ndarray:
        """The next 20 ms of ``inputs`` summed (int16, clipped); updates their levels."""
        total = np.zeros(AUDIO_BLOCK, np.int32)
        for stream in inputs:
            total += self.take(stream)
        return np.clip(total, -32768, 32767).astype(np.int16)


def audio_frame(samples: np.ndarray, pts: int) -> av.AudioFrame:
    """A 48 kHz mono frame of int16 ``samples`` at ``pts`` (1/48000)."""
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.pts, frame.sample_rate = pts, AUDIO_RATE
    frame.time_base = fractions.Fraction(1, AUDIO_RATE)
    return frame


class AudioClock:
    """Paces 20 ms blocks in real time from the first ``tick``."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.pts = 0

    async def tick(self) -> int:
        """Waits until the next block is due; returns its pts."""
        now = time.monotonic()
        if self.started is None:
            self.started = now
        else:
            self.pts += AUDIO_BLOCK
            due = self.started + self.pts / AUDIO_RATE
            if due > now:
                await asyncio.sleep(due - now)
        return self.pts


class ActiveSpeaker:
    """The loudest speaking input, changed only after it has led for ``hold`` seconds."""

    def __init__(self, hold: float = ACTIVE_HOLD_SECONDS, threshold: float = SPEECH_DBFS) -> None:
        self.hold, self.threshold = hold, threshold
        self.active: str | None = None
        self.candidate: str | None = None
        self.since = 0.0

    def observe(self, levels: dict[str, float], now: float) -> str | None:
        """Feed the current levels; returns the new active input when it changes."""
        speaking = {stream: level for stream, level in levels.items() if level > self.threshold}
        loudest = max(speaking, key=speaking.get) if speaking else None
        if loudest is None or loudest == self.active:
            self.candidate = None
            return None
        if loudest != self.candidate:
            self.candidate, self.since = loudest, now
            return None
        if now - self.since >= self.hold:
            self.active, self.candidate = loudest, None
            return loudest
        return None


class MixedAudioTrack(MediaStreamTrack):
    """The audio mix, 20 ms frames paced in real time (aiortc's sender encodes the Opus)."""

    kind = "audio"

    def __init__(self, mixer: AudioMixer) -> None:
        super().__init__()
        self.mixer = mixer
        self.inputs: set[str] = set()
        self.clock = AudioClock()

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        pts = await self.clock.tick()
        return audio_frame(self.mixer.mix(self.inputs), pts)


class AudioSelector:
    """OWT's audio selecting: ``slots`` outputs carry the loudest speaking inputs.

    Every 20 ms each input's block is taken (so every level stays current) and each slot
    gets the block of the input it is assigned; an input keeps its slot while it is among the
    loudest, a slot is reassigned only when its input stopped speaking (no shuffling).
    """

    def __init__(self, mixer: AudioMixer, slots: int, threshold: float = SPEECH_DBFS) -> None:
        self.mixer = mixer
        self.threshold = threshold
        self.inputs: set[str] = set()
        self.assigned: list[str | None] = [None] * slots
        self.outputs = [SelectedAudioTrack() for _ in range(slots)]
        self.clock = AudioClock()

    def reassign(self) -> None:
        levels = {s: level for s, level in self.mixer.levels.items() if s in self.inputs and level > self.threshold}
        loudest = sorted(levels, key=levels.get, reverse=True)[: len(self.assigned)]
        self.assigned = [stream if stream in loudest else None for stream in self.assigned]
        for stream in loudest:
            if stream not in self.assigned:
                self.assigned[self.assigned.index(None)] = stream

    async def run(self) -> None:
        while True:
            pts = await self.clock.tick()
            blocks = {stream: self.mixer.take(stream) for stream in self.inputs}
            self.reassign()
            for output, stream in zip(self.outputs, self.assigned, strict=True):
                output.offer(audio_frame(blocks.get(stream, SILENCE), pts))


class SelectedAudioTrack(MediaStreamTrack):
    """One slot of an :class:`AudioSelector` (its clock paces the frames)."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self.frames: asyncio.Queue[av.AudioFrame] = asyncio.Queue(maxsize=AUDIO_QUEUE_BLOCKS)

    def offer(self, frame: av.AudioFrame) -> None:
        if self.frames.full():
            self.frames.get_nowait()
        self.frames.put_nowait(frame)

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        return await self.frames.get()
