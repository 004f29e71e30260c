"""The SFU proper: rooms of participants whose publications are forwarded to subscriptions.

State: :class:`Room` → :class:`RoomParticipant` → :class:`PublicationSession` /
:class:`SubscriptionSession`, each session one RTCPeerConnection (its transport), with
indexes by session and participant id so no command scans the whole node.

Every publication is received once (its tracks tapped, see ``passthrough``); every
subscription gets its own sender per track, fed by a :class:`ForwardedTrack`. When a
subscriber cannot take the publication's codec, its track is served by the transcoding
path instead (decode once per publication track, encode per subscriber, ``transcode``).

The SFU knows nothing about Django or the channel layer: it raises session events
through ``on_event``, and the media node translates them into the portal protocol.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import ClassVar, Literal

from aiortc import RTCPeerConnection, RTCRtpReceiver, RTCRtpTransceiver, RTCSessionDescription
from aiortc.sdp import candidate_from_sdp

from streamengine.media.ice import rtc_configuration
from streamengine.media.passthrough import (
    CLOCK_RATES,
    ForwardedTrack,
    KeyframeRequester,
    install_tap,
    restrict_codecs,
    route_keyframe_requests,
    vp8_resolution,
)
from streamengine.media.transcode import TranscodedTrack

logger = logging.getLogger(__name__)

FRAMERATE_SAMPLE = 30
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

    def __init__(
        self, kind: str, receiver: RTCRtpReceiver, on_parameters: Callable[[dict], None] | None = None
    ) -> None:
        self.kind = kind
        self.receiver = receiver
        # Video: resolution (VP8 keyframe header) and frame rate (RTP timestamps of the first
        # frames), reported once known and again when the resolution changes.
        self.on_parameters = on_parameters
        self.parameters: dict = {}
        self.timestamps: list[int] = []
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
        if self.on_parameters is not None:
            self._learn_parameters(frame.data, frame.timestamp)
        if not self.active:
            return
        for subscriber in self.subscribers:
            subscriber.push(frame.data, frame.timestamp)

    def _learn_parameters(self, data: bytes, timestamp: int) -> None:
        learned = dict(self.parameters)
        size = vp8_resolution(data) if self.codec == "vp8" else None
        if size is not None:
            learned["resolution"] = {"width": size[0], "height": size[1]}
        elif self.codec == "vp8" and "resolution" not in learned:
            self.keyframes.request()  # the size is in keyframe headers only
        if "framerate" not in learned:
            self.timestamps.append(timestamp)
            if len(self.timestamps) > FRAMERATE_SAMPLE:
                span = (self.timestamps[-1] - self.timestamps[0]) % 2**32
                if span:
                    learned["framerate"] = round(FRAMERATE_SAMPLE * CLOCK_RATES["video"] / span)
                self.timestamps = []
        complete = "framerate" in learned and ("resolution" in learned or self.codec != "vp8")
        if learned != self.parameters and complete:
            self.parameters = learned
            self.on_parameters(learned)

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


# --- what the SFU reports (the node turns these into the portal protocol) -----------------

SessionKind = Literal["publication", "subscription"]


@dataclass(frozen=True)
class Answered:
    """The SDP answer to a session's offer, for the client."""

    session_id: str
    participant_id: str
    description: dict  # {"type": "answer", "sdp": ...}


@dataclass(frozen=True)
class Connected:
    """The session's transport connected; a publication's negotiated formats by mid."""

    session_id: str
    participant_id: str
    kind: SessionKind
    formats: dict[str, dict]


@dataclass(frozen=True)
class Failed:
    """The session could not be negotiated or its transport failed; it is already ended."""

    session_id: str
    participant_id: str
    kind: SessionKind
    reason: str


@dataclass(frozen=True)
class Measured:
    """A publication's video parameters (resolution, frame rate) by mid, known or changed."""

    session_id: str
    participant_id: str
    parameters: dict[str, dict]


SessionEvent = Answered | Connected | Failed | Measured
OnEvent = Callable[[SessionEvent], Awaitable[None]]


# --- state: rooms, participants, sessions -----------------------------------------------------


@dataclass(eq=False)
class Session:
    """A publication or subscription and the transport (peer connection) that carries it."""

    kind: ClassVar[SessionKind]
    id: str  # == transport id
    participant: RoomParticipant
    tracks: list[dict]
    pc: RTCPeerConnection | None = None
    ready: bool = False
    # Signaling of one session is applied in order (offer before its candidates), while
    # different sessions negotiate concurrently (gathering with STUN/TURN can take seconds).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def room(self) -> Room:
        return self.participant.room


