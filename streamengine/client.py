"""A Python (aiortc) client of the signaling protocol: join, publish, subscribe.

Used by tests, the SFU benchmark and server-side media jobs (recording, egress), which
join a room as participants with an internal token::

    async with ConferenceClient(url) as client:
        await client.join(token)
        publication = await client.publish([SyntheticVideoTrack(), SyntheticAudioTrack()])
        subscription = await client.subscribe(stream_id)
        frame = await subscription.tracks["video"].recv()      # decoded av.VideoFrame

``subscribe(..., encoded=True)`` skips decoding: ``subscription.frames`` then receives
the publisher's encoded frames (``(kind, bytes, rtp timestamp)``), for jobs that mux
without re-encoding; ``subscribe(..., rtp=callback)`` only hands over the RTP packets
(the SFU benchmark's cheap receivers).
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import itertools
import json
import math
import os
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import av
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCRtpCodecCapability, RTCRtpSender, RTCSessionDescription
from aiortc.contrib.media import MediaPlayer
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from aiortc.rtp import RtpPacket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from streamengine.media.ice import rtc_configuration
from streamengine.media.mixer import bt601
from streamengine.media.passthrough import install_tap
from streamengine.media.rtpforward import tap_rtp

SDK = {"sdk": {"type": "Python", "version": "1.0"}, "runtime": {"name": "aiortc"}}


class SignalingError(Exception):
    """The server acknowledged a request with ``error``; the message is its data."""


class SyntheticVideoTrack(VideoStreamTrack):
    """640x480 (default) video at 30 fps.

    ``pattern="bars"``: a bright bar sweeping over a gradient (cheap to encode);
    ``"noise"``: random luma, the worst case for an encoder (benchmarks);
    ``"solid"``: the whole picture in ``color`` (RGB), to tell inputs apart in a mix.
    """

    def __init__(
        self,
        width: int = 640,
        height: int = 480,
        period: int = 30,
        pattern: str = "bars",
        color: tuple[int, int, int] = (255, 255, 255),
    ) -> None:
        super().__init__()
        self.width, self.height = width, height
        quarter = width // 2 * height // 2
        self.chroma = [bytes([128]) * quarter] * 2
        if pattern == "noise":
            self.planes = [os.urandom(width * height) for _ in range(period)]
        elif pattern == "solid":
            self.set_color(color)
        else:
            self.planes = [self._luma(i * width // period) for i in range(period)]
        self.index = itertools.cycle(range(len(self.planes)))

    def set_color(self, color: tuple[int, int, int]) -> None:
        """The ``solid`` pattern's colour, from the next frame on."""
        y, u, v = bt601(*color)
        quarter = self.width // 2 * self.height // 2
        self.planes = [bytes([y]) * (self.width * self.height)]
        self.chroma = [bytes([u]) * quarter, bytes([v]) * quarter]

    def _luma(self, bar: int) -> bytes:
        row = bytearray(x * 200 // self.width for x in range(self.width))
        row[bar : bar + self.width // 10] = b"\xeb" * len(row[bar : bar + self.width // 10])
        return bytes(row) * self.height

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(self.width, self.height, "yuv420p")
        frame.planes[0].update(self.planes[next(self.index)])
        frame.planes[1].update(self.chroma[0])
        frame.planes[2].update(self.chroma[1])
        frame.pts, frame.time_base = pts, time_base
        return frame


class SyntheticAudioTrack(MediaStreamTrack):
    """A 440 Hz tone, 48 kHz mono, 20 ms frames, paced in real time (``amplitude`` 0: silence)."""

    kind = "audio"
    samples = 960
    sample_rate = 48000

    def __init__(self, frequency: float = 440.0, amplitude: int = 8000) -> None:
        super().__init__()
        self.frequency = frequency
        self.set_amplitude(amplitude)
        self.start: float | None = None
        self.pts = 0

    def set_amplitude(self, amplitude: int) -> None:
        """Louder or quieter from the next frame on (0: silence)."""
        self.payload = b"".join(
            struct.pack("<h", int(amplitude * math.sin(2 * math.pi * self.frequency * i / self.sample_rate)))
            for i in range(self.samples)
        )

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        if self.start is None:
            self.start = time.time()
        else:
            self.pts += self.samples
            await asyncio.sleep(self.start + self.pts / self.sample_rate - time.time())
        frame = av.AudioFrame(format="s16", layout="mono", samples=self.samples)
        frame.planes[0].update(self.payload)
        frame.pts, frame.sample_rate = self.pts, self.sample_rate
        frame.time_base = fractions.Fraction(1, self.sample_rate)
        return frame


@dataclass
class Session:
    id: str
    pc: RTCPeerConnection
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)  # subscriptions: by kind
    frames: asyncio.Queue | None = None  # encoded subscriptions: (kind, data, timestamp)
    codecs: dict[str, str] = field(default_factory=dict)  # encoded subscriptions: codec by kind


class ConferenceClient:
    def __init__(self, url: str) -> None:
        """``url``: the portal's signaling endpoint, e.g. ``ws://127.0.0.1:8080/ws/signaling/``."""
        self.url = url
        self.ws: ClientConnection | None = None
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future] = {}
        self.notifications: asyncio.Queue = asyncio.Queue()
        self.sessions: dict[str, Session] = {}
        self.reader: asyncio.Task | None = None
        self.info: dict = {}
        self.closed = asyncio.Event()

    async def __aenter__(self) -> ConferenceClient:
        self.ws = await connect(self.url, max_size=2**22)
        self.reader = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """Leave (``logout``, so the server does not keep the participant for a relogin) and disconnect."""
        if self.info and not self.closed.is_set():
            with contextlib.suppress(SignalingError, ConnectionError, TimeoutError):
                await self.request("logout", timeout=2)
        for session in list(self.sessions.values()):
            await session.pc.close()
        self.sessions.clear()
        if self.ws is not None:
            await self.ws.close()
        if self.reader is not None:
            self.reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.reader

    async def _read(self) -> None:
        try:
            async for text in self.ws:
                frame = json.loads(text)
                if frame.get("type") == "ack":
                    future = self.pending.pop(frame.get("id"), None)
                    if future is not None and not future.done():
                        future.set_result(frame)
                elif frame.get("type") == "notification":
                    self._on_notification(frame["event"], frame.get("data"))
        except Exception:  # connection lost: requests in flight fail below
            pass
        finally:
            self.closed.set()
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("signaling connection closed"))

    def _on_notification(self, event: str, data) -> None:
        if event == "progress" and isinstance(data, dict):
            session = self.sessions.get(data.get("sessionId") or data.get("id"))
            if session is not None:
                if data.get("status") == "soac" and data["data"].get("type") == "answer":
                    asyncio.ensure_future(session.pc.setRemoteDescription(RTCSessionDescription(**data["data"])))
                elif data.get("status") == "ready" and data.get("sessionId"):
                    session.ready.set()
                elif data.get("status") == "error":
                    session.error = str(data.get("data"))
                    session.ready.set()
        self.notifications.put_nowait((event, data))

    async def request(self, event: str, data=None, timeout: float = 10.0):
        """Send a request; returns the ack data or raises :class:`SignalingError`."""
        request_id = next(self.ids)
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        try:
            await self.ws.send(json.dumps({"type": "request", "id": request_id, "event": event, "data": data}))
            ack = await asyncio.wait_for(future, timeout)
        except ConnectionClosed as exc:
            raise ConnectionError("signaling connection closed") from exc
        finally:
            self.pending.pop(request_id, None)
        if ack["status"] != "ok":
            raise SignalingError(ack["data"])
        return ack["data"]

    async def wait_for(self, event: str, predicate=lambda data: True, timeout: float = 10.0):
        """The next notification ``event`` whose data satisfies ``predicate`` (others are skipped)."""
        async with asyncio.timeout(timeout):
            while True:
                name, data = await self.notifications.get()
                if name == event and predicate(data):
                    return data

    async def join(self, token: str) -> dict:
        self.info = await self.request("login", {"token": token, "userAgent": SDK, "protocol": "1.2"})
        return self.info

    async def relogin(self, ticket: str) -> dict:
        """Resume a participant whose socket dropped; returns ``{ticket, messages}``."""
        resumed = await self.request("relogin", ticket)
        self.info = {**self.info, "reconnectionTicket": resumed["ticket"]}
        return resumed

    async def leave(self) -> None:
        await self.request("logout")

    async def _negotiate(self, event: str, pc: RTCPeerConnection, data: dict, timeout: float) -> Session:
        await pc.setLocalDescription(await pc.createOffer())  # aiortc gathers all candidates here
        ack = await self.request(event, data)
        session = self.sessions[ack["id"]] = Session(ack["id"], pc)
        await self.request(
            "soac", {"id": ack["transportId"], "signaling": {"type": "offer", "sdp": pc.localDescription.sdp}}
        )
        async with asyncio.timeout(timeout):
            await session.ready.wait()
        if session.error:
            await pc.close()
            del self.sessions[session.id]
            raise SignalingError(session.error)
        return session

    async def publish(
        self,
        tracks: list[MediaStreamTrack],
        *,
        attributes: dict | None = None,
        video_codec: str | None = None,
        timeout: float = 15.0,
    ) -> Session:
        """Publish ``tracks`` (video as ``video_codec``, e.g. ``"h264"``, if given); returns when ready."""
        pc = RTCPeerConnection(rtc_configuration())
        transceivers = [pc.addTransceiver(track, direction="sendonly") for track in tracks]
        if video_codec:
            for transceiver in transceivers:
                if transceiver.kind == "video":
                    transceiver.setCodecPreferences(_codecs("video", video_codec))
        await pc.setLocalDescription(await pc.createOffer())
        media = {
            "tracks": [
                {"type": t.kind, "mid": t.mid, "source": "mic" if t.kind == "audio" else "camera"} for t in transceivers
            ]
        }
        return await self._negotiate(
            "publish", pc, {"media": media, "attributes": attributes or {}, "transport": {"type": "webrtc"}}, timeout
        )

    async def publish_file(self, path: str, **kwargs) -> Session:
        """Publish a media file's audio and video (decoded and re-encoded by aiortc)."""
        player = MediaPlayer(path)
        return await self.publish([t for t in (player.video, player.audio) if t is not None], **kwargs)

    async def subscribe(
        self,
        stream_id: str,
        *,
        audio: bool = True,
        video: bool = True,
        encoded: bool = False,
        rtp: Callable[[str, RtpPacket], None] | None = None,
        video_format: dict | None = None,
        video_parameters: dict | None = None,
        timeout: float = 15.0,
    ) -> Session:
        """Subscribe to a stream's tracks; ``encoded`` delivers encoded frames instead of decoding.

        ``rtp``: ``rtp(kind, packet)`` gets the RTP packets as they arrive (decrypted) and
        nothing else happens to them (no NACK, reassembly or decoding): a cheap receiver.
        """
        pc = RTCPeerConnection(rtc_configuration())
        frames: asyncio.Queue | None = asyncio.Queue(maxsize=1000) if encoded else None
        received: dict[str, MediaStreamTrack] = {}
        codecs: dict[str, str] = {}

        def tapped(codec: str, frame, kind: str) -> None:
            codecs[kind] = codec
            _offer(frames, (kind, frame.data, frame.timestamp))

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            received[track.kind] = track
            receiver = next(t.receiver for t in pc.getTransceivers() if t.receiver.track is track)
            if rtp is not None:
                tap_rtp(receiver, lambda packet, kind=track.kind: rtp(kind, packet), then_receive=False)
            elif frames is not None:
                install_tap(receiver, lambda codec, frame, kind=track.kind: tapped(codec, frame, kind))

        kinds = [k for k, wanted in (("video", video), ("audio", audio)) if wanted]
        transceivers = [pc.addTransceiver(kind, direction="recvonly") for kind in kinds]
        await pc.setLocalDescription(await pc.createOffer())
        tracks = []
        for t in transceivers:
            track = {"type": t.kind, "mid": t.mid, "from": stream_id}
            if t.kind == "video" and video_format:
                track["format"] = video_format
            if t.kind == "video" and video_parameters:
                track["parameters"] = video_parameters
            tracks.append(track)
        session = await self._negotiate(
            "subscribe", pc, {"media": {"tracks": tracks}, "transport": {"type": "webrtc"}}, timeout
        )
        session.tracks, session.frames, session.codecs = received, frames, codecs
        return session

    async def unpublish(self, session: Session) -> None:
        await self.request("unpublish", {"id": session.id})
        await self._drop_session(session)

    async def unsubscribe(self, session: Session) -> None:
        await self.request("unsubscribe", {"id": session.id})
        await self._drop_session(session)

    async def _drop_session(self, session: Session) -> None:
        self.sessions.pop(session.id, None)
        await session.pc.close()

    async def stream_control(self, stream_id: str, operation: str, kinds: str = "av") -> None:
        await self.request("stream-control", {"id": stream_id, "operation": operation, "data": kinds})

    async def subscription_control(self, subscription_id: str, operation: str, kinds: str = "av") -> None:
        await self.request("subscription-control", {"id": subscription_id, "operation": operation, "data": kinds})

    async def text(self, to: str, message) -> None:
        await self.request("text", {"to": to, "message": message})


def _codecs(kind: str, name: str) -> list[RTCRtpCodecCapability]:
    """The capabilities of codec ``name`` and its RTX, for ``setCodecPreferences``."""
    codecs = RTCRtpSender.getCapabilities(kind).codecs
    return [c for c in codecs if c.mimeType.lower() in (f"{kind}/{name}".lower(), f"{kind}/rtx")]


def _offer(queue: asyncio.Queue, item: tuple) -> None:
    """Keep the newest frames: a consumer that stops reading must not grow memory."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
