"""Pull an external source (RTSP, RTMP, HLS, a file) with PyAV and feed its media to aiortc tracks.

A :class:`SourceReader` demuxes in a thread (PyAV blocks) and hands each item to the event
loop (``call_soon_threadsafe``) into a :class:`SourceTrack`, which aiortc's ``RTCRtpSender``
reads like any track. What a track carries is decided once per kind (:func:`plan_routes`):

* passthrough: the source's encoded packets as ``av.Packet`` (90 kHz video / 48 kHz audio
  timestamps), which the sender only packs (``media/passthrough.py``): H.264 (made Annex-B,
  parameter sets before every keyframe), VP8, Opus — when the room accepts the codec;
* otherwise decoded frames, which aiortc encodes (AAC → Opus, say, or H.264 → VP8).

Items are paced by their timestamps on one timeline for all kinds (files and HLS arrive
faster than real time; a live source that is late is never held back). When the source
drops, the reader reconnects with backoff on the same tracks: the published stream stays,
and timestamps carry on from the wall clock so receivers see a gap, not a jump back.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streamengine.media.passthrough import CLOCK_RATES, H264_SPS, h264_nal_types, is_keyframe

logger = logging.getLogger(__name__)

# What aiortc's sender can pack without encoding.
PACKABLE = {"video": ("h264", "vp8"), "audio": ("opus",)}
# What aiortc can encode, in the order we prefer when the source must be re-encoded.
ENCODABLE = {"video": ("vp8", "h264"), "audio": ("opus", "pcmu", "pcma")}
# Items a track holds before the sender reads them (publishing takes a second or so).
TRACK_QUEUE_ITEMS = 90
RECONNECT_BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)


class SourceError(Exception):
    """The source cannot be used as asked; the message says why."""


@dataclass(frozen=True)
class SourceOptions:
    url: str
    transport: str = "tcp"  # RTSP's RTP transport
    buffer_size: int = 8192  # UDP socket buffer, bytes
    open_timeout: float = 10.0
    read_timeout: float = 10.0
    protocols: str = ""  # FFmpeg's protocol_whitelist; empty = FFmpeg's default
    give_up_seconds: float = 60.0  # reconnecting longer than this ends the job

    @property
    def is_file(self) -> bool:
        return "://" not in self.url or self.url.startswith("file:")


def open_source(options: SourceOptions) -> av.container.InputContainer:
    """Open the source (blocking, up to ``open_timeout``); raises whatever PyAV raises."""
    av_options = {}
    if options.url.startswith(("rtsp:", "rtsps:")):
        av_options["rtsp_transport"] = options.transport
        if options.transport == "udp":
            av_options["buffer_size"] = str(options.buffer_size)
    if options.protocols:
        av_options["protocol_whitelist"] = options.protocols
    return av.open(options.url, options=av_options, timeout=(options.open_timeout, options.read_timeout))


def describe(exc: BaseException) -> str:
    """A reason a person can act on (PyAV's errors carry errno text and the URL)."""
    text = str(exc) or type(exc).__name__
    return text if len(text) < 300 else text[:297] + "..."


class SourceTrack(MediaStreamTrack):
    """One kind of the source as the sender reads it: ``av.Packet`` (passthrough) or frames.

    Bounded: when the sender lags (or has not started yet), the oldest items go and video
    passthrough resumes at the next keyframe, so the stream never grows stale.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self.queue: asyncio.Queue = asyncio.Queue(TRACK_QUEUE_ITEMS)
        self.waiting_keyframe = kind == "video"
        self.dropped = 0

    def push(self, item: av.Packet | av.frame.Frame | None, keyframe: bool = True) -> None:
        """On the loop: the reader's next item (None: the source is gone for good)."""
        if item is not None and self.waiting_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self.waiting_keyframe = False
        if self.queue.full():
            self.dropped += self.queue.qsize()
            while not self.queue.empty():
                self.queue.get_nowait()
            self.waiting_keyframe = self.kind == "video" and not keyframe
            if self.waiting_keyframe:
                return
        self.queue.put_nowait(item)

    def resync(self) -> None:
        """The source reconnected: encoded video can only resume at a keyframe."""
        self.waiting_keyframe = self.kind == "video"

    async def recv(self) -> av.Packet | av.frame.Frame:
        if self.readyState != "live":
            raise MediaStreamError
        item = await self.queue.get()
        if item is None:
            self.stop()
            raise MediaStreamError
        return item


class H264AnnexB:
    """H.264 packets as aiortc packs them: Annex-B, SPS/PPS in front of every keyframe.

    RTMP/FLV and MP4 carry length-prefixed NAL units with the parameter sets in ``avcC``
    extradata; RTSP carries Annex-B with them in the SDP (extradata) and maybe not in band.
    A subscriber joining at a keyframe needs them in band.
    """

    def __init__(self, extradata: bytes | None) -> None:
        extradata = bytes(extradata or b"")
        self.length_size = 0
        self.parameter_sets = extradata
        if extradata[:1] == b"\x01" and len(extradata) > 6:  # avcC (ISO 14496-15 §5.2.4.1)
            self.length_size = (extradata[4] & 0x03) + 1
            units, offset = [], 5
            for _ in range(2):  # the SPS list, then the PPS list
                count = extradata[offset] & (0x1F if not units else 0xFF)
                offset += 1
                for _ in range(count):
                    size = int.from_bytes(extradata[offset : offset + 2], "big")
                    units.append(extradata[offset + 2 : offset + 2 + size])
                    offset += 2 + size
                if offset >= len(extradata):
                    break
            self.parameter_sets = b"".join(b"\x00\x00\x00\x01" + unit for unit in units)

    def __call__(self, data: bytes) -> bytes:
        if self.length_size:
            units, offset = [], 0
            while offset + self.length_size <= len(data):
                size = int.from_bytes(data[offset : offset + self.length_size], "big")
                offset += self.length_size
                units.append(b"\x00\x00\x00\x01" + data[offset : offset + size])
                offset += size
            data = b"".join(units)
        if is_keyframe("h264", data) and H264_SPS not in h264_nal_types(data):
            data = self.parameter_sets + data
        return data


@dataclass
class Route:
    """How one kind of the source reaches its track."""

    kind: str
    codec: str  # the source's
    passthrough: bool
    track: SourceTrack = field(init=False)

    def __post_init__(self) -> None:
        self.track = SourceTrack(self.kind)


def plan_routes(container: av.container.InputContainer, media: dict, accept: dict[str, list[str]]) -> list[Route]:
    """The kinds to publish (``media``: ``"auto"`` = if present, ``True`` = required) and how.

    ``accept``: the room's ``mediaIn`` codecs by kind (a kind absent = any codec).
    """
    routes = []
    for kind in ("video", "audio"):
        wanted = media.get(kind, "auto")
        streams = getattr(container.streams, kind)
        if wanted is False:
            continue
        if not streams:
            if wanted is True:
                raise SourceError(f"the source has no {kind} (media.{kind} is true)")
            continue
        codec = streams[0].codec_context.name
        allowed = accept.get(kind)
        passthrough = codec in PACKABLE[kind] and (allowed is None or codec in allowed)
        if not passthrough and allowed is not None and not set(allowed) & set(ENCODABLE[kind]):
            raise SourceError(f"the room accepts no {kind} codec the engine can encode ({', '.join(allowed)})")
        routes.append(Route(kind, codec, passthrough))
    if not routes:
        raise SourceError("the source has none of the media asked for")
    return routes


def publish_codec(routes: list[Route], accept: dict[str, list[str]]) -> str | None:
    """The video codec to negotiate: the source's in passthrough, else one the room accepts."""
    video = next((r for r in routes if r.kind == "video"), None)
    if video is None:
        return None
    if video.passthrough:
        return video.codec
    allowed = accept.get("video")
    return next((c for c in ENCODABLE["video"] if allowed is None or c in allowed), None)


class SourceReader:
    """Demuxes the source in a thread and feeds the routes' tracks; reconnects when it drops.

    ``on_end(failure)`` is called on the loop when the reader stops by itself: a file
    ended (``""``), or the source stayed unreachable longer than ``give_up_seconds``.
    """

    def __init__(
        self,
        options: SourceOptions,
        container: av.container.InputContainer,
        routes: list[Route],
        on_end: Callable[[str], None],
    ) -> None:
        self.options = options
        self.container = container
        self.routes = {route.kind: route for route in routes}
        self.on_end = on_end
        self.loop = asyncio.get_running_loop()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="streaming-in", daemon=True)
        self.started = time.monotonic()
        self.items = dict.fromkeys(self.routes, 0)
        self.reconnects = 0
        self.last_error = ""
        self.audio_samples = 0  # decoded audio, resampled to 48 kHz

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def progress(self) -> dict:
        return {
            "frames": dict(self.items),
            "dropped": {kind: route.track.dropped for kind, route in self.routes.items()},
            "reconnects": self.reconnects,
            **({"last_error": self.last_error} if self.last_error else {}),
        }

    def _emit(self, kind: str, item: av.Packet | av.frame.Frame, keyframe: bool) -> None:
        self.items[kind] += 1
        self.loop.call_soon_threadsafe(self.routes[kind].track.push, item, keyframe)

    def _finish(self, failure: str) -> None:
        for route in self.routes.values():
            self.loop.call_soon_threadsafe(route.track.push, None)
        self.loop.call_soon_threadsafe(self.on_end, failure)

    def _run(self) -> None:
        container: av.container.InputContainer | None = self.container
        try:
            while not self.stopping.is_set():
                try:
                    self._demux(container)
                    if self.options.is_file:
                        self._finish("")
                        return
                    self.last_error = "the source ended the stream"
                except SourceError as exc:
                    self._finish(str(exc))
                    return
                except Exception as exc:
                    self.last_error = describe(exc)
                with contextlib.suppress(Exception):
                    container.close()
                container = self._reconnect()
                if container is None:
                    if not self.stopping.is_set():
                        self._finish(f"source lost: {self.last_error}")
                    return
        finally:
            if container is not None:
                with contextlib.suppress(Exception):
                    container.close()

    def _reconnect(self) -> av.container.InputContainer | None:
        lost = time.monotonic()
        for attempt in itertools.count():
            delay = RECONNECT_BACKOFF_SECONDS[min(attempt, len(RECONNECT_BACKOFF_SECONDS) - 1)]
            if time.monotonic() + delay - lost > self.options.give_up_seconds or self.stopping.wait(delay):
                return None
            logger.info("streaming-in %s: reconnecting (%s)", self.options.url, self.last_error)
            try:
                container = open_source(self.options)
            except Exception as exc:
                self.last_error = describe(exc)
                continue
            self.reconnects += 1
            for route in self.routes.values():
                self.loop.call_soon_threadsafe(route.track.resync)
            return container

    def _demux(self, container: av.container.InputContainer) -> None:
        streams = {}
        for kind, route in self.routes.items():
            found = getattr(container.streams, kind)
            if not found or found[0].codec_context.name != route.codec:
                now = found[0].codec_context.name if found else "nothing"
                raise SourceError(f"the source's {kind} changed from {route.codec} to {now} on reconnecting")
            streams[kind] = found[0]
        video = self.routes.get("video")
        convert = (
            H264AnnexB(streams["video"].codec_context.extradata)
            if video is not None and video.passthrough and video.codec == "h264"
            else None
        )
        # aiortc's audio encoders take s16 only (and resample the rest themselves).
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=CLOCK_RATES["audio"])
        timeline = Timeline(self.started)
        for packet in container.demux(*streams.values()):
            if self.stopping.is_set():
                return
            stamp = packet.pts if packet.pts is not None else packet.dts
            if stamp is None or packet.size == 0:
                continue
            kind = packet.stream.type
            at = timeline.place(kind, float(stamp * packet.stream.time_base))
            wait = self.started + at - time.monotonic()
            if wait > 0 and self.stopping.wait(wait):
                return
            route = self.routes[kind]
            if route.passthrough:
                data = convert(bytes(packet)) if convert is not None and kind == "video" else bytes(packet)
                out = av.Packet(data)
                out.pts = round(at * CLOCK_RATES[kind])
                out.time_base = fractions.Fraction(1, CLOCK_RATES[kind])
                self._emit(kind, out, is_keyframe(route.codec, data))
            elif kind == "audio":
                for frame in packet.decode():
                    frame.pts = None  # numbered below
                    for out in resampler.resample(frame):
                        # Contiguous sample counts, also across a reconnect: aiortc's own
                        # resampler wants them (its encoders number the packets themselves).
                        out.pts, out.time_base = self.audio_samples, fractions.Fraction(1, CLOCK_RATES["audio"])
                        self.audio_samples += out.samples
                        self._emit(kind, out, True)
            else:
                for frame in packet.decode():
                    frame.pts = round(at * CLOCK_RATES["video"])
                    frame.time_base = fractions.Fraction(1, CLOCK_RATES["video"])
                    self._emit(kind, frame, True)


class Timeline:
    """Source timestamps (seconds) → seconds since the reader started, one origin for all kinds
    so that audio and video stay in sync; a connection starts at the wall clock's now.

    A kind whose timestamps jump (RTSP before its first RTCP sender report, a source's
    discontinuity) is re-anchored alone, so it never holds the demuxer back nor goes backwards.
    """

    MAX_JUMP_SECONDS = 1.0

    def __init__(self, started: float) -> None:
        self.started = started
        self.resumed = time.monotonic() - started
        self.origins: dict[str, float] = {}
        self.first: float | None = None
        self.last: dict[str, float] = {}

    def place(self, kind: str, seconds: float) -> float:
        if self.first is None:
            self.first = seconds
        origin = self.origins.setdefault(kind, self.first)
        at = self.resumed + seconds - origin
        now = time.monotonic() - self.started
        if at - now > self.MAX_JUMP_SECONDS or at < self.last.get(kind, 0.0) - self.MAX_JUMP_SECONDS:
            self.origins[kind] = seconds - (now - self.resumed)
            at = now
        self.last[kind] = at
        return at