@dataclass(eq=False)
class PublicationSession(Session):
    kind: ClassVar[SessionKind] = "publication"
    accept: dict[str, set[str]] = field(default_factory=dict)  # allowed codecs per kind; absent = any
    published: dict[str, PublishedTrack] = field(default_factory=dict)  # by mid
    subscriptions: set[SubscriptionSession] = field(default_factory=set)  # index of who subscribes to it

    def track(self, kind: str) -> PublishedTrack | None:
        return next((t for t in self.published.values() if t.kind == kind), None)


@dataclass(eq=False)
class SubscriptionSession(Session):
    kind: ClassVar[SessionKind] = "subscription"
    source: PublicationSession | None = None  # None: the publication had ended already
    forwarded: dict[str, ForwardedTrack | TranscodedTrack] = field(default_factory=dict)  # by mid

    def source_track(self, kind: str) -> PublishedTrack | None:
        return self.source.track(kind) if self.source is not None else None


@dataclass(eq=False)
class RoomParticipant:
    id: str
    room: Room
    publications: dict[str, PublicationSession] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionSession] = field(default_factory=dict)

    def sessions(self) -> list[Session]:
        return [*self.publications.values(), *self.subscriptions.values()]


@dataclass(eq=False)
class Room:
    id: str
    participants: dict[str, RoomParticipant] = field(default_factory=dict)
    publications: dict[str, PublicationSession] = field(default_factory=dict)


class SessionError(Exception):
    pass


