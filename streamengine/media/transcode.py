"""The transcoding path: only for subscribers that ask for another format or parameters.

The publication's track is decoded once (its receiver's own decoder thread, enabled by
the tap's ``decode`` flag) and shared through aiortc's ``MediaRelay``.

* Video: one :class:`SharedEncoding` per distinct (codec, parameters) of a publication
  scales, thins the frame rate and encodes once (PyAV, ``encoding.VideoEncoder``); every
  subscriber asking for the same gets those packets, as RTP packetized once and forwarded
  (``rtpforward``: its ``rtp`` source) or as frames through its own ``ForwardedTrack``
  (keyframe requests go to the shared encoder). So N subscribers of one transcoded form
  cost one encode, as forwarding costs none.
* Audio (cheap), and every track when the SFU runs with ``transcode_all`` (the benchmark's
  MediaRelay baseline): a :class:`TranscodedTrack` per subscriber, whose sender encodes.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging

from aiortc import RTCRtpReceiver
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streamengine.media.encoding import VIDEO_CLOCK, VideoEncoder, default_bitrate
from streamengine.media.passthrough import ForwardedTrack
from streamengine.media.resolutions import target_size
from streamengine.media.rtpforward import Packetizer, RtpSource

logger = logging.getLogger(__name__)
# Assumed for a transcoded output without a frame rate of its own (OWT's default source).
DEFAULT_FRAMERATE = 30
DEFAULT_KEYFRAME_SECONDS = 100

_relay = MediaRelay()


class TranscodedTrack(MediaStreamTrack):
    def __init__(self, receiver: RTCRtpReceiver, kind: str, parameters: dict) -> None:
        super().__init__()
        self.kind = kind
        self.source = _relay.subscribe(receiver.track, buffered=False)
        self.parameters = parameters
        self.framerate = float(parameters.get("framerate") or 0)
        self.next_pts: float | None = None
        self.paused = False
        self.forwarded = 0
        self.successor: MediaStreamTrack | None = None
        self.handed_over = asyncio.Event()

    def hand_over(self, successor: MediaStreamTrack) -> None:
        """As ``ForwardedTrack.hand_over``: a waiting ``recv`` returns ``successor``'s next frame."""
        self.successor = successor
        self.handed_over.set()
        self.stop()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    async def recv(self):
        while True:
            if self.successor is not None:
                return await self.successor.recv()
            if self.readyState != "live":
                raise MediaStreamError
            receiving = asyncio.ensure_future(self.source.recv())
            handed_over = asyncio.ensure_future(self.handed_over.wait())
            await asyncio.wait({receiving, handed_over}, return_when=asyncio.FIRST_COMPLETED)
            handed_over.cancel()
            if not receiving.done():
                receiving.cancel()
                continue
            frame = receiving.result()
            if self.paused:
                continue
            if self.kind == "video":
                if self.framerate and frame.time is not None:
                    if self.next_pts is not None and frame.time < self.next_pts:
                        continue
                    self.next_pts = frame.time + 1 / self.framerate
                size = target_size(self.parameters.get("resolution"), frame.width, frame.height)
                if size and size != (frame.width, frame.height):
                    scaled = frame.reformat(width=size[0], height=size[1])
                    scaled.pts, scaled.time_base = frame.pts, frame.time_base
                    frame = scaled
            self.forwarded += 1
            return frame

    def stop(self) -> None:
        super().stop()
        self.source.stop()


def encoding_key(codec: str, parameters: dict) -> str:
    return json.dumps([codec, parameters], sort_keys=True)


def output_bitrate(parameters: dict, width: int, height: int, framerate: float) -> float:
    """kbps: a number as given, ``"x0.8"`` relative to the usual rate for the output's size."""
    bitrate = parameters.get("bitrate")
    usual = default_bitrate(width, height, int(framerate))
    if isinstance(bitrate, str) and bitrate.startswith("x"):
        return usual * float(bitrate[1:])
    return float(bitrate) if bitrate else usual


class SharedEncoding:
    """One transcoded form of a published video track, encoded once for all its subscribers."""

    def __init__(self, receiver: RTCRtpReceiver, codec: str, parameters: dict) -> None:
        self.codec = codec
        self.parameters = parameters
        self.framerate = float(parameters.get("framerate") or 0)
        self.source = _relay.subscribe(receiver.track, buffered=False)
        self.subscribers: set[ForwardedTrack] = set()  # fed frames
        self.rtp = RtpSource("video", codec, self.request_keyframe)  # its forwarders are fed RTP
        self.packetizer = Packetizer(codec, self.rtp)
        self.users = 0  # subscriptions fed by it, connected or not yet
        self.encoder: VideoEncoder | None = None
        self.size: tuple[int, int] | None = None
        self.next_time: float | None = None
        self.encoded = 0
        self.task = asyncio.ensure_future(self._run())

    def attach(self, track: ForwardedTrack) -> None:
        self.subscribers.add(track)
        track.cut_to_keyframe()

    @property
    def fanout(self) -> int:
        """How many subscribers get this form now (as frames or as RTP)."""
        return len(self.subscribers) + len(self.rtp.forwarders)

    def request_keyframe(self) -> None:
        if self.encoder is not None:
            self.encoder.keyframe_wanted = True

    def _encoder_for(self, width: int, height: int) -> VideoEncoder:
        if self.encoder is None or self.size != (width, height):
            framerate = self.framerate or DEFAULT_FRAMERATE
            self.encoder = VideoEncoder(
                self.codec,
                width,
                height,
                int(framerate),
                output_bitrate(self.parameters, width, height, framerate),
                int(self.parameters.get("keyFrameInterval") or DEFAULT_KEYFRAME_SECONDS),
            )
            self.size = (width, height)
        return self.encoder

    async def _run(self) -> None:
        while True:
            try:
                frame = await self.source.recv()
            except MediaStreamError:
                return
            if not self.fanout or frame.time is None:
                continue
            if self.framerate:
                if self.next_time is not None and frame.time < self.next_time:
                    continue
                self.next_time = frame.time + 1 / self.framerate
            size = target_size(self.parameters.get("resolution"), frame.width, frame.height)
            width, height = size or (frame.width, frame.height)
            width, height = width // 2 * 2, height // 2 * 2
            if (width, height) != (frame.width, frame.height) or frame.format.name != "yuv420p":
                scaled = frame.reformat(width=width, height=height, format="yuv420p")
                scaled.pts, scaled.time_base = frame.pts, frame.time_base
                frame = scaled
            timestamp = round(frame.time * VIDEO_CLOCK)
            try:
                packets = await asyncio.to_thread(self._encoder_for(width, height).encode, frame, timestamp)
            except Exception:  # one bad frame must not end the output for everyone
                logger.exception("transcoding to %s failed for a frame", self.codec)
                continue
            for packet in packets:
                data = bytes(packet)
                for subscriber in list(self.subscribers):
                    subscriber.push(data, timestamp % 2**32)
                if self.rtp.forwarders:
                    packet.pts, packet.time_base = timestamp, fractions.Fraction(1, VIDEO_CLOCK)
                    await self.packetizer.send(packet)
                self.encoded += 1

    def stop(self) -> None:
        self.task.cancel()
        self.source.stop()
        for track in [*self.subscribers, *self.rtp.forwarders]:
            track.stop()
        self.subscribers.clear()
