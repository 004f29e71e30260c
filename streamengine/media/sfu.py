"""The SFU proper: rooms of participants whose publications are forwarded to subscriptions.

State: :class:`Room` → :class:`RoomParticipant` → :class:`Transport` (one
RTCPeerConnection) → :class:`PublicationSession` / :class:`SubscriptionSession`, each
session the m-lines (mids) of its tracks on its transport, with indexes by session and
participant id so no command scans the whole node. A transport carries one session (our
JSON-frame clients) or several, added and removed by renegotiation (the OWT JS SDK's one
peer connection per conference).

Every publication is received once; every subscription gets its own sender per track. By
default (``forward_rtp``) the publication's RTP packets are forwarded to each sender's
:class:`~streamengine.media.rtpforward.RtpForwarder`, which rewrites them for that
subscriber (``rtpforward``); otherwise its encoded frames are, through a
:class:`ForwardedTrack` per subscriber that the sender packetizes (``passthrough``). When a
subscriber cannot take the publication's codec, its track is served by the transcoding
path instead (decode once per publication track, encode once per form, ``transcode``).

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
from streamengine.media.rtpforward import RtpForwarder, RtpSource, publish_rtp
from streamengine.media.transcode import SharedEncoding, TranscodedTrack, encoding_key

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
        self.encodings: dict[str, SharedEncoding] = {}  # video transcoded once per form
        self.keyframes = KeyframeRequester(receiver)
        self.rtp: RtpSource | None = None  # the RTP packets, when they are forwarded (``forward_rtp``)
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

    def encoding(self, codec: str, parameters: dict) -> SharedEncoding:
        """The shared transcoded form (codec, parameters) of this track, started if new."""
        key = encoding_key(codec, parameters)
        if key not in self.encodings:
            self.encodings[key] = SharedEncoding(self.receiver, codec, parameters)
            self.tap.decode = True
            self.keyframes.request()  # its decoder starts at a keyframe
        encoding = self.encodings[key]
        encoding.users += 1  # counted from now: its subscriber attaches once connected
        return encoding

    def detach(self, track: ForwardedTrack | TranscodedTrack | RtpForwarder) -> None:
        self.subscribers.discard(track)  # type: ignore[arg-type]
        self.transcoded.discard(track)  # type: ignore[arg-type]
        if isinstance(track, RtpForwarder):
            track.detach()
        feed = getattr(track, "feed", None)
        for key, encoding in list(self.encodings.items()):
            if encoding is feed:
                encoding.subscribers.discard(track)  # type: ignore[arg-type]
                encoding.users -= 1
                if encoding.users <= 0:
                    encoding.stop()
                    del self.encodings[key]
        self.tap.decode = bool(self.transcoded or self.encodings)

    def set_active(self, active: bool) -> None:
        self.active = active
        forwarders = self.rtp.forwarders if self.rtp is not None else ()
        if self.rtp is not None:
            self.rtp.active = active
        if active:
            for subscriber in [*self.subscribers, *forwarders]:
                subscriber.cut_to_keyframe()

    def stop(self) -> None:
        self.keyframes.cancel()
        forwarders = self.rtp.forwarders if self.rtp is not None else ()
        for track in [*self.subscribers, *self.transcoded, *forwarders]:
            track.stop()
        for encoding in self.encodings.values():
            encoding.stop()
        self.subscribers.clear()
        self.transcoded.clear()
        self.encodings.clear()


# --- what the SFU reports (the node turns these into the portal protocol) -----------------

SessionKind = Literal["publication", "subscription"]


@dataclass(frozen=True)
class Answered:
    """The SDP answer to a transport's offer, for the client."""

    transport_id: str
    participant_id: str
    description: dict  # {"type": "answer", "sdp": ...}


@dataclass(frozen=True)
class TransportConnected:
    """The transport's ICE and DTLS connected (once per transport)."""

    transport_id: str
    participant_id: str


@dataclass(frozen=True)
class Connected:
    """A session is carried by its connected transport; a publication's negotiated formats by mid."""

    session_id: str
    transport_id: str
    participant_id: str
    kind: SessionKind
    formats: dict[str, dict]