class SFU:
    def __init__(self, on_event: OnEvent, *, transcode_all: bool = False) -> None:
        self.on_event = on_event
        # Benchmark baseline: serve every subscriber by decode + re-encode (MediaRelay).
        self.transcode_all = transcode_all
        self.rooms: dict[str, Room] = {}
        # Indexes: every live session by id, every participant with sessions by id.
        self.sessions: dict[str, PublicationSession | SubscriptionSession] = {}
        self.participants: dict[str, RoomParticipant] = {}

    # --- sessions -------------------------------------------------------------------

    def _participant(self, room_id: str, participant_id: str) -> RoomParticipant:
        participant = self.participants.get(participant_id)
        if participant is None:
            room = self.rooms.get(room_id) or self.rooms.setdefault(room_id, Room(room_id))
            participant = room.participants[participant_id] = self.participants[participant_id] = RoomParticipant(
                participant_id, room
            )
        return participant

    def add_publication(
        self, *, room_id: str, session_id: str, participant_id: str, tracks: list[dict], accept: dict[str, set[str]]
    ) -> None:
        participant = self._participant(room_id, participant_id)
        session = PublicationSession(session_id, participant, tracks, accept=accept)
        participant.publications[session_id] = participant.room.publications[session_id] = session
        self.sessions[session_id] = session

    def add_subscription(
        self, *, room_id: str, session_id: str, participant_id: str, tracks: list[dict], source_id: str
    ) -> None:
        participant = self._participant(room_id, participant_id)
        source = participant.room.publications.get(source_id)
        session = SubscriptionSession(session_id, participant, tracks, source=source)
        if source is not None:
            source.subscriptions.add(session)
        participant.subscriptions[session_id] = self.sessions[session_id] = session

    async def end_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        participant = session.participant
        if isinstance(session, PublicationSession):
            del participant.publications[session_id]
            del participant.room.publications[session_id]
            for published in session.published.values():
                published.stop()
            for subscription in list(session.subscriptions):
                await self.end_session(subscription.id)
        else:
            del participant.subscriptions[session_id]
            for track in session.forwarded.values():
                source = session.source_track(track.kind)
                if source is not None:
                    source.detach(track)
                track.stop()
            if session.source is not None:
                session.source.subscriptions.discard(session)
        if not participant.publications and not participant.subscriptions:
            self._forget(participant)
        if session.pc is not None:
            await session.pc.close()

    def _forget(self, participant: RoomParticipant) -> None:
        self.participants.pop(participant.id, None)
        room = participant.room
        room.participants.pop(participant.id, None)
        if not room.participants:
            self.rooms.pop(room.id, None)

    async def end_participant(self, participant_id: str) -> None:
        participant = self.participants.get(participant_id)
        for session in participant.sessions() if participant else ():
            await self.end_session(session.id)

    async def close(self) -> None:
        for session_id in list(self.sessions):
            await self.end_session(session_id)

    def set_publication_active(self, session_id: str, kinds: set[str], active: bool) -> None:
        session = self.sessions.get(session_id)
        if isinstance(session, PublicationSession):
            for published in session.published.values():
                if published.kind in kinds:
                    published.set_active(active)

    def set_subscription_paused(self, session_id: str, kinds: set[str], paused: bool) -> None:
        session = self.sessions.get(session_id)
        if isinstance(session, SubscriptionSession):
            for track in session.forwarded.values():
                if track.kind in kinds:
                    track.set_paused(paused)

    # --- signaling --------------------------------------------------------------------

    async def soac(self, session_id: str, signaling: dict) -> None:
        session = self.sessions.get(session_id)
        if session is None:
            return
        kind = signaling.get("type")
        async with session.lock:
            if session.id not in self.sessions:
                return  # ended while this waited
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
        """Add a trickled client candidate; a bad or useless one is logged, never fatal."""
        line = str(data.get("candidate", "")).removeprefix("a=").removeprefix("candidate:")
        if not line:
            return  # end-of-candidates marker: aiortc keeps checking the pairs it has
        try:
            candidate = candidate_from_sdp(line)
            if candidate.ip.endswith(".local") or candidate.protocol.lower() != "udp":
                # mDNS names would need multicast resolution (and stall the node); aioice is UDP only.
                logger.debug("session %s: ignoring candidate %s", session.id, line)
                return
            candidate.sdpMid = data.get("sdpMid")
            candidate.sdpMLineIndex = data.get("sdpMLineIndex")
            if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
                candidate.sdpMLineIndex = 0
            await session.pc.addIceCandidate(candidate)
        except Exception as exc:  # aiortc asserts on malformed lines; a candidate is never fatal
            logger.info("session %s: candidate %r refused: %s", session.id, line, exc)

    async def _answer(self, session: PublicationSession | SubscriptionSession, sdp: str) -> None:
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
            if isinstance(session, PublicationSession):
                self._receive(session, transceiver)
            else:
                self._send(session, transceiver, requested)
        await pc.setLocalDescription(await pc.createAnswer())
        answer = pc.localDescription
        await self.on_event(Answered(session.id, session.participant.id, {"type": answer.type, "sdp": answer.sdp}))

    def _receive(self, session: PublicationSession, transceiver: RTCRtpTransceiver) -> None:
        allowed = session.accept.get(transceiver.kind)
        if allowed is not None and not restrict_codecs(transceiver, allowed.__contains__):
            raise SessionError(f"No acceptable {transceiver.kind} format (room mediaIn)")
        transceiver.direction = "recvonly"
        mid = str(transceiver.mid)

        def report(parameters: dict) -> None:
            event = Measured(session.id, session.participant.id, {mid: parameters})
            asyncio.ensure_future(self.on_event(event))

        published = PublishedTrack(
            transceiver.kind, transceiver.receiver, report if transceiver.kind == "video" else None
        )
        published.codec = codec_name(transceiver)
        published.format = track_format(transceiver)
        session.published[mid] = published

    def _send(self, session: SubscriptionSession, transceiver: RTCRtpTransceiver, requested: dict) -> None:
        source = session.source_track(transceiver.kind)
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

    async def _connected(self, session: PublicationSession | SubscriptionSession) -> None:
        session.ready = True
        formats: dict[str, dict] = {}
        if isinstance(session, PublicationSession):
            formats = {mid: {"format": p.format} for mid, p in session.published.items()}
        else:
            for track in session.forwarded.values():
                source = session.source_track(track.kind)
                if source is None:
                    continue
                if isinstance(track, TranscodedTrack):
                    source.transcoded.add(track)
                    source.tap.decode = True
                    source.keyframes.request()
                else:
                    source.attach(track)
        await self.on_event(Connected(session.id, session.participant.id, session.kind, formats))

    async def _fail(self, session: Session, reason: str) -> None:
        await self.on_event(Failed(session.id, session.participant.id, session.kind, reason))
        await self.end_session(session.id)

    def stats(self) -> dict:
        subscriptions = [s for s in self.sessions.values() if isinstance(s, SubscriptionSession)]
        forwarded = [t for s in subscriptions for t in s.forwarded.values()]
        return {
            "rooms": len(self.rooms),
            "sessions": len(self.sessions),
            "publications": len(self.sessions) - len(subscriptions),
            "subscriptions": len(subscriptions),
            "forwarded_frames": sum(getattr(t, "forwarded", 0) for t in forwarded),
            "dropped_frames": sum(getattr(t, "dropped", 0) for t in forwarded),
        }
