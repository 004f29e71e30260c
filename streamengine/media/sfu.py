"""The SFU proper: one RTCPeerConnection per session transport, frames forwarded between them.

Every publication is received once (its tracks tapped, see ``passthrough``); every
subscription gets its own sender per track, fed by a :class:`ForwardedTrack`. When a
subscriber cannot take the publication's codec, its track is served by the transcoding
path instead (decode once per publication track, encode per subscriber, ``transcode``).

The SFU knows nothing about Django or the channel layer: it reports through ``emit``
(``reply channel, message``), and the media node relays that to the portal.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpTransceiver, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from streamengine.media.ice import rtc_configuration
from streamengine.media.passthrough import (
    ForwardedTrack,
    KeyframeRequester,
    install_tap,
    restrict_codecs,
    route_keyframe_requests,
)
from streamengine.media.transcode import TranscodedTrack

logger = logging.getLogger(__name__)

Emit = Callable[[str, dict], Awaitable[None]]

H264_PROFILES = {"42e0": "CB", "4200": "B", "4d00": "M", "6400": "H"}


def codec_name(transceiver: RTCRtpTransceiver) -> str:
    return transceiver._codecs[0].mimeType.split("/")[1].lower()


def track_format(transceiver: RTCRtpTransceiver) -> dict:
    """The negotiated codec in OWT's format notation (``{"codec":"vp8"}`` …)."""
    codec = transceiver._codecs[0]
    name = codec.mimeType.split("/")[1].lower()
    if transceiver.kind == "audio":
        fmt = {"codec": name, "sampleRate": codec.clockRate}
        if codec.channels:
            fmt["channelNum"] = codec.channels
        return fmt
    fmt = {"codec": name}
    if name == "h264":
        profile = str(codec.parameters.get("profile-level-id", ""))[:4].lower()
        if profile in H264_PROFILES:
            fmt["profile"] = H264_PROFILES[profile]
    return fmt


class PublishedTrack:
    """One received track of a publication, fanned out to its subscribers."""

    def __init__(self, kind: str, receiver: RTCRtpReceiver) -> None:
        self.kind = kind
        self.receiver = receiver
        self.codec = ""
        self.format: dict = {}
        self.active = True
        self.subscribers: set[ForwardedTrack] = set()
        self.transcoded: set[TranscodedTrack] = set()
        self.keyframes = KeyframeRequester(receiver)
        self.tap = install_tap(receiver, self.on_frame)
        self.frames = 0
        self.resolution: tuple[int, int] | None = None

    def on_frame(self, codec: str, frame) -> None:
        self.codec = codec
        self.frames += 1
        if not self.active:
            return
        for subscriber in self.subscribers:
            subscriber.push(frame.data, frame.timestamp)

    def attach(self, track: ForwardedTrack) -> None:
        self.subscribers.add(track)
        track.cut_to_keyframe()

    def detach(self, track: ForwardedTrack | TranscodedTrack) -> None:
        self.subscribers.discard(track)  # type: ignore[arg-type]
        self.transcoded.discard(track)  # type: ignore[arg-type]
        self.tap.decode = bool(self.transcoded)

    def set_active(self, active: bool) -> None:
        self.active = active
        if active:
            for subscriber in self.subscribers:
                subscriber.cut_to_keyframe()

    def stop(self) -> None:
        self.keyframes.cancel()
        for track in [*self.subscribers, *self.transcoded]:
            track.stop()
        self.subscribers.clear()
        self.transcoded.clear()


@dataclass
class Session:
    """A publication or subscription and the transport (peer connection) that carries it."""

    id: str
    kind: str  # "publication" | "subscription"
    participant_id: str
    reply: str  # channel of the participant's signaling consumer
    tracks: list[dict]
    accept: dict[str, set[str]] = field(default_factory=dict)  # publications: allowed codecs per kind
    source: str = ""  # subscriptions: the publication id
    pc: RTCPeerConnection | None = None
    published: dict[str, PublishedTrack] = field(default_factory=dict)  # by mid
    forwarded: dict[str, ForwardedTrack | TranscodedTrack] = field(default_factory=dict)  # by mid
    ready: bool = False