@dataclass(frozen=True)
class Failed:
    """The session could not be negotiated or its transport failed; it is already ended."""

    session_id: str
    transport_id: str
    participant_id: str
    kind: SessionKind
    reason: str


@dataclass(frozen=True)
class Measured:
    """A publication's video parameters (resolution, frame rate) by mid, known or changed."""

    session_id: str
    participant_id: str
    parameters: dict[str, dict]


SessionEvent = Answered | TransportConnected | Connected | Failed | Measured
OnEvent = Callable[[SessionEvent], Awaitable[None]]


# --- state: rooms, participants, transports, sessions -----------------------------------------


@dataclass(eq=False)
class Transport:
    """One client RTCPeerConnection, carrying the m-lines (mids) of one or more sessions.

    The OWT JS SDK keeps one peer connection per conference: each later publication or
    subscription adds m-lines with a new offer on the same transport, and an ended one's
    m-lines stay in its offers (answered ``inactive``). ``keep``: the client keeps the
    transport for later sessions, so it stays open when its last session ends; otherwise
    (one transport per session) it closes with its session.
    """

    id: str
    participant: RoomParticipant
    keep: bool
    pc: RTCPeerConnection | None = None
    connected: bool = False
    sessions: dict[str, Session] = field(default_factory=dict)  # live sessions by id
    claimed: dict[str, Session] = field(default_factory=dict)  # mid → the live session it carries
    retired: set[str] = field(default_factory=set)  # mids of ended sessions (never reused)
    codecs: dict[str, list] = field(default_factory=dict)  # mid → codecs chosen at its first answer
    # Offers of one transport are applied in order (an offer before its candidates), while
    # different transports negotiate concurrently (gathering with STUN/TURN can take seconds).
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass(eq=False)
class Session:
    """A publication or subscription: its tracks' m-lines on a transport."""

    kind: ClassVar[SessionKind]
    id: str
    participant: RoomParticipant
    transport: Transport
    tracks: list[dict]
    ready: bool = False
    transceivers: dict[str, RTCRtpTransceiver] = field(default_factory=dict)  # by mid, once negotiated

    @property
    def room(self) -> Room:
        return self.participant.room

    @property
    def mids(self) -> list[str]:
        return [str(t["mid"]) for t in self.tracks]


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
    # The publication each kind comes from (``subscription-control update`` may switch one).
    sources: dict[str, PublicationSession] = field(default_factory=dict)
    # What each sender sends, by mid: its RtpForwarder (``forward_rtp``), a ForwardedTrack
    # (frames), or a TranscodedTrack (the sender encodes).
    forwarded: dict[str, ForwardedTrack | TranscodedTrack | RtpForwarder] = field(default_factory=dict)
    # ``forward_rtp``: each sender's forwarder, kept for the sender's lifetime (numbering).
    forwarders: dict[str, RtpForwarder] = field(default_factory=dict)

    def source_track(self, kind: str) -> PublishedTrack | None:
        source = self.sources.get(kind)
        return source.track(kind) if source is not None else None


@dataclass(eq=False)
class RoomParticipant:
    id: str
    room: Room
    publications: dict[str, PublicationSession] = field(default_factory=dict)
    subscriptions: dict[str, SubscriptionSession] = field(default_factory=dict)
    transports: dict[str, Transport] = field(default_factory=dict)

    def sessions(self) -> list[Session]:
        return [*self.publications.values(), *self.subscriptions.values()]


@dataclass(eq=False)
class Room:
    id: str
    participants: dict[str, RoomParticipant] = field(default_factory=dict)
    publications: dict[str, PublicationSession] = field(default_factory=dict)


class SessionError(Exception):
    pass


def simulcast_mids(sdp: str) -> set[str]:
    """The mids of the offer's m-sections that send simulcast (``a=simulcast`` / ``a=rid``)."""
    mids = set()
    for section in sdp.split("\nm=")[1:]:
        lines = [line.strip() for line in section.splitlines()]
        mid = next((line[6:] for line in lines if line.startswith("a=mid:")), None)
        if mid is not None and any(line.startswith(("a=simulcast:", "a=rid:")) for line in lines):
            mids.add(mid)
    return mids


