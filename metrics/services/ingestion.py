"""SDK events → rows: initialize, sessions, getUserMedia/browser/connection events, tracks.

Every SDK route but ``/stats`` (:mod:`metrics.ingest`, the group-commit fast path). The views
parse the bodies (:mod:`metrics.serializers`) and authenticate; these functions take the typed
values, keyword-only. Each is atomic (a failing request leaves nothing behind); the
get-or-creates of initialize converge by constraint. ``now`` is the event's time as the SDK meant it (arrival time minus ``delta``).
Connection events drive the state machine in :mod:`metrics.services.connections`. The
retention of the raw stats rows is here too.
"""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from metrics import selectors
from metrics.errors import PeermetricsError
from metrics.models import App, Conference, Connection, GenericEvent, Participant, Session, Track
from metrics.serializers import (
    AddConnectionIn,
    BrowserEventIn,
    ConnectionEvent,
    ConnectionEventIn,
    InitializeIn,
    RemovePeerIn,
    SessionIn,
    SessionUpdateIn,
    TrackIn,
    TrackUpdateIn,
    batch_item,
)
from metrics.services import connections as state
from metrics.services.connections import issue_raise

TRACK_INFO_KEYS = ("enabled", "muted", "readyState", "contentHint", "capabilities", "constraints", "settings")


# --- helpers -----------------------------------------------------------------------


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


@transaction.atomic
def conference_initialize(*, app: App, init: InitializeIn, origin: str = "") -> tuple[Conference, Participant]:
    """Check the app records and allows the origin, get-or-create the conference and participant."""
    if not app.recording:
        raise PeermetricsError("app_not_recording")
    if app.domain and _origin_host(origin) != app.domain.lower():
        raise PeermetricsError("domain_not_allowed")
    # get_or_create retries the read on IntegrityError: the unique constraints make
    # concurrent initialize calls for one conference converge on one row.
    conference, _ = Conference.objects.get_or_create(app=app, conference_id=init.conference_id)
    participant, _ = Participant.objects.get_or_create(app=app, participant_id=init.user_id)
    if init.conference_name and conference.conference_name != init.conference_name:
        Conference.objects.filter(pk=conference.pk).update(conference_name=init.conference_name)
        conference.conference_name = init.conference_name
    if init.user_name and participant.participant_name != init.user_name:
        Participant.objects.filter(pk=participant.pk).update(participant_name=init.user_name)
        participant.participant_name = init.user_name
    conference.participants.add(participant)
    return conference, participant


@transaction.atomic
def session_create(*, conference: Conference, participant: Participant, details: SessionIn, now: datetime) -> Session:
    """POST /sessions: a session of the participant in the conference; a second one is ``multiple_rejoins``."""
    session = Session.objects.create(
        app_id=conference.app_id,
        conference=conference,
        participant=participant,
        platform=details.platform,
        constraints=details.constraints,
        devices=details.devices,
        metadata=details.metadata,
        app_version=details.app_version,
        webrtc_sdk=details.webrtc_sdk,
        created_at=now,
    )
    if Session.objects.filter(conference=conference, participant=participant).count() > 1:
        issue_raise(code="multiple_rejoins", conference=conference, session=session, now=now)
    return session


@transaction.atomic
def session_update(*, session: Session, changes: SessionUpdateIn) -> Session:
    """PUT /sessions: only the keys the SDK sent change (the reference nulled ``webrtcSdk``)."""
    fields = []
    for field in dataclasses.fields(changes):
        value = getattr(changes, field.name)
        if value is not None:
            setattr(session, field.name, value)
            fields.append(field.name)
    if fields:
        session.save(update_fields=fields)
    return session


# --- getUserMedia and browser events ----------------------------------------------------


@transaction.atomic
def gum_event_record(*, session: Session, data: dict, now: datetime) -> GenericEvent:
    """The getUserMedia report; outbound tracks from ``data.audio/video``; ``data.error`` is an issue."""
    event = _event(
        session=session, category=GenericEvent.Category.GET_USER_MEDIA, type="getUserMedia", data=data, now=now
    )
    tracks = []
    for kind_key, kind in (("audio", Track.Kind.AUDIO), ("video", Track.Kind.VIDEO)):
        items = data.get(kind_key)
        # Only a list describes tracks: the constraints form of ``audio``/``video`` (true, {…}) does not.
        for item in items if isinstance(items, list) else []:
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
def browser_event_record(*, session: Session, event: BrowserEventIn, now: datetime) -> GenericEvent:
    """``beforeunload`` ends the session; ``unload``/``endCall`` its connections too, maybe the conference."""
    row = _event(session=session, category=GenericEvent.Category.BROWSER, type=event.name, data=event.data, now=now)
    if event.name == "beforeunload":
        state.session_end(session=session, now=now)
    elif event.name in ("unload", "endCall"):
        state.session_leave(session=session, now=now)
    return row


# --- connections --------------------------------------------------------------------------


@transaction.atomic
def connection_event_record(*, session: Session, event: ConnectionEvent, now: datetime) -> dict[str, str] | None:
    """POST /connection: one SDK connection event. addConnection answers the ids the SDK needs."""
    if isinstance(event, AddConnectionIn):
        return _connection_add(session=session, event=event, now=now)
    if isinstance(event, RemovePeerIn):
        _peer_remove(session=session, event=event, now=now)
    else:
        _connection_event(session=session, event=event, now=now)
    return None


