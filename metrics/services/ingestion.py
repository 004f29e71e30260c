"""SDK events → rows: initialize, sessions, getUserMedia/browser/connection events, tracks.

Every SDK route but ``/stats`` (:mod:`metrics.ingest`, the group-commit fast path). Every
function is keyword-only and atomic. ``now`` is the event's time as the SDK meant it
(arrival time minus ``delta``). Connection events drive :mod:`metrics.services.connections`.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from metrics import selectors
from metrics.errors import PeermetricsError
from metrics.models import App, Conference, Connection, GenericEvent, Participant, Session, Track
from metrics.services import connections as state
from metrics.services.connections import issue_raise

CONNECTION_EVENTS = {
    "addConnection", "removeConnection", "removePeer", "peerDetails", "onicecandidate", "onicegatheringstatechange",
    "onsignalingstatechange", "oniceconnectionstatechange", "onconnectionstatechange", "onnegotiationneeded",
    "onicecandidateerror", "ondatachannel",
}  # fmt: skip
TRACK_EVENTS = {"mute", "unmute", "ended", "overconstrained"}
TRACK_INFO_KEYS = ("enabled", "muted", "readyState", "contentHint", "capabilities", "constraints", "settings")
MAX_DELTA_MS = 7 * 24 * 3600 * 1000


# --- helpers -----------------------------------------------------------------------


def event_time(delta: Any) -> datetime:
    """``utcnow − delta`` (ms): events the SDK held back keep the time they happened."""
    if delta in (None, ""):
        return timezone.now()
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta <= MAX_DELTA_MS:
        raise PeermetricsError("invalid_parameters", "delta must be a number of milliseconds")
    return timezone.now() - timedelta(milliseconds=delta)


def _text(body: dict, key: str, *, required: bool = False, limit: int = 64) -> str:
    value = body.get(key)
    if value in (None, ""):
        if required:
            raise PeermetricsError("missing_parameters", f"{key} is required")
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PeermetricsError("invalid_parameters", f"{key} must be a string")
    return str(value)[:limit]


def _event(
    *,
    session: Session,
    category: str,
    type: str,
    data: Any,
    now: datetime,
    peer_id: Any = None,
    connection: Connection | None = None,
    track: Track | None = None,
) -> GenericEvent:
    return GenericEvent.objects.create(
        app_id=session.app_id,
        conference_id=session.conference_id,
        participant_id=session.participant_id,
        session=session,
        peer_id=peer_id if peer_id is not None else (connection.peer_id if connection else None),
        connection=connection,
        track=track,
        category=category,
        type=type[:32],
        data=data,
        created_at=now,
    )


def _track_info(data: dict) -> dict:
    return {key: data.get(key) for key in TRACK_INFO_KEYS}


# --- initialize and sessions ---------------------------------------------------------


def _origin_host(origin: str) -> str:
    return (urlsplit(origin).hostname or "") if origin else ""


def conference_initialize(*, body: dict, origin: str = "") -> tuple[App, Conference, Participant]:
    """Validate the api key and origin, get-or-create the conference and participant."""
    for key in ("conferenceId", "userId", "apiKey"):
        if body.get(key) in (None, ""):
            raise PeermetricsError("missing_parameters", f"{key} is required")
    app = selectors.app_for_key(api_key=body["apiKey"])
    conference_id = _text(body, "conferenceId")
    user_id = _text(body, "userId")
    conference_name = _text(body, "conferenceName")
    user_name = _text(body, "userName")
    if not app.recording:
        raise PeermetricsError("app_not_recording")
    if app.domain and _origin_host(origin) != app.domain.lower():
        raise PeermetricsError("domain_not_allowed")
    # get_or_create retries the read on IntegrityError: the unique constraints make
    # concurrent initialize calls for one conference converge on one row.
    conference, _ = Conference.objects.get_or_create(app=app, conference_id=conference_id)
    participant, _ = Participant.objects.get_or_create(app=app, participant_id=user_id)
    if conference_name and conference.conference_name != conference_name:
        Conference.objects.filter(pk=conference.pk).update(conference_name=conference_name)
        conference.conference_name = conference_name
    if user_name and participant.participant_name != user_name:
        Participant.objects.filter(pk=participant.pk).update(participant_name=user_name)
        participant.participant_name = user_name
    conference.participants.add(participant)
    return app, conference, participant


def _validate_meta(meta: Any) -> dict:
    """≤5 keys of ≤64 chars; values string (≤256), number or boolean — what the SDK allows."""
    if meta in (None, ""):
        return {}
    if not isinstance(meta, dict) or len(meta) > 5:
        raise PeermetricsError("invalid_meta")
    for key, value in meta.items():
        if len(key) > 64:
            raise PeermetricsError("invalid_meta")
        if isinstance(value, str):
            if len(value) > 256:
                raise PeermetricsError("invalid_meta")
        elif not isinstance(value, (bool, int, float)):
            raise PeermetricsError("invalid_meta")
    return meta


def _json_field(body: dict, key: str, kind: type, default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise PeermetricsError("invalid_parameters", f"{key} has the wrong type")
    return value


@transaction.atomic
def session_create(*, conference_id: str, participant_id: str, body: dict, now: datetime) -> Session:
    conference = Conference.objects.select_related("app").filter(pk=conference_id).first()
    participant = Participant.objects.filter(pk=participant_id).first()
    if conference is None or participant is None or participant.app_id != conference.app_id:
        raise PeermetricsError("invalid_token")
    session = Session.objects.create(
        app_id=conference.app_id,
        conference=conference,
        participant=participant,
        platform=_json_field(body, "platform", dict, {}),
        constraints=_json_field(body, "constraints", dict, {}),
        devices=_json_field(body, "devices", list, []),
        metadata=_validate_meta(body.get("meta")),
        app_version=_text(body, "appVersion", limit=16),
        webrtc_sdk=_text(body, "webrtcSdk", limit=16),
        created_at=now,
    )
    if Session.objects.filter(conference=conference, participant=participant).count() > 1:
        issue_raise(code="multiple_rejoins", conference=conference, session=session, now=now)
    return session


@transaction.atomic
def session_update(*, session: Session, body: dict) -> Session:
    """PUT /sessions: only the keys present change (the reference nulled ``webrtcSdk``)."""
    fields = []
    for key, field, kind in (
        ("platform", "platform", dict),
        ("constraints", "constraints", dict),
        ("devices", "devices", list),
    ):
        if key in body:
            setattr(session, field, _json_field(body, key, kind, kind()))
            fields.append(field)
    if "webrtcSdk" in body:
        session.webrtc_sdk = _text(body, "webrtcSdk", limit=16)
        fields.append("webrtc_sdk")
    if "appVersion" in body:
        session.app_version = _text(body, "appVersion", limit=16)
        fields.append("app_version")
    if fields:
        session.save(update_fields=fields)
    return session


# --- getUserMedia and browser events ----------------------------------------------------


@transaction.atomic
def gum_event_record(*, session: Session, body: dict, now: datetime) -> GenericEvent:
    data = body.get("data")
    if not isinstance(data, dict):
        raise PeermetricsError("invalid_parameters", "data must be an object")
    event = _event(
        session=session, category=GenericEvent.Category.GET_USER_MEDIA, type="getUserMedia", data=data, now=now
    )
    tracks = []
    for kind_key, kind in (("audio", Track.Kind.AUDIO), ("video", Track.Kind.VIDEO)):
        for item in data.get(kind_key) or []:
            if isinstance(item, dict) and item.get("id"):
                tracks.append(
                    Track(
                        session=session,
                        kind=kind,
                        direction=Track.Direction.OUTBOUND,
                        track_id=str(item["id"])[:64],
                        label=str(item.get("label") or "")[:128],
                        track_info=_track_info(item),
                        created_at=now,
                    )
                )
    Track.objects.bulk_create(tracks)
    error = data.get("error")
    if error:
        error = error if isinstance(error, dict) else {"message": str(error)}
        issue_raise(
            code="getusermedia_error",
            conference=session.conference,
            session=session,
            now=now,
            data={"name": error.get("name"), "message": error.get("message")},
        )
    return event


@transaction.atomic
def browser_event_record(*, session: Session, body: dict, now: datetime) -> GenericEvent:
    event_name = _text(body, "eventName", required=True, limit=32)
    data = {key: value for key, value in body.items() if key not in ("token", "eventName")}
    event = _event(session=session, category=GenericEvent.Category.BROWSER, type=event_name, data=data, now=now)
    if event_name == "beforeunload":
        state.session_end(session=session, now=now)
    elif event_name in ("unload", "endCall"):
        state.session_leave(session=session, now=now)
    return event


# --- connections --------------------------------------------------------------------------


def _connection_add(*, session: Session, body: dict, now: datetime) -> dict:
    peer_app_id = _text(body, "peerId", required=True)
    peer_name = _text(body, "peerName")
    is_sfu = bool(body.get("isSfu"))
    if peer_app_id == session.participant.participant_id:
        raise PeermetricsError("participant_equal_peer")
    peer, _ = Participant.objects.get_or_create(app_id=session.app_id, participant_id=peer_app_id)
    changed = {}
    if peer_name and peer.participant_name != peer_name:
        changed["participant_name"] = peer_name
    if is_sfu and not peer.is_sfu:
        changed["is_sfu"] = True
    if changed:
        Participant.objects.filter(pk=peer.pk).update(**changed)
    session.conference.participants.add(peer)
    connection = state.connection_open(
        session=session, peer=peer, connected=body.get("connectionState") == "connected", now=now
    )
    _event(
        session=session,
        category=GenericEvent.Category.CONNECTION,
        type="addConnection",
        data={k: body.get(k) for k in ("peerId", "peerName", "connectionState", "isSfu")},
        now=now,
        connection=connection,
    )
    return {"peer_id": str(peer.pk), "connection_id": str(connection.pk)}


def _session_connection(session: Session, connection_id: Any, *, lock: bool = False) -> Connection:
    """A connection of *this* session (the reference resolved any UUID, across tenants)."""
    if not connection_id:
        raise PeermetricsError("missing_parameters", "connectionId is required")
    try:
        connection_uuid = uuid.UUID(str(connection_id))
    except ValueError as exc:
        raise PeermetricsError("connection_not_found") from exc
    return selectors.session_connection(session=session, connection_id=connection_uuid, lock=lock)


@transaction.atomic
def connection_event_record(*, session: Session, body: dict, now: datetime) -> dict | str:
    """POST /connection: one SDK connection event. addConnection answers the ids the SDK needs."""
    name = _text(body, "eventName", required=True, limit=32)
    if name not in CONNECTION_EVENTS:
        raise PeermetricsError("invalid_parameters", f"unknown connection event {name}")
    _text(body, "peerId", required=True)
    if name == "addConnection":
        return _connection_add(session=session, body=body, now=now)
    if name == "removePeer":
        # The SDK sends the app-level peer id: end this session's connections to that peer.
        peer_id = str(body["peerId"])
        lookup = Q(peer__participant_id=peer_id)
        if _is_uuid(peer_id):
            lookup |= Q(peer_id=peer_id)
        connections = list(session.connections.select_for_update().filter(lookup, end_time__isnull=True))
        peer = connections[0].peer_id if connections else None
        _event(
            session=session,
            category=GenericEvent.Category.CONNECTION,
            type=name,
            data={"peerId": peer_id},
            now=now,
            peer_id=peer,
        )
        for connection in connections:
            state.connection_end(connection=connection, now=now)
        return ""
    connection = _session_connection(session, body.get("connectionId"), lock=True)
    data = body.get("data")
    if name == "removeConnection":
        stored = None
        state.connection_end(connection=connection, now=now)
    else:
        stored = state.connection_apply(session=session, connection=connection, name=name, data=data, now=now)
    _event(
        session=session,
        category=GenericEvent.Category.CONNECTION,
        type=name,
        data=stored,
        now=now,
        connection=connection,
    )
    return ""


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def connection_batch_record(*, session: Session, items: list, delta: Any) -> list:
    """Each item in its own transaction: one bad event does not drop the others."""
    results = []
    for item in items:
        if not isinstance(item, dict):
            results.append({"error_code": "invalid_parameters"})
            continue
        try:
            now = event_time(item.get("delta", item.get("timeDelta", delta)))
            result = connection_event_record(session=session, body=item, now=now)
            results.append(result if isinstance(result, dict) else {})
        except PeermetricsError as exc:
            results.append({"error_code": exc.code, "message": exc.message})
    return results


# --- tracks ---------------------------------------------------------------------------------


@transaction.atomic
def track_create(*, session: Session, body: dict, now: datetime) -> Track:
    """POST /tracks (``ontrack``): the remote track of a connection, idempotent for retries."""
    connection = _session_connection(session, body.get("connectionId"), lock=True)
    track_id = _text(body, "trackId", required=True)
    data = _json_field(body, "data", dict, {})
    track = Track.objects.filter(connection=connection, track_id=track_id).first()
    if track is None:
        kind = Track.Kind.VIDEO if data.get("kind") == "video" else Track.Kind.AUDIO
        track = Track.objects.create(
            session=session,
            connection=connection,
            kind=kind,
            direction=Track.Direction.INBOUND,
            track_id=track_id,
            label=str(data.get("label") or "")[:128],
            track_info=_track_info(data),
            created_at=now,
        )
    _event(
        session=session,
        category=GenericEvent.Category.TRACK,
        type=_text(body, "event", limit=32) or "ontrack",
        data=data,
        now=now,
        connection=connection,
        track=track,
    )
    return track


@transaction.atomic
def track_update(*, session: Session, body: dict, now: datetime) -> Track:
    """PUT /tracks: mute/unmute/ended/overconstrained. Unknown track → error, nothing saved."""
    event_name = _text(body, "event", required=True, limit=32)
    if event_name not in TRACK_EVENTS:
        raise PeermetricsError("invalid_parameters", f"unknown track event {event_name}")
    track_id = _text(body, "trackId", required=True)
    queryset = Track.objects.select_for_update().filter(session=session, track_id=track_id)
    if body.get("connectionId"):
        queryset = queryset.filter(
            Q(connection_id=_session_connection(session, body["connectionId"]).pk) | Q(connection__isnull=True)
        )
    track = queryset.order_by("-created_at").first()
    if track is None:
        raise PeermetricsError("track_not_found")
    info = track.track_info
    if event_name in ("mute", "unmute"):
        info["muted"] = event_name == "mute"
    elif event_name == "ended":
        info["ended"] = True
        info["readyState"] = "ended"
    else:
        info["overconstrained"] = True
    track.save(update_fields=["track_info"])
    _event(
        session=session,
        category=GenericEvent.Category.TRACK,
        type=event_name,
        data=body.get("data"),
        now=now,
        connection=track.connection,
        track=track,
    )
    return track