class SessionError(Exception):
    pass


class SFU:
    def __init__(self, emit: Emit, *, transcode_all: bool = False) -> None:
        self.emit = emit
        # Benchmark baseline: serve every subscriber by decode + re-encode (MediaRelay).
        self.transcode_all = transcode_all
        self.sessions: dict[str, Session] = {}  # by session id (== transport id)

    # --- sessions -------------------------------------------------------------------

    def add_publication(self, *, session_id: str, participant_id: str, reply: str, tracks: list[dict], accept: dict):
        self.sessions[session_id] = Session(session_id, "publication", participant_id, reply, tracks, accept=accept)

    def add_subscription(self, *, session_id: str, participant_id: str, reply: str, tracks: list[dict], source: str):
        self.sessions[session_id] = Session(session_id, "subscription", participant_id, reply, tracks, source=source)

    async def end_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        for published in session.published.values():
            published.stop()
        for track in session.forwarded.values():
            source = self._source_track(session.source, track.kind)
            if source is not None:
                source.detach(track)
            track.stop()
        if session.kind == "publication":
            for other in [s for s in self.sessions.values() if s.source == session_id]:
                await self.end_session(other.id)
        if session.pc is not None:
            await session.pc.close()

    async def end_participant(self, participant_id: str) -> None:
        for session_id in [s.id for s in self.sessions.values() if s.participant_id == participant_id]:
            await self.end_session(session_id)

    async def close(self) -> None:
        for session_id in list(self.sessions):
            await self.end_session(session_id)

    def set_publication_active(self, session_id: str, kinds: set[str], active: bool) -> None:
        session = self.sessions.get(session_id)
        for published in session.published.values() if session else ():
            if published.kind in kinds:
                published.set_active(active)

    def set_subscription_paused(self, session_id: str, kinds: set[str], paused: bool) -> None:
        session = self.sessions.get(session_id)
        for track in session.forwarded.values() if session else ():
            if track.kind in kinds:
                track.set_paused(paused)

    def _source_track(self, publication_id: str, kind: str) -> PublishedTrack | None:
        publication = self.sessions.get(publication_id)
        if publication is None:
            return None
        return next((t for t in publication.published.values() if t.kind == kind), None)

    # --- signaling --------------------------------------------------------------------

    async def soac(self, session_id: str, signaling: dict) -> None:
        session = self.sessions.get(session_id)
        if session is None:
            return
        kind = signaling.get("type")
        try:
            if kind == "offer":
                await self._answer(session, signaling["sdp"])
            elif kind == "candidate" and session.pc is not None:
                await self._add_candidate(session, signaling.get("candidate") or {})
            # aiortc gathers before answering and does not prune, so removed candidates need nothing.
        except SessionError as exc:
            await self._fail(session, str(exc))
        except Exception as exc:
            logger.exception("soac failed for session %s", session_id)
            await self._fail(session, f"Negotiation failed: {exc}")

    async def _add_candidate(self, session: Session, data: dict) -> None:
        line = str(data.get("candidate", ""))
        line = line.removeprefix("a=").removeprefix("candidate:")
        if not line:
            return
        candidate = candidate_from_sdp(line)
        candidate.sdpMid = data.get("sdpMid")
        candidate.sdpMLineIndex = data.get("sdpMLineIndex")
        await session.pc.addIceCandidate(candidate)

    async def _answer(self, session: Session, sdp: str) -> None:
        if session.pc is not None:
            raise SessionError("Renegotiation is not supported")
        pc = session.pc = RTCPeerConnection(rtc_configuration())

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected" and not session.ready:
                await self._connected(session)
            elif pc.connectionState == "failed" and session.id in self.sessions:
                await self._fail(session, "ICE/DTLS failed")

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        by_mid = {str(t["mid"]): t for t in session.tracks}
        for transceiver in pc.getTransceivers():
            requested = by_mid.get(str(transceiver.mid))
            if requested is None or requested.get("type") != transceiver.kind:
                transceiver.direction = "inactive"
                continue
            if session.kind == "publication":
                self._receive(session, transceiver)
            else:
                self._send(session, transceiver, requested)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        await self.emit(
            session.reply,
            {
                "type": "engine.progress",
                "data": {"id": session.id, "status": "soac", "data": {"type": answer.type, "sdp": answer.sdp}},
            },
        )

    def _receive(self, session: Session, transceiver: RTCRtpTransceiver) -> None:
        allowed = session.accept.get(transceiver.kind)
        if allowed is not None and not restrict_codecs(transceiver, allowed.__contains__):
            raise SessionError(f"No acceptable {transceiver.kind} format (room mediaIn)")
        transceiver.direction = "recvonly"
        published = PublishedTrack(transceiver.kind, transceiver.receiver)
        published.codec = codec_name(transceiver)
        published.format = track_format(transceiver)
        session.published[str(transceiver.mid)] = published

    def _send(self, session: Session, transceiver: RTCRtpTransceiver, requested: dict) -> None:
        source = self._source_track(session.source, transceiver.kind)
        if source is None:
            raise SessionError(f"The stream has no {transceiver.kind} track")
        wants = requested.get("format") or {}
        same_codec = not wants.get("codec") or wants["codec"] == source.codec
        passthrough = same_codec and not requested.get("parameters") and not self.transcode_all
        if passthrough and restrict_codecs(transceiver, source.codec.__eq__):
            track: ForwardedTrack | TranscodedTrack = ForwardedTrack(
                transceiver.kind, source.codec, source.keyframes.request
            )
            route_keyframe_requests(transceiver.sender, source.keyframes.request)
        else:
            # Another codec or other parameters than the publication has: the transcoding path.
            if wants.get("codec") and not restrict_codecs(transceiver, wants["codec"].__eq__):
                raise SessionError(f"Format {wants['codec']} not available for this subscriber")
            track = TranscodedTrack(source.receiver, transceiver.kind, requested.get("parameters") or {})
        transceiver.sender.replaceTrack(track)
        transceiver.direction = "sendonly"
        session.forwarded[str(transceiver.mid)] = track

    async def _connected(self, session: Session) -> None:
        session.ready = True
        for track in session.forwarded.values():
            source = self._source_track(session.source, track.kind)
            if source is None:
                continue
            if isinstance(track, TranscodedTrack):
                source.transcoded.add(track)
                source.tap.decode = True
                source.keyframes.request()
            else:
                source.attach(track)
        formats = {mid: {"format": p.format} for mid, p in session.published.items()}
        await self.emit(session.reply, {"type": "engine.progress", "data": {"id": session.id, "status": "ready"}})
        await self.emit(
            session.reply,
            {
                "type": "engine.session",
                "session": session.id,
                "kind": session.kind,
                "status": "ready",
                "formats": formats,
            },
        )

    async def _fail(self, session: Session, reason: str) -> None:
        await self.emit(
            session.reply,
            {
                "type": "engine.session",
                "session": session.id,
                "kind": session.kind,
                "status": "error",
                "reason": reason,
            },
        )
        await self.end_session(session.id)

    def stats(self) -> dict:
        forwarded = [t for s in self.sessions.values() for t in s.forwarded.values()]
        return {
            "sessions": len(self.sessions),
            "publications": sum(1 for s in self.sessions.values() if s.kind == "publication"),
            "subscriptions": sum(1 for s in self.sessions.values() if s.kind == "subscription"),
            "forwarded_frames": sum(getattr(t, "forwarded", 0) for t in forwarded),
            "dropped_frames": sum(getattr(t, "dropped", 0) for t in forwarded),
        }
