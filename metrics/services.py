"""Writes for the peermetrics API: SDK ingestion, the connection state machine, issues, dashboard CRUD.

Every function is keyword-only and atomic. ``now`` is the event's time as the SDK meant it
(arrival time minus ``delta``). Read-modify-write of a connection's JSON state happens
under a row lock, so concurrent, unordered connection events do not lose updates.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from metrics.errors import PeermetricsError
from metrics.models import (
    ISSUES,
    App,
    Conference,
    Connection,
    GenericEvent,
    Issue,
    Organization,
    Participant,
    Session,
    Track,
    new_api_key,
)

API_KEY_RE = re.compile(r"^[a-z0-9]{32}$")
ICE_STATES = {"new", "checking", "connected", "completed", "failed", "disconnected", "closed"}
SIGNALING_STATES = {
    "stable",
    "have-local-offer",
    "have-remote-offer",
    "have-local-pranswer",
    "have-remote-pranswer",
    "closed",
}
GATHERING_STATES = {"new", "gathering", "complete"}
CONNECTION_STATES = set(Connection.STATES)
CANDIDATE_KEYS = (
    "address", "candidate", "component", "foundation", "port", "priority", "protocol",
    "relatedAddress", "relatedPort", "sdpMLineIndex", "sdpMid", "tcpType", "type", "usernameFragment",
)  # fmt: skip
CONNECTION_EVENTS = {
    "addConnection", "removeConnection", "removePeer", "peerDetails", "onicecandidate", "onicegatheringstatechange",
    "onsignalingstatechange", "oniceconnectionstatechange", "onconnectionstatechange", "onnegotiationneeded",
    "onicecandidateerror", "ondatachannel",
}  # fmt: skip
TRACK_EVENTS = {"mute", "unmute", "ended", "overconstrained"}
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


def issue_raise(
    *,
    code: str,
    conference: Conference,
    now: datetime,
    session: Session | None = None,
    participant: Participant | None = None,
    connection: Connection | None = None,
    track: Track | None = None,
    data: dict | None = None,
) -> None:
    """Record an issue; once-per-connection/-session codes are deduplicated by constraint."""
    issue = Issue(
        app_id=conference.app_id,
        conference=conference,
        session=session,
        participant=participant or (session.participant if session else None),
        connection=connection,
        track=track,
        type=ISSUES[code][0],
        code=code,
        data=data or {},
        created_at=now,
    )
    Issue.objects.bulk_create([issue], ignore_conflicts=True)


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


# --- initialize and sessions ---------------------------------------------------------


def _origin_host(origin: str) -> str:
    return (urlsplit(origin).hostname or "") if origin else ""


def app_for_key(*, api_key: Any) -> App:
    if not isinstance(api_key, str) or not API_KEY_RE.match(api_key):
        raise PeermetricsError("invalid_api_key")
    app = App.objects.filter(api_key=api_key, is_active=True, organization__is_active=True).first()
    if app is None:
        raise PeermetricsError("invalid_api_key")
    return app


def conference_initialize(*, body: dict, origin: str = "") -> tuple[App, Conference, Participant]:
    """Validate the api key and origin, get-or-create the conference and participant."""
    for key in ("conferenceId", "userId", "apiKey"):
        if body.get(key) in (None, ""):
            raise PeermetricsError("missing_parameters", f"{key} is required")
    app = app_for_key(api_key=body["apiKey"])
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
                info = {
                    k: item.get(k)
                    for k in (
                        "enabled",
                        "muted",
                        "readyState",
                        "contentHint",
                        "capabilities",
                        "constraints",
                        "settings",
                    )
                }
                tracks.append(
                    Track(
                        session=session,
                        kind=kind,
                        direction=Track.Direction.OUTBOUND,
                        track_id=str(item["id"])[:64],
                        label=str(item.get("label") or "")[:128],
                        track_info=info,
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
        _session_end(session=session, now=now)
    elif event_name in ("unload", "endCall"):
        for connection in session.connections.select_for_update().filter(end_time__isnull=True):
            _connection_end(connection=connection, now=now, check=False)
        _session_end(session=session, now=now)
        _conference_check(conference_id=session.conference_id, now=now)
        _session_final_checks(session=session, now=now)
    return event


@transaction.atomic
def conference_stop(*, conference_id: Any, now: datetime) -> None:
    """End every open connection and session of a conference (stale calls, operators)."""
    for connection in Connection.objects.select_for_update().filter(conference_id=conference_id, end_time__isnull=True):
        _connection_end(connection=connection, now=now, check=False)
    for session in Session.objects.filter(conference_id=conference_id, end_time__isnull=True):
        _session_end(session=session, now=now)
    _conference_check(conference_id=conference_id, now=now)


def _session_end(*, session: Session, now: datetime) -> None:
    if session.end_time is None:
        session.end_time = now
        session.duration = max((now - session.created_at).total_seconds(), 0.0)
        session.call_start = None
        session.save(update_fields=["end_time", "duration", "call_start"])


def _session_final_checks(*, session: Session, now: datetime) -> None:
    """``no_media_access`` and ``no_connection``, once per session (constraint-deduplicated)."""
    gum = list(session.events.filter(category=GenericEvent.Category.GET_USER_MEDIA).values_list("data", flat=True))
    asked = sum(1 for data in gum if isinstance(data, dict) and "constraints" in data)
    failed = sum(1 for data in gum if isinstance(data, dict) and data.get("error"))
    if asked and failed >= asked:
        issue_raise(code="no_media_access", conference=session.conference, session=session, now=now)
    connections = list(session.connections.all())
    if connections and not any(c.connection_info.get("established") for c in connections):
        issue_raise(code="no_connection", conference=session.conference, session=session, now=now)


# --- connections --------------------------------------------------------------------------


def _negotiation_open(info: dict, kind: str, now: datetime) -> None:
    negotiations = info.setdefault("negotiations", [])
    if negotiations and negotiations[-1]["status"] == "connecting":
        return
    negotiations.append(
        {"type": kind, "status": "connecting", "start_time": now.isoformat(), "end_time": None, "duration": None}
    )


def _negotiation_close(info: dict, status: str, now: datetime) -> None:
    negotiations = info.get("negotiations") or []
    if not negotiations or negotiations[-1]["status"] not in ("connecting", "stable"):
        return
    last = negotiations[-1]
    last["status"] = status
    last["end_time"] = now.isoformat()
    last["duration"] = round((now - datetime.fromisoformat(last["start_time"])).total_seconds(), 3)


def _connection_end(*, connection: Connection, now: datetime, check: bool = True) -> None:
    if connection.end_time is not None:
        return
    info = connection.connection_info
    for negotiation in info.get("negotiations") or []:
        if negotiation["status"] == "connecting":
            negotiation["status"] = "failed"
    connection.end_time = now
    connection.duration = max((now - connection.start_time).total_seconds(), 0.0)
    connection.save(update_fields=["end_time", "duration", "connection_info"])
    from metrics.ingest import forget_connection

    forget_connection(connection.pk)
    if check:
        if not Connection.objects.filter(session_id=connection.session_id, end_time__isnull=True).exists():
            Session.objects.filter(pk=connection.session_id).update(call_start=None)
        _conference_check(conference_id=connection.conference_id, now=now)


def _conference_check(*, conference_id: Any, now: datetime) -> None:
    """All connections ended → close the live stretch and queue the summary (after commit)."""
    conference = Conference.objects.select_for_update().get(pk=conference_id)
    if not conference.ongoing or Connection.objects.filter(conference_id=conference_id, end_time__isnull=True).exists():
        return
    if conference.call_start:
        conference.duration += max((now - conference.call_start).total_seconds(), 0.0)
    conference.end_time = now
    conference.ongoing = False
    conference.call_start = None
    conference.save(update_fields=["duration", "end_time", "ongoing", "call_start"])
    from metrics.tasks import summary_queue

    transaction.on_commit(lambda: summary_queue(conference_id=conference_id))


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
    state = body.get("connectionState")
    connection = Connection(
        app_id=session.app_id,
        conference_id=session.conference_id,
        session=session,
        participant_id=session.participant_id,
        peer=peer,
        start_time=now,
        created_at=now,
        connection_info={"negotiations": []},
    )
    if state == "connected":
        connection.state = "connected"
        connection.connection_info["established"] = True
    else:
        _negotiation_open(connection.connection_info, "initial", now)
    connection.save()
    Session.objects.filter(pk=session.pk, call_start__isnull=True).update(call_start=now)
    conference = Conference.objects.select_for_update().get(pk=session.conference_id)
    conference.ongoing = True
    conference.end_time = None
    conference.start_time = conference.start_time or now
    conference.call_start = conference.call_start or now
    conference.save(update_fields=["ongoing", "end_time", "start_time", "call_start"])
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
    queryset = Connection.objects.select_for_update() if lock else Connection.objects
    connection = queryset.filter(pk=connection_uuid, session_id=session.pk).first()
    if connection is None:
        raise PeermetricsError("connection_not_found")
    return connection


def _state(data: Any, allowed: set[str], name: str) -> str:
    if not isinstance(data, str) or data not in allowed:
        raise PeermetricsError("invalid_parameters", f"invalid {name}")
    return data


def _mark_connected(connection: Connection, now: datetime) -> None:
    connection.state = "connected"
    connection.connection_info["established"] = True
    _negotiation_close(connection.connection_info, "connected", now)


def _connection_event_apply(*, session: Session, connection: Connection, name: str, data: Any, now: datetime) -> Any:
    """The state machine for one event on a locked connection; returns the data to store."""
    info = connection.connection_info
    issue_kwargs = {"conference": session.conference, "session": session, "connection": connection, "now": now}
    if name == "onicecandidate":
        return {key: data.get(key) for key in CANDIDATE_KEYS} if isinstance(data, dict) else None
    if name == "onicegatheringstatechange":
        return _state(data, GATHERING_STATES, "gathering state")
    if name == "onnegotiationneeded":
        _negotiation_open(info, "renegotiation", now)
    elif name == "onsignalingstatechange":
        signaling = data.get("signalingState") if isinstance(data, dict) else data
        _state(signaling, SIGNALING_STATES, "signaling state")
        if signaling in ("have-local-offer", "have-remote-offer"):
            _negotiation_open(info, "renegotiation" if info.get("negotiations") else "initial", now)
        elif signaling == "stable":
            _negotiation_close(info, "stable", now)
    elif name == "oniceconnectionstatechange":
        ice = _state(data, ICE_STATES, "ICE connection state")
        if ice in ("connected", "completed"):
            _mark_connected(connection, now)
        elif ice == "failed":
            issue_raise(code="ice_failed", **issue_kwargs)
    elif name == "onconnectionstatechange":
        state = _state(data, CONNECTION_STATES, "connection state")
        # The SDK posts events concurrently, so they can arrive out of order: a late
        # "new"/"connecting" never undoes a connection that already got further.
        if not (
            state in ("new", "connecting") and connection.state in ("connected", "disconnected", "failed", "closed")
        ):
            connection.state = state
        if state == "connected":
            _mark_connected(connection, now)
        elif state == "failed":
            _negotiation_close(info, "failed", now)
            issue_raise(code="connection_failed", **issue_kwargs)
        elif state == "disconnected":
            issue_raise(code="connection_disconnected", **issue_kwargs)
    elif name == "onicecandidateerror":
        issue_raise(code="icecandidateerror", data=data if isinstance(data, dict) else {}, **issue_kwargs)
    connection.save(update_fields=["state", "connection_info"])
    if name == "onconnectionstatechange" and data == "closed":
        _connection_end(connection=connection, now=now)
    return data


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
            _connection_end(connection=connection, now=now)
        return ""
    connection = _session_connection(session, body.get("connectionId"), lock=True)
    data = body.get("data")
    if name == "removeConnection":
        stored = None
        _connection_end(connection=connection, now=now)
    else:
        stored = _connection_event_apply(session=session, connection=connection, name=name, data=data, now=now)
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
        info = {
            k: data.get(k)
            for k in ("enabled", "muted", "readyState", "contentHint", "capabilities", "constraints", "settings")
        }
        track = Track.objects.create(
            session=session,
            connection=connection,
            kind=kind,
            direction=Track.Direction.INBOUND,
            track_id=track_id,
            label=str(data.get("label") or "")[:128],
            track_info=info,
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


# --- dashboard writes -------------------------------------------------------------------------


@transaction.atomic
def organization_create(*, user: Any, name: str) -> Organization:
    organization = Organization.objects.create(name=name[:64])
    organization.members.add(user)
    return organization


@transaction.atomic
def organization_update(*, organization: Organization, name: str) -> Organization:
    organization.name = name[:64]
    organization.save(update_fields=["name"])
    return organization


@transaction.atomic
def organization_delete(*, organization: Organization) -> None:
    organization.is_active = False
    organization.save(update_fields=["is_active"])
    organization.apps.update(is_active=False)


@transaction.atomic
def app_create(
    *, organization: Organization, name: str, domain: str = "", recording: bool = True, interval: int = 10000
) -> App:
    return App.objects.create(
        organization=organization, name=name[:64], domain=domain, recording=recording, interval=interval
    )


@transaction.atomic
def app_update(*, app: App, **fields: Any) -> App:
    for key, value in fields.items():
        setattr(app, key, value)
    app.save(update_fields=list(fields))
    return app


@transaction.atomic
def app_delete(*, app: App) -> None:
    app.is_active = False
    app.save(update_fields=["is_active"])


def app_reset_key(*, app: App) -> App:
    """A fresh 32-char key (the reference produced 36 chars and always failed validation)."""
    for _ in range(3):
        try:
            with transaction.atomic():
                app.api_key = new_api_key()
                app.save(update_fields=["api_key"])
            return app
        except IntegrityError:  # a collision of 128 random bits: try again
            continue
    raise PeermetricsError("unknown_error", "could not generate a unique key")
