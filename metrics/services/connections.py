"""The connection state machine: negotiations, connection/session/conference ends, issues.

The functions here run inside the caller's transaction (the SDK route's service, or
:func:`conference_stop`): read-modify-write of a connection's JSON state happens on a row the
caller locked, so concurrent, unordered connection events do not lose updates.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from metrics import selectors
from metrics.errors import PeermetricsError
from metrics.ingest import forget_connection
from metrics.models import ISSUES, Conference, Connection, GenericEvent, Issue, Participant, Session, Track
from metrics.signals import call_ended

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


# --- sessions and conferences ----------------------------------------------------------------


def session_end(*, session: Session, now: datetime) -> None:
    if session.end_time is None:
        session.end_time = now
        session.duration = max((now - session.created_at).total_seconds(), 0.0)
        session.call_start = None
        session.save(update_fields=["end_time", "duration", "call_start"])


def session_leave(*, session: Session, now: datetime) -> None:
    """The page is gone (``unload``/``endCall``): its connections, the session, maybe the conference end."""
    for connection in session.connections.select_for_update().filter(end_time__isnull=True):
        connection_end(connection=connection, now=now, check=False)
    session_end(session=session, now=now)
    _conference_check(conference_id=session.conference_id, now=now)
    _session_final_checks(session=session, now=now)


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


@transaction.atomic
def conference_stop(*, conference_id: Any, now: datetime) -> None:
    """End every open connection and session of a conference (stale calls, operators)."""
    for connection in Connection.objects.select_for_update().filter(conference_id=conference_id, end_time__isnull=True):
        connection_end(connection=connection, now=now, check=False)
    for session in Session.objects.filter(conference_id=conference_id, end_time__isnull=True):
        session_end(session=session, now=now)
    _conference_check(conference_id=conference_id, now=now)


def conferences_close_stale() -> int:
    """Close calls whose SDKs went silent (tab killed, network gone) ``METRICS_CONFERENCE_TIMEOUT_HOURS`` ago.

    They end at their last event, so durations do not count the silence.
    """
    cutoff = timezone.now() - timedelta(hours=settings.METRICS_CONFERENCE_TIMEOUT_HOURS)
    closed = 0
    for conference_id, last_event in selectors.conferences_silent(since=cutoff):
        conference_stop(conference_id=conference_id, now=last_event)
        closed += 1
    return closed


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
    transaction.on_commit(lambda: call_ended.send(sender=Conference, conference_id=conference_id))


# --- connections -----------------------------------------------------------------------------


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


def connection_open(*, session: Session, peer: Participant, connected: bool, now: datetime) -> Connection:
    """A new connection of the session: the session's call and the conference's live stretch start."""
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
    if connected:
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
    return connection


def connection_end(*, connection: Connection, now: datetime, check: bool = True) -> None:
    """End a (locked) connection; with ``check``, the session's call and maybe the conference end too."""
    if connection.end_time is not None:
        return
    info = connection.connection_info
    for negotiation in info.get("negotiations") or []:
        if negotiation["status"] == "connecting":
            negotiation["status"] = "failed"
    connection.end_time = now
    connection.duration = max((now - connection.start_time).total_seconds(), 0.0)
    connection.save(update_fields=["end_time", "duration", "connection_info"])
    forget_connection(connection.pk)
    if check:
        if not Connection.objects.filter(session_id=connection.session_id, end_time__isnull=True).exists():
            Session.objects.filter(pk=connection.session_id).update(call_start=None)
        _conference_check(conference_id=connection.conference_id, now=now)


def _state(data: Any, allowed: set[str], name: str) -> str:
    if not isinstance(data, str) or data not in allowed:
        raise PeermetricsError("invalid_parameters", f"invalid {name}")
    return data


def _mark_connected(connection: Connection, now: datetime) -> None:
    connection.state = "connected"
    connection.connection_info["established"] = True
    _negotiation_close(connection.connection_info, "connected", now)


def connection_apply(*, session: Session, connection: Connection, name: str, data: Any, now: datetime) -> Any:
    """The state machine for one SDK event on a locked connection; returns the data to store."""
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
        connection_end(connection=connection, now=now)
    return data