@transaction.atomic
def connection_batch_record(
    *, session: Session, events: list[tuple[ConnectionEvent, datetime]]
) -> list[dict[str, str] | None]:
    """POST /connection/batch: every event or none (a failing one rolls the others back, naming its item)."""
    answers = []
    for index, (event, now) in enumerate(events):
        with batch_item(index):
            answers.append(connection_event_record(session=session, event=event, now=now))
    return answers


def _connection_add(*, session: Session, event: AddConnectionIn, now: datetime) -> dict[str, str]:
    if event.peer_id == session.participant.participant_id:
        raise PeermetricsError("participant_equal_peer")
    peer, _ = Participant.objects.get_or_create(app_id=session.app_id, participant_id=event.peer_id)
    changed = {}
    if event.peer_name and peer.participant_name != event.peer_name:
        changed["participant_name"] = event.peer_name
    if event.is_sfu and not peer.is_sfu:
        changed["is_sfu"] = True
    if changed:
        Participant.objects.filter(pk=peer.pk).update(**changed)
    session.conference.participants.add(peer)
    connection = state.connection_open(session=session, peer=peer, connected=event.connected, now=now)
    _connection_row(session=session, type="addConnection", data=event.data, now=now, connection=connection)
    return {"peer_id": str(peer.pk), "connection_id": str(connection.pk)}


def _peer_remove(*, session: Session, event: RemovePeerIn, now: datetime) -> None:
    """The SDK sends the app-level peer id: end this session's connections to that peer."""
    lookup = Q(peer__participant_id=event.peer_id)
    if _is_uuid(event.peer_id):
        lookup |= Q(peer_id=event.peer_id)
    connections = list(session.connections.select_for_update().filter(lookup, end_time__isnull=True))
    peer = connections[0].peer_id if connections else None
    _connection_row(session=session, type="removePeer", data={"peerId": event.peer_id}, now=now, peer_id=peer)
    for connection in connections:
        state.connection_end(connection=connection, now=now)


def _connection_event(*, session: Session, event: ConnectionEventIn, now: datetime) -> None:
    connection = selectors.session_connection(session=session, connection_id=event.connection_id, lock=True)
    if event.name == "removeConnection":
        stored = None
        state.connection_end(connection=connection, now=now)
    else:
        stored = state.connection_apply(
            session=session, connection=connection, name=event.name, data=event.data, now=now
        )
    _connection_row(session=session, type=event.name, data=stored, now=now, connection=connection)


def _connection_row(
    *, session: Session, type: str, data: Any, now: datetime, connection: Connection | None = None, peer_id: Any = None
) -> GenericEvent:
    """A connection event's row; its peer is the connection's, else ``peer_id``."""
    return _event(
        session=session,
        category=GenericEvent.Category.CONNECTION,
        type=type,
        data=data,
        now=now,
        connection=connection,
        peer_id=peer_id,
    )


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


# --- tracks ---------------------------------------------------------------------------------


@transaction.atomic
def track_create(*, session: Session, connection: Connection, remote: TrackIn, now: datetime) -> Track:
    """POST /tracks (``ontrack``): the remote track of a connection, idempotent for retries.

    The connection's row lock serializes concurrent retries of one ``ontrack`` (one track row).
    """
    connection = selectors.session_connection(session=session, connection_id=connection.pk, lock=True)
    data = remote.data
    track = Track.objects.filter(connection=connection, track_id=remote.track_id).first()
    if track is None:
        kind = Track.Kind.VIDEO if data.get("kind") == "video" else Track.Kind.AUDIO
        track = Track.objects.create(
            session=session,
            connection=connection,
            kind=kind,
            direction=Track.Direction.INBOUND,
            track_id=remote.track_id,
            label=str(data.get("label") or "")[:128],
            track_info=_track_info(data),
            created_at=now,
        )
    _event(
        session=session,
        category=GenericEvent.Category.TRACK,
        type=remote.event,
        data=data,
        now=now,
        connection=connection,
        track=track,
    )
    return track


@transaction.atomic
def track_update(*, session: Session, change: TrackUpdateIn, now: datetime) -> Track:
    """PUT /tracks: mute/unmute/ended/overconstrained. Unknown track → error, nothing saved."""
    event = change.event
    queryset = Track.objects.select_for_update().filter(session=session, track_id=change.track_id)
    if change.connection_id is not None:
        connection = selectors.session_connection(session=session, connection_id=change.connection_id)
        queryset = queryset.filter(Q(connection_id=connection.pk) | Q(connection__isnull=True))
    track = queryset.order_by("-created_at").first()
    if track is None:
        raise PeermetricsError("track_not_found")
    info = track.track_info
    if event in ("mute", "unmute"):
        info["muted"] = event == "mute"
    elif event == "ended":
        info["ended"] = True
        info["readyState"] = "ended"
    else:
        info["overconstrained"] = True
    track.save(update_fields=["track_info"])
    _event(
        session=session,
        category=GenericEvent.Category.TRACK,
        type=event,
        data=change.data,
        now=now,
        connection=track.connection,
        track=track,
    )
    return track


# --- retention ------------------------------------------------------------------------------


def stats_purge_expired() -> int:
    """Delete raw stats older than ``METRICS_STATS_RETENTION_DAYS`` (summaries are kept)."""
    cutoff = timezone.now() - timedelta(days=settings.METRICS_STATS_RETENTION_DAYS)
    deleted, _ = GenericEvent.objects.filter(category=GenericEvent.Category.STATS, created_at__lt=cutoff).delete()
    return deleted
