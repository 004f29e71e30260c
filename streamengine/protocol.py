"""The portal ↔ media node protocol: every message that crosses the Channels layer.

Three directions, one dataclass per message (table in docs/architecture.md):

* portal → node: :class:`NodeCommand` (``node.*``), sent by ``services`` to the channel of
  the node hosting the room, dispatched by :class:`streamengine.node.MediaNode`;
* node → portal: :class:`NodeEvent` (``engine.*``), sent by the node to the reply channel
  of the participant's signaling (its consumer, or its parked mailbox while it reconnects);
* platform → signaling: :class:`SignalingMessage` (``engine.*``), sent by ``services`` to the
  groups of :func:`domain_group` / :func:`participant_group`.

:func:`encode` and :func:`decode` are the only places that turn them into the dicts Channels
carries (``type`` names the message; the ``engine.*`` names are Channels consumer handlers).
Fields are plain JSON/msgpack values (lists, not sets) so every channel layer can carry them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import ClassVar, Literal

SessionKind = Literal["publication", "subscription"]


def domain_group(domain_id: str) -> str:
    """Every signaling connection of a room's participants."""
    return f"domain.{domain_id}"


def participant_group(participant_id: str) -> str:
    """The signaling connection (or parked mailbox) of one participant."""
    return f"participant.{participant_id}"


class ProtocolError(ValueError):
    pass


@dataclass(frozen=True)
class Message:
    type: ClassVar[str]
    by_type: ClassVar[dict[str, type[Message]]] = {}

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "type" in cls.__dict__:
            Message.by_type[cls.type] = cls


def encode(message: Message) -> dict:
    return {"type": message.type, **{f.name: getattr(message, f.name) for f in fields(message)}}


def decode(data: dict) -> Message:
    cls = Message.by_type.get(data.get("type", ""))
    if cls is None:
        raise ProtocolError(f"unknown message type {data.get('type')!r}")
    try:
        return cls(**{f.name: data[f.name] for f in fields(cls)})
    except KeyError as exc:
        raise ProtocolError(f"{cls.type}: missing field {exc}") from exc


# --- portal → node --------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeCommand(Message):
    pass


@dataclass(frozen=True)
class Publish(NodeCommand):
    """Expect an offer for a new publication (``tracks``: ``{type, mid, source}``)."""

    type: ClassVar[str] = "node.publish"
    room: str
    session: str
    participant: str
    reply: str
    tracks: list[dict]
    accept: dict[str, list[str]]  # codec names allowed per kind (room ``mediaIn``); absent kind = any
    transport: str  # the session's own id: a new transport; else one of the participant's
    keep_transport: bool  # the client keeps the transport for later sessions


@dataclass(frozen=True)
class Subscribe(NodeCommand):
    """Expect an offer for a new subscription to publication ``source``."""

    type: ClassVar[str] = "node.subscribe"
    room: str
    session: str
    participant: str
    reply: str
    tracks: list[dict]  # ``{type, mid, from, format?, parameters?}``
    source: str
    transport: str
    keep_transport: bool


@dataclass(frozen=True)
class UpdateSubscription(NodeCommand):
    """Feed a subscription's tracks from another source or with other parameters."""

    type: ClassVar[str] = "node.subscription.update"
    session: str
    tracks: list[dict]  # ``{type, from, parameters?}`` per kind that changes


@dataclass(frozen=True)
class Signal(NodeCommand):
    """A client's ``soac`` (offer, candidate, removed-candidates) for one of its transports."""

    type: ClassVar[str] = "node.soac"
    participant: str
    transport: str
    signaling: dict


@dataclass(frozen=True)
class EndSession(NodeCommand):
    """Close a session's transport; ending a publication ends its subscriptions too."""

    type: ClassVar[str] = "node.session.end"
    session: str


@dataclass(frozen=True)
class SetPublicationActive(NodeCommand):
    """Mute (stop forwarding) or unmute a publication's tracks of ``kinds``."""

    type: ClassVar[str] = "node.publication.status"
    session: str
    kinds: list[str]
    active: bool


@dataclass(frozen=True)
class SetSubscriptionPaused(NodeCommand):
    type: ClassVar[str] = "node.subscription.status"
    session: str
    kinds: list[str]
    paused: bool


@dataclass(frozen=True)
class MoveReplies(NodeCommand):
    """The participant's signaling moved (parked for reconnection, or relogged in)."""

    type: ClassVar[str] = "node.participant.reply"
    participant: str
    reply: str


@dataclass(frozen=True)
class EndParticipant(NodeCommand):
    type: ClassVar[str] = "node.participant.leave"
    participant: str


# --- node → portal (the participant's reply channel) ----------------------------------------


@dataclass(frozen=True)
class NodeEvent(Message):
    pass


@dataclass(frozen=True)
class Progress(NodeEvent):
    """A ``progress`` notification for the client, as is (the answer, the first ``ready``)."""

    type: ClassVar[str] = "engine.progress"
    data: dict


@dataclass(frozen=True)
class SessionReady(NodeEvent):
    """The session's transport is connected; ``formats``: a publication's negotiated format by mid."""

    type: ClassVar[str] = "engine.session.ready"
    session: str
    transport: str
    kind: SessionKind
    formats: dict[str, dict]


@dataclass(frozen=True)
class SessionFailed(NodeEvent):
    type: ClassVar[str] = "engine.session.failed"
    session: str
    transport: str
    kind: SessionKind
    reason: str


@dataclass(frozen=True)
class ParametersMeasured(NodeEvent):
    """A publication's video parameters by mid (``{resolution: {width, height}, framerate}``)."""

    type: ClassVar[str] = "engine.session.parameters"
    session: str
    parameters: dict[str, dict]


# --- platform → signaling groups --------------------------------------------------------------


@dataclass(frozen=True)
class SignalingMessage(Message):
    pass


@dataclass(frozen=True)
class Notify(SignalingMessage):
    """Relay notification ``event`` to the client unless it is participant ``exclude``."""

    type: ClassVar[str] = "engine.notify"
    event: str
    data: object
    exclude: str | None = None


@dataclass(frozen=True)
class Drop(SignalingMessage):
    """The participant is dropped: tell the client (``drop``) and close its connection."""

    type: ClassVar[str] = "engine.drop"


@dataclass(frozen=True)
class PermissionChanged(SignalingMessage):
    type: ClassVar[str] = "engine.permission"
    permission: dict
