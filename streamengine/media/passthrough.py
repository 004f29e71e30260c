"""Encoded-frame passthrough on top of aiortc (pinned: ``aiortc==1.16.0``).

aiortc has no public API to forward encoded frames, but both ends are reachable
(see docs/media-engine.md):

* receive side: ``RTCRtpReceiver`` hands each reassembled ``(codec, JitterFrame)`` to
  its decoder thread through the private queue ``_RTCRtpReceiver__decoder_queue``. We
  replace that queue with :class:`FrameTap`, whose ``put()`` runs on the event loop (in
  the RTP handler) and fans the frame out to subscribers without decoding it.
* send side: ``RTCRtpSender`` only *packs* an ``av.Packet`` returned by its track
  (no encoding), so :class:`ForwardedTrack` returns packets built from those frames.
* keyframes: a subscriber's PLI/FIR reaches ``RTCRtpSender._send_keyframe()``; we
  route it to the publisher with ``RTCRtpReceiver._send_rtcp_pli()``.

``check_aiortc_internals()`` runs at node start-up and fails loudly if an aiortc
upgrade removed any of the private names this, and the RTP forwarding
(``rtpforward.py``), rely on.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import queue
import threading
import time
from collections.abc import Callable

import av
from aiortc import RTCDtlsTransport, RTCRtpReceiver, RTCRtpSender, RTCRtpTransceiver
from aiortc.codecs.base import Encoder
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

logger = logging.getLogger(__name__)

DECODER_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
# Frames a slow subscriber may lag behind before it is cut back to the next keyframe.
SUBSCRIBER_QUEUE_FRAMES = 60
# Keyframe requests to one publisher are spaced at least this far apart.
KEYFRAME_REQUEST_INTERVAL = 0.3
# A subscriber waiting for a keyframe asks again after this long without one.
KEYFRAME_RETRY_SECONDS = 1.0

CLOCK_RATES = {"audio": 48000, "video": 90000}


class AiortcInternalsChanged(RuntimeError):
    pass


class _ClosedTransport:
    """Just enough of a DTLS transport to construct a receiver for the start-up check."""

    state = "new"


def check_aiortc_internals() -> None:
    """Fail loudly if the private aiortc names the engine uses are gone."""
    receiver = RTCRtpReceiver("video", _ClosedTransport())  # type: ignore[arg-type]
    missing = []
    if not isinstance(getattr(receiver, DECODER_QUEUE_ATTR, None), queue.Queue):
        missing.append(f"RTCRtpReceiver.{DECODER_QUEUE_ATTR}")
    if not asyncio.iscoroutinefunction(getattr(RTCRtpReceiver, "_send_rtcp_pli", None)):
        missing.append("RTCRtpReceiver._send_rtcp_pli")
    if not callable(getattr(RTCRtpSender, "_send_keyframe", None)):
        missing.append("RTCRtpSender._send_keyframe")
    if not callable(getattr(Encoder, "pack", None)):
        missing.append("aiortc.codecs.base.Encoder.pack")
    transceiver_init = RTCRtpTransceiver.__init__.__code__
    if "_codecs" not in transceiver_init.co_names:
        missing.append("RTCRtpTransceiver._codecs")
    if "_stream_id" not in RTCRtpSender.__init__.__code__.co_names:
        missing.append("RTCRtpSender._stream_id")
    missing += _missing_rtp_forwarding_internals()
    if missing:
        raise AiortcInternalsChanged(
            "aiortc changed: the encoded-frame passthrough needs "
            + ", ".join(missing)
            + ". Pin aiortc==1.16.0 (requirements.txt) or port streamengine/media/passthrough.py."
        )


def _missing_rtp_forwarding_internals() -> list[str]:
    """What ``rtpforward`` uses: the names, and that aiortc still calls the ones it overrides."""
    missing = []
    # (class, coroutine method, the method of the same class or another that must call it)
    coroutines = [
        (RTCRtpReceiver, "_handle_rtp_packet", (RTCDtlsTransport, "_handle_rtp_data")),
        (RTCDtlsTransport, "_send_rtp", None),
        (RTCRtpSender, "_retransmit", (RTCRtpSender, "_handle_rtcp_packet")),
        (RTCRtpSender, "_send_rtcp", (RTCRtpSender, "_run_rtcp")),
    ]
    for owner, name, caller in coroutines:
        calls = getattr(getattr(*caller, None), "__code__", None) if caller else None
        called = caller is None or (calls is not None and name in calls.co_names)
        if not asyncio.iscoroutinefunction(getattr(owner, name, None)) or not called:
            missing.append(f"{owner.__name__}.{name}")
    for name in ("_ssrc", "_rtx_ssrc"):
        if name not in RTCRtpSender.__init__.__code__.co_names:
            missing.append(f"RTCRtpSender.{name}")
    return missing


def is_keyframe(codec: str, data: bytes) -> bool:
    """Whether an encoded frame can start decoding (audio frames always can)."""
    if codec == "vp8":
        # RFC 6386 §9.1: bit 0 of the frame tag is 0 for key frames.
        return bool(data) and not data[0] & 0x01
    if codec == "h264":
        return H264_IDR in h264_nal_types(data)  # an IDR slice
    return True


H264_IDR, H264_SPS, H264_PPS = 5, 7, 8


def h264_nal_types(data: bytes) -> set[int]:
    """The NAL unit types of an Annex-B H.264 access unit (after each start code)."""
    types = set()
    index = data.find(b"\x00\x00\x01")
    while index != -1 and index + 3 < len(data):
        types.add(data[index + 3] & 0x1F)
        index = data.find(b"\x00\x00\x01", index + 3)
    return types


def vp8_resolution(data: bytes) -> tuple[int, int] | None:
    """Width and height from a VP8 keyframe header (RFC 6386 §9.1), None otherwise."""
    if len(data) < 10 or data[0] & 0x01 or data[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(data[6:8], "little") & 0x3FFF, int.from_bytes(data[8:10], "little") & 0x3FFF


class FrameTap(queue.Queue):
    """Replaces a receiver's decoder queue: encoded frames go to ``on_frame``, not the decoder.

    ``put()`` is called by the receiver on the event loop. The end-of-stream ``None`` is
    passed through so the receiver's (idle) decoder thread exits when it stops. When
    ``decode`` is set (a transcoding subscriber exists) frames also reach the decoder.
    """

    def __init__(self, on_frame: Callable[[str, object], None]) -> None:
        super().__init__()
        self.on_frame = on_frame
        self.decode = False

    def get(self, block: bool = True, timeout: float | None = None):
        """The receiver's decoder thread reads here. It is not a daemon thread: if the process
        exits without closing the peer connection (a server stopped by SIGTERM), wake it up
        with end-of-stream once the main thread has finished, so the interpreter can exit."""
        while True:
            try:
                return super().get(block, 1.0 if block and timeout is None else timeout)
            except queue.Empty:
                if not block or timeout is not None:
                    raise
                if not threading.main_thread().is_alive():
                    return None

    def put(self, item, block: bool = True, timeout: float | None = None) -> None:
        if item is None:
            super().put(None)
            return
        codec, frame = item
        self.on_frame(codec.mimeType.split("/")[1].lower(), frame)
        if self.decode:
            super().put(item)


def install_tap(receiver: RTCRtpReceiver, on_frame: Callable[[str, object], None]) -> FrameTap:
    """Install a tap on a receiver before it starts (i.e. from the ``track`` event)."""
    tap = FrameTap(on_frame)
    setattr(receiver, DECODER_QUEUE_ATTR, tap)
    return tap


def request_keyframe_from(receiver: RTCRtpReceiver) -> None:
    """Send a PLI for every SSRC the receiver currently hears."""
    for source in receiver.getSynchronizationSources():
        asyncio.ensure_future(receiver._send_rtcp_pli(source.source))


class KeyframeRequester:
    """Rate-limits PLIs to one publisher; a request inside the interval is deferred, not lost."""

    def __init__(self, receiver: RTCRtpReceiver, interval: float = KEYFRAME_REQUEST_INTERVAL) -> None:
        self.receiver = receiver
        self.interval = interval
        self.last = 0.0
        self.pending: asyncio.TimerHandle | None = None
        self.sent = 0

    def request(self) -> None:
        if self.pending is not None:
            return
        wait = self.last + self.interval - time.monotonic()
        if wait <= 0:
            self._send()
        else:
            self.pending = asyncio.get_running_loop().call_later(wait, self._send)

    def _send(self) -> None:
        self.pending = None
        self.last = time.monotonic()
        self.sent += 1
        request_keyframe_from(self.receiver)

    def cancel(self) -> None:
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None


class ForwardedTrack(MediaStreamTrack):
    """One subscriber's view of a published track: encoded frames in, ``av.Packet`` out.

    The queue is bounded; on overflow it is emptied and the subscriber waits for the next
    keyframe (asking the publisher for one) instead of lagging further behind.
    """

    def __init__(self, kind: str, codec: str, request_keyframe: Callable[[], None]) -> None:
        super().__init__()
        self.kind = kind
        self.codec = codec
        self.request_keyframe = request_keyframe
        self.time_base = fractions.Fraction(1, CLOCK_RATES[kind])
        self.queue: asyncio.Queue = asyncio.Queue(SUBSCRIBER_QUEUE_FRAMES)
        self.waiting_keyframe = kind == "video"
        self.paused = False
        self.forwarded = 0
        self.dropped = 0
        self.successor: MediaStreamTrack | None = None
        # What pushes its frames: None, the publisher's (``PublishedTrack``); else the
        # transcoded form it gets (``transcode.SharedEncoding``).
        self.feed: object | None = None

    def hand_over(self, successor: MediaStreamTrack) -> None:
        """The sender now sends ``successor`` (``replaceTrack``): the ``recv`` it is still
        waiting on here returns ``successor``'s next frame instead of ending its RTP loop."""
        self.successor = successor
        self.stop()
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(None)  # wakes that recv now

    def push(self, data: bytes, timestamp: int) -> None:
        if self.paused or self.readyState != "live":
            return
        if self.waiting_keyframe:
            if not is_keyframe(self.codec, data):
                self.dropped += 1
                return
            self.waiting_keyframe = False
        try:
            self.queue.put_nowait((data, timestamp))
        except asyncio.QueueFull:
            self.dropped += self.queue.qsize() + 1
            while not self.queue.empty():
                self.queue.get_nowait()
            self.cut_to_keyframe()

    def cut_to_keyframe(self) -> None:
        if self.kind == "video":
            self.waiting_keyframe = True
            self.request_keyframe()

    def set_paused(self, paused: bool) -> None:
        if paused == self.paused:
            return
        self.paused = paused
        if not paused:
            self.cut_to_keyframe()

    async def recv(self) -> av.Packet:
        while True:
            if self.successor is not None:
                return await self.successor.recv()
            if self.readyState != "live":
                raise MediaStreamError
            try:
                item = await asyncio.wait_for(self.queue.get(), KEYFRAME_RETRY_SECONDS)
            except TimeoutError:
                if self.waiting_keyframe and not self.paused:
                    self.request_keyframe()
                continue
            if item is None:
                continue  # handed over
            data, timestamp = item
            packet = av.Packet(data)
            packet.pts = timestamp
            packet.time_base = self.time_base
            self.forwarded += 1
            return packet


def route_keyframe_requests(sender: RTCRtpSender, request_keyframe: Callable[[], None] | None) -> None:
    """A subscriber's PLI/FIR on ``sender`` asks the publisher (the sender has no encoder);
    None: its own encoder again (aiortc's ``_send_keyframe``), for a transcoded feed."""
    if request_keyframe is None:
        sender.__dict__.pop("_send_keyframe", None)
    else:
        sender._send_keyframe = request_keyframe  # type: ignore[method-assign]


def restrict_codecs(transceiver: RTCRtpTransceiver, accept: Callable[[str], bool]) -> bool:
    """Keep only the negotiated codecs ``accept`` allows (and their RTX); False if none is left.

    Called between ``setRemoteDescription(offer)`` and ``createAnswer()``: aiortc builds
    the answer from ``transceiver._codecs``.
    """
    kept = [c for c in transceiver._codecs if accept(c.mimeType.split("/")[1].lower())]
    payload_types = {c.payloadType for c in kept}
    rtx = [
        c
        for c in transceiver._codecs
        if c.mimeType.lower().endswith("/rtx") and c.parameters.get("apt") in payload_types
    ]
    if not kept:
        return False
    transceiver._codecs = kept + rtx
    return True