class SFU:
    def __init__(self, on_event: OnEvent, *, transcode_all: bool = False, forward_rtp: bool = True) -> None:
        self.on_event = on_event
        # Benchmark baseline: serve every subscriber by decode + re-encode (MediaRelay).
        self.transcode_all = transcode_all
        # Forward RTP packets (rewritten per subscriber), not frames packetized per subscriber.
        self.forward_rtp = forward_rtp and not transcode_all
        self.rooms: dict[str, Room] = {}
        # Indexes: every live session by id, every participant with sessions or transports by id.
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

    def _transport(
        self, participant: RoomParticipant, transport_id: str | None, session_id: str, keep: bool
    ) -> Transport:
        """The session's transport: a new one (id = the session's) or one of the participant's own."""
        if transport_id is None or transport_id == session_id:
            if session_id in participant.transports:
                raise SessionError("Duplicate session id")
            transport = participant.transports[session_id] = Transport(session_id, participant, keep)
            return transport
        transport = participant.transports.get(transport_id)
        if transport is None:
            raise SessionError("Transport not found")
        transport.keep = True  # reused: the client keeps it for its sessions
        return transport

    def _add(self, session: PublicationSession | SubscriptionSession) -> None:
        transport = session.transport
        taken = [mid for mid in session.mids if mid in transport.claimed or mid in transport.retired]
        if taken:
            raise SessionError(f"mid {taken[0]} is already used on transport {transport.id}")
        transport.sessions[session.id] = session
        for mid in session.mids:
            transport.claimed[mid] = session
        self.sessions[session.id] = session

    async def add_publication(
        self,
        *,
        room_id: str,
        session_id: str,
        participant_id: str,
        tracks: list[dict],
        accept: dict[str, set[str]],
        transport_id: str | None = None,
        keep_transport: bool = False,
    ) -> None:
        participant = self._participant(room_id, participant_id)
        try:
            transport = self._transport(participant, transport_id, session_id, keep_transport)
            session = PublicationSession(session_id, participant, transport, tracks, accept=accept)
            self._add(session)
        except SessionError as exc:
            await self._refuse(participant, session_id, transport_id or session_id, "publication", str(exc))
            return
        participant.publications[session_id] = participant.room.publications[session_id] = session

    async def add_subscription(
        self,
        *,
        room_id: str,
        session_id: str,
        participant_id: str,
        tracks: list[dict],
        source_id: str,
        transport_id: str | None = None,
        keep_transport: bool = False,
    ) -> None:
        participant = self._participant(room_id, participant_id)
        try:
            transport = self._transport(participant, transport_id, session_id, keep_transport)
            session = SubscriptionSession(session_id, participant, transport, tracks)
            self._add(session)
        except SessionError as exc:
            await self._refuse(participant, session_id, transport_id or session_id, "subscription", str(exc))
            return
        source = participant.room.publications.get(source_id)
        if source is not None:
            session.sources = {t["type"]: source for t in tracks}
            source.subscriptions.add(session)
        participant.subscriptions[session_id] = session

    async def _refuse(
        self, participant: RoomParticipant, session_id: str, transport_id: str, kind: SessionKind, reason: str
    ) -> None:
        await self.on_event(Failed(session_id, transport_id, participant.id, kind, reason))
        if not participant.sessions() and not participant.transports:
            self._forget(participant)

    async def end_session(self, session_id: str) -> None:
        session = self.sessions.pop(session_id, None)
        if session is None:
            return
        participant, transport = session.participant, session.transport
        if isinstance(session, PublicationSession):
            del participant.publications[session_id]
            del participant.room.publications[session_id]
            for published in session.published.values():
                published.stop()
            for subscription in list(session.subscriptions):
                # Its subscriber is told (session progress error), as OWT does; the SDK then ends it.
                await self._fail(subscription, "Source stream loss")
        else:
            del participant.subscriptions[session_id]
            for track in session.forwarded.values():
                self._unfeed(session, track)
            for source in set(session.sources.values()):
                source.subscriptions.discard(session)
        # Its m-lines stay in the client's later offers; they are answered inactive.
        del transport.sessions[session_id]
        for mid in session.mids:
            transport.claimed.pop(mid, None)
            transport.retired.add(mid)
        for transceiver in session.transceivers.values():
            transceiver.direction = "inactive"
        if not transport.sessions and not transport.keep:
            await self._close_transport(transport)
        if not participant.sessions() and not participant.transports:
            self._forget(participant)

    def _unfeed(self, session: SubscriptionSession, track: ForwardedTrack | TranscodedTrack | RtpForwarder) -> None:
        source = session.source_track(track.kind)
        if source is not None:
            source.detach(track)
        track.stop()

    async def _close_transport(self, transport: Transport) -> None:
        if transport.participant.transports.get(transport.id) is not transport:
            return  # closed already (its last session's end closes it too)
        del transport.participant.transports[transport.id]
        for session_id in list(transport.sessions):
            await self.end_session(session_id)
        if transport.pc is not None:
            await transport.pc.close()

    def _forget(self, participant: RoomParticipant) -> None:
        self.participants.pop(participant.id, None)
        room = participant.room
        room.participants.pop(participant.id, None)
        if not room.participants:
            self.rooms.pop(room.id, None)

    async def end_participant(self, participant_id: str) -> None:
        participant = self.participants.get(participant_id)
        if participant is None:
            return
        for session in participant.sessions():
            await self.end_session(session.id)
        for transport in list(participant.transports.values()):
            await self._close_transport(transport)
        self._forget(participant)

    async def close(self) -> None:
        for participant_id in list(self.participants):
            await self.end_participant(participant_id)

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

    async def update_subscription(self, session_id: str, tracks: list[dict]) -> None:
        """Switch a subscription's tracks to another source or other parameters, no renegotiation.

        ``tracks``: ``{type, from, parameters?}`` per kind to change. The sender keeps the
        negotiated codec: the new feed is forwarded when it has that codec and no
        parameters are asked, transcoded otherwise.
        """
        session = self.sessions.get(session_id)
        if not isinstance(session, SubscriptionSession):
            return
        for change in tracks:
            kind = change["type"]
            source = session.room.publications.get(str(change["from"]))
            mid = next((m for m, t in session.forwarded.items() if t.kind == kind), None)
            if source is None or source.track(kind) is None or mid is None:
                continue
            requested = {**next(t for t in session.tracks if str(t["mid"]) == mid), **change}
            old = session.forwarded[mid]
            previous = session.source_track(kind)
            if previous is not None:
                previous.detach(old)
            previous_source = session.sources.get(kind)
            session.sources[kind] = source
            source.subscriptions.add(session)
            if previous_source is not None and previous_source not in session.sources.values():
                previous_source.subscriptions.discard(session)
            transceiver = session.transceivers[mid]
            session.forwarded[mid] = track = self._feed(session, transceiver, requested, codec_name(transceiver))
            if track is not old:  # a forwarder switching sources stays its sender's track
                old.hand_over(track)
            if session.ready:
                self._start_feed(session, track)

    # --- signaling --------------------------------------------------------------------

    async def soac(self, participant_id: str, transport_id: str, signaling: dict) -> None:
        participant = self.participants.get(participant_id)
        transport = participant.transports.get(transport_id) if participant else None
        if transport is None:
            return
        kind = signaling.get("type")
        async with transport.lock:
            if transport.participant.transports.get(transport.id) is not transport:
                return  # closed while this waited
            try:
                if kind == "offer":
                    await self._negotiate(transport, signaling["sdp"])
                elif kind == "candidate" and transport.pc is not None:
                    await self._add_candidate(transport, signaling.get("candidate") or {})
                # aiortc gathers before answering and does not prune, so removed candidates need nothing.
            except Exception as exc:
                if not isinstance(exc, SessionError):
                    logger.exception("soac failed for transport %s", transport_id)
                reason = str(exc) if isinstance(exc, SessionError) else f"Negotiation failed: {exc}"
                for session in [s for s in transport.sessions.values() if not s.transceivers]:
                    await self._fail(session, reason)
                if not transport.connected:
                    await self._close_transport(transport)

    async def _add_candidate(self, transport: Transport, data: dict) -> None:
        """Add a trickled client candidate; a bad or useless one is logged, never fatal."""
        line = str(data.get("candidate", "")).removeprefix("a=").removeprefix("candidate:")
        if not line:
            return  # end-of-candidates marker: aiortc keeps checking the pairs it has
        try:
            candidate = candidate_from_sdp(line)
            if candidate.ip.endswith(".local") or candidate.protocol.lower() != "udp":
                # mDNS names would need multicast resolution (and stall the node); aioice is UDP only.
                logger.debug("transport %s: ignoring candidate %s", transport.id, line)
                return
            candidate.sdpMid = data.get("sdpMid")
            candidate.sdpMLineIndex = data.get("sdpMLineIndex")
            if candidate.sdpMid is None and candidate.sdpMLineIndex is None:
                candidate.sdpMLineIndex = 0
            await transport.pc.addIceCandidate(candidate)
        except Exception as exc:  # aiortc asserts on malformed lines; a candidate is never fatal
            logger.info("transport %s: candidate %r refused: %s", transport.id, line, exc)

    def _open(self, transport: Transport) -> RTCPeerConnection:
        pc = transport.pc = RTCPeerConnection(rtc_configuration())

        @pc.on("connectionstatechange")
        async def on_state() -> None:
            if pc.connectionState == "connected" and not transport.connected:
                transport.connected = True
                await self.on_event(TransportConnected(transport.id, transport.participant.id))
                for session in list(transport.sessions.values()):
                    if session.transceivers and not session.ready:
                        await self._connected(session)
            elif pc.connectionState == "failed" and transport.participant.transports.get(transport.id) is transport:
                for session in list(transport.sessions.values()):
                    await self._fail(session, "ICE/DTLS failed")
                await self._close_transport(transport)

        return pc

    async def _negotiate(self, transport: Transport, sdp: str) -> None:
        """Answer an offer: set up the m-lines of sessions new on the transport, keep the others."""
        pc = transport.pc or self._open(transport)
        pending = [s for s in transport.sessions.values() if not s.transceivers]
        simulcast = simulcast_mids(sdp)
        refused: dict[Session, str] = {}
        for session in pending:
            if isinstance(session, PublicationSession) and simulcast & set(session.mids):
                refused[session] = "Simulcast (rid layers) is not supported: publish a single encoding"
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        by_mid = {str(t.mid): t for t in pc.getTransceivers()}
        for mid, transceiver in by_mid.items():
            if mid in transport.codecs:
                # aiortc renegotiates every m-line's codecs: keep what the first answer chose.
                transceiver._codecs = transport.codecs[mid]
            if mid not in transport.claimed:
                transceiver.direction = "inactive"  # an ended session's m-line, or none of ours
        for session in pending:
            if session in refused:
                continue
            try:
                for track in session.tracks:
                    transceiver = by_mid.get(str(track["mid"]))
                    if transceiver is None or transceiver.kind != track["type"]:
                        raise SessionError(f"The offer has no {track['type']} m-line with mid {track['mid']}")
                    if isinstance(session, PublicationSession):
                        self._receive(session, transceiver)
                    else:
                        self._send(session, transceiver, track)
                    session.transceivers[str(track["mid"])] = transceiver
            except SessionError as exc:
                refused[session] = str(exc)
        for session in refused:
            self._discard_setup(session, by_mid)
        await pc.setLocalDescription(await pc.createAnswer())
        for mid, transceiver in by_mid.items():
            transport.codecs.setdefault(mid, list(transceiver._codecs))
        answer = pc.localDescription
        await self.on_event(Answered(transport.id, transport.participant.id, {"type": answer.type, "sdp": answer.sdp}))
        for session, reason in refused.items():
            await self._fail(session, reason)
        if transport.connected:
            for session in pending:
                if session not in refused and session.id in self.sessions:
                    await self._connected(session)

    def _discard_setup(self, session: Session, by_mid: dict[str, RTCRtpTransceiver]) -> None:
        """Undo a refused session's partial setup; its m-lines are answered inactive."""
        if isinstance(session, PublicationSession):
            for published in session.published.values():
                published.stop()
            session.published.clear()
        else:
            for track in session.forwarded.values():
                track.stop()
            session.forwarded.clear()
        session.transceivers.clear()
        for mid in session.mids:
            if mid in by_mid:
                by_mid[mid].direction = "inactive"

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
        if self.forward_rtp:
            published.rtp = RtpSource(transceiver.kind, published.codec, published.keyframes.request)
            publish_rtp(transceiver.receiver, transceiver._codecs, published.rtp)
        session.published[mid] = published

    def _send(self, session: SubscriptionSession, transceiver: RTCRtpTransceiver, requested: dict) -> None:
        source = session.source_track(transceiver.kind)
        if source is None:
            raise SessionError(f"The stream has no {transceiver.kind} track")
        wants = requested.get("format") or {}
        same_codec = not wants.get("codec") or wants["codec"] == source.codec
        if same_codec and not requested.get("parameters") and not self.transcode_all:
            restrict_codecs(transceiver, source.codec.__eq__)
        elif wants.get("codec") and not restrict_codecs(transceiver, wants["codec"].__eq__):
            raise SessionError(f"Format {wants['codec']} not available for this subscriber")
        if self.forward_rtp:
            session.forwarders[str(transceiver.mid)] = RtpForwarder(transceiver.kind, transceiver.sender)
        track = self._feed(session, transceiver, requested, codec_name(transceiver))
        transceiver.direction = "sendonly"
        # The answer's a=msid names one MediaStream per subscription (aiortc gives every
        # transceiver it creates the peer connection's one stream id): the JS SDK hands a
        # subscription the stream of its first track event.
        transceiver.sender._stream_id = session.id
        session.forwarded[str(transceiver.mid)] = track

    def _feed(
        self, session: SubscriptionSession, transceiver: RTCRtpTransceiver, requested: dict, codec: str
    ) -> ForwardedTrack | TranscodedTrack | RtpForwarder:
        """The track a subscription's sender sends: the source's packets (or frames) as they
        are when the sender's codec is theirs and no parameters are asked, else the
        transcoding path (video: a shared encoding, forwarded as the source's packets are)."""
        source = session.source_track(transceiver.kind)
        sender = transceiver.sender
        parameters = requested.get("parameters") or {}
        same = codec == source.codec and not parameters
        if self.transcode_all or not (same or transceiver.kind == "video"):
            track = TranscodedTrack(source.receiver, transceiver.kind, parameters)
            route_keyframe_requests(sender, None)  # its own encoder's
            sender.replaceTrack(track)
            return track
        encoding = None if same else source.encoding(codec, parameters)
        request_keyframe = source.keyframes.request if same else encoding.request_keyframe
        route_keyframe_requests(sender, request_keyframe)
        forwarder = session.forwarders.get(str(transceiver.mid))
        if forwarder is not None:
            forwarder.retarget(source.rtp if same else encoding.rtp, feed=encoding)
            forwarder.take_over()
            return forwarder
        forwarded = ForwardedTrack(transceiver.kind, codec, request_keyframe)
        forwarded.feed = encoding
        sender.replaceTrack(forwarded)
        return forwarded

    def _start_feed(self, session: SubscriptionSession, track: ForwardedTrack | TranscodedTrack | RtpForwarder) -> None:
        source = session.source_track(track.kind)
        if source is None:
            return
        if isinstance(track, RtpForwarder):
            track.start()
        elif isinstance(track, TranscodedTrack):
            source.transcoded.add(track)
            source.tap.decode = True
            source.keyframes.request()
        elif track.feed is not None:
            track.feed.attach(track)
        else:
            source.attach(track)

    async def _connected(self, session: PublicationSession | SubscriptionSession) -> None:
        session.ready = True
        formats: dict[str, dict] = {}
        if isinstance(session, PublicationSession):
            formats = {mid: {"format": p.format} for mid, p in session.published.items()}
        else:
            for track in session.forwarded.values():
                self._start_feed(session, track)
        event = Connected(session.id, session.transport.id, session.participant.id, session.kind, formats)
        await self.on_event(event)

    async def _fail(self, session: Session, reason: str) -> None:
        if session.id not in self.sessions:
            return
        await self.on_event(Failed(session.id, session.transport.id, session.participant.id, session.kind, reason))
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
            "forwarded_packets": sum(getattr(t, "packets", 0) for t in forwarded),
            "retransmitted_packets": sum(getattr(t, "retransmitted", 0) for t in forwarded),
        }
