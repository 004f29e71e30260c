"""Reads for the peermetrics API. Every dashboard query starts from the caller's organizations."""

from __future__ import annotations

import re
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from django.db.models import Case, Count, Exists, Max, OuterRef, Q, QuerySet, Value, When
from django.db.models.fields.json import KT
from django.db.models.functions import TruncDate

from metrics import tokens
from metrics.errors import PeermetricsError
from metrics.models import ISSUES, App, Conference, Connection, GenericEvent, Issue, Organization, Participant, Session

API_KEY_RE = re.compile(r"^[a-z0-9]{32}$")


def parse_uuid(value: Any, code: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError) as exc:
        raise PeermetricsError(code) from exc


# --- SDK side ------------------------------------------------------------------------------


def session_from_token(token: Any) -> Session:
    claims = tokens.verify("session", token, ("s",))
    session = (
        Session.objects.select_related("conference", "participant", "app")
        .filter(pk=parse_uuid(claims["s"], "invalid_token"))
        .first()
    )
    if session is None:
        raise PeermetricsError("invalid_token")
    tokens.verify_generation(claims, session.app.key_generation)
    return session


def init_token_subjects(*, claims: dict[str, Any]) -> tuple[Conference, Participant]:
    """The conference and participant an init token names; gone, of different apps or of an
    earlier api key of the app is ``invalid_token``."""
    conference_id = parse_uuid(claims["c"], "invalid_token")
    participant_id = parse_uuid(claims["p"], "invalid_token")
    conference = Conference.objects.select_related("app").filter(pk=conference_id).first()
    participant = Participant.objects.filter(pk=participant_id).first()
    if conference is None or participant is None or participant.app_id != conference.app_id:
        raise PeermetricsError("invalid_token")
    tokens.verify_generation(claims, conference.app.key_generation)
    return conference, participant


def session_connection(*, session: Session, connection_id: uuid.UUID, lock: bool = False) -> Connection:
    """A connection of *this* session (the reference resolved any UUID, across tenants)."""
    queryset = Connection.objects.select_for_update() if lock else Connection.objects
    connection = queryset.filter(pk=connection_id, session_id=session.pk).first()
    if connection is None:
        raise PeermetricsError("connection_not_found")
    return connection


def app_for_key(*, api_key: Any) -> App:
    """The active app of an active organization that owns this SDK api key."""
    if not isinstance(api_key, str) or not API_KEY_RE.match(api_key):
        raise PeermetricsError("invalid_api_key")
    app = App.objects.filter(api_key=api_key, is_active=True, organization__is_active=True).first()
    if app is None:
        raise PeermetricsError("invalid_api_key")
    return app


def conference_for_key(*, app: App, conference_id: Any) -> Conference:
    """A conference of the app that authenticated with its api key (server-to-server routes)."""
    if conference_id in (None, ""):
        raise PeermetricsError("missing_parameters", "conferenceId is required")
    conference = Conference.objects.filter(app=app, conference_id=str(conference_id)).first()
    if conference is None:
        raise PeermetricsError("conference_not_found")
    return conference


def conferences_silent(*, since: datetime) -> QuerySet:
    """``(pk, last event time)`` of the ongoing conferences with no event after ``since``."""
    return (
        Conference.objects.filter(ongoing=True)
        .annotate(last_event=Max("events__created_at"))
        .filter(last_event__lt=since)
        .values_list("pk", "last_event")
    )


# --- dashboard: tenancy ----------------------------------------------------------------------


def organization_list(*, user: Any) -> QuerySet[Organization]:
    return Organization.objects.filter(members=user, is_active=True)


def app_list(*, user: Any) -> QuerySet[App]:
    return App.objects.filter(organization__in=organization_list(user=user), is_active=True).select_related(
        "organization"
    )


def _get(queryset: QuerySet, pk: Any, code: str) -> Any:
    item = queryset.filter(pk=parse_uuid(pk, code)).first()
    if item is None:
        raise PeermetricsError(code)
    return item


def organization_get(*, user: Any, pk: Any) -> Organization:
    return _get(organization_list(user=user), pk, "organization_not_found")


def app_get(*, user: Any, pk: Any) -> App:
    return _get(app_list(user=user), pk, "app_not_found")


def _in_apps(queryset: QuerySet, user: Any) -> QuerySet:
    return queryset.filter(app__in=app_list(user=user))


DATE_FILTERS = ("created_at_gt", "created_at_gte", "created_at_lt", "created_at_lte")


def _filtered(
    queryset: QuerySet, params: dict, *, user: Any, allowed: dict[str, str], required: bool = True
) -> QuerySet:
    """Apply ``appId``/``conferenceId``/``participantId`` (checked against the caller) and dates.

    ``params`` are checked already (:class:`metrics.serializers.ListQuery`).
    """
    used = False
    for param, field in allowed.items():
        value = params.get(param)
        if value:
            queryset = queryset.filter(**{field: value})
            used = True
    if required and not used:
        raise PeermetricsError("missing_parameters", f"one of {', '.join(allowed)} is required")
    for name in DATE_FILTERS:
        if params.get(name):
            queryset = queryset.filter(**{f"created_at__{name.rsplit('_', 1)[1]}": params[name]})
    return _in_apps(queryset, user)


def conference_list(*, user: Any, params: dict) -> QuerySet[Conference]:
    queryset = _filtered(
        Conference.objects.all(), params, user=user, allowed={"appId": "app_id", "participantId": "participants__id"}
    )
    if params.get("issue_code"):
        queryset = queryset.filter(issues__code=params["issue_code"])
    return (
        queryset.annotate(
            # Everyone the conference page lists (SDK users and the peers they connected to).
            participants_count=Count("participants", distinct=True),
            has_errors=Exists(Issue.objects.filter(conference=OuterRef("pk"), type="e")),
            has_warnings=Exists(Issue.objects.filter(conference=OuterRef("pk"), type="w")),
        )
        .distinct()
        .order_by("-created_at")
    )


def conference_get(*, user: Any, pk: Any) -> Conference:
    return _get(_in_apps(Conference.objects.select_related("app"), user), pk, "conference_not_found")


def conference_events(*, conference: Conference, event_type: str | None) -> QuerySet[GenericEvent]:
    """``type`` is a category label (stats, connection, browser, getUserMedia, track) or an event name; ``-x`` excludes."""
    queryset = conference.events.order_by("created_at", "id")
    if event_type:
        exclude = event_type.startswith("-")
        name = event_type.lstrip("-")
        categories = {label.lower(): value for value, label in GenericEvent.Category.choices}
        condition = Q(category=categories[name.lower()]) if name.lower() in categories else Q(type=name)
        queryset = queryset.exclude(condition) if exclude else queryset.filter(condition)
    return queryset


def participant_list(*, user: Any, params: dict) -> QuerySet[Participant]:
    return _filtered(
        Participant.objects.all(), params, user=user, allowed={"appId": "app_id", "conferenceId": "conferences__id"}
    ).distinct()


def participant_get(*, user: Any, pk: Any) -> Participant:
    return _get(_in_apps(Participant.objects.all(), user), pk, "participant_not_found")


SCOPE = {"appId": "app_id", "conferenceId": "conference_id", "participantId": "participant_id"}


def session_list(*, user: Any, params: dict) -> QuerySet[Session]:
    return _filtered(Session.objects.all(), params, user=user, allowed=SCOPE).prefetch_related("issues")


def session_get(*, user: Any, pk: Any) -> Session:
    return _get(_in_apps(Session.objects.prefetch_related("issues"), user), pk, "session_not_found")


def connection_list(*, user: Any, params: dict) -> QuerySet[Connection]:
    return _filtered(Connection.objects.all(), params, user=user, allowed=SCOPE)


def connection_get(*, user: Any, pk: Any) -> Connection:
    return _get(_in_apps(Connection.objects.all(), user), pk, "connection_not_found")


def issue_list(*, user: Any, params: dict) -> QuerySet[Issue]:
    return _filtered(Issue.objects.all(), params, user=user, allowed=SCOPE)


def issue_get(*, user: Any, pk: Any) -> Issue:
    return _get(_in_apps(Issue.objects.all(), user), pk, "issue_not_found")


def search(*, user: Any, query: str, limit: int = 5) -> list[dict]:
    """Conferences, participants, apps and organizations of the caller by id or name (never api keys)."""
    apps = app_list(user=user)
    results: list[dict] = []
    for item in Conference.objects.filter(app__in=apps).filter(
        Q(conference_id__icontains=query) | Q(conference_name__icontains=query)
    )[:limit]:
        results.append({"type": "conference", "id": str(item.pk), "name": str(item), "url": f"conferences/{item.pk}"})
    for item in Participant.objects.filter(app__in=apps).filter(
        Q(participant_id__icontains=query) | Q(participant_name__icontains=query)
    )[:limit]:
        results.append({"type": "participant", "id": str(item.pk), "name": str(item), "url": f"participants/{item.pk}"})
    for item in apps.filter(name__icontains=query)[:limit]:
        results.append({"type": "app", "id": str(item.pk), "name": item.name, "url": f"apps/{item.pk}"})
    for item in organization_list(user=user).filter(name__icontains=query)[:limit]:
        results.append(
            {"type": "organization", "id": str(item.pk), "name": item.name, "url": f"organizations/{item.pk}"}
        )
    return results[:limit]


# --- dashboard: aggregates (peermetrics' summary routes, one app and a date range) ---------------

APP_SCOPE = {"appId": "app_id"}
# (label, lower bound, upper bound): durations in seconds, setup times in milliseconds.
DURATION_BUCKETS = [
    ("<1 m", 0, 60),
    *((f"{lo}-{hi} m", lo * 60, hi * 60) for lo, hi in ((1, 5), (5, 10), (10, 15), (15, 20), (20, 25), (25, 30))),
    *((f"{lo}-{hi} m", lo * 60, hi * 60) for lo, hi in ((30, 35), (35, 40), (40, 45), (45, 60))),
    (">60 m", 3600, None),
]
SETUP_TIME_BUCKETS = [
    ("<250 ms", 0, 250),
    *((f"{lo}-{hi} ms", lo, hi) for lo, hi in ((250, 500), (500, 750), (750, 1000), (1000, 1500), (1500, 2000))),
    *((f"{lo}-{hi} ms", lo, hi) for lo, hi in ((2000, 2500), (2500, 3000), (3000, 4000), (4000, 5000))),
    (">5000 ms", 5000, None),
]
# Conferences listed per setup-time bucket (enough to open the slow ones from the dashboard).
BUCKET_CONFERENCE_IDS = 20


def _bucket(buckets: list[tuple[str, int, int | None]], value: float) -> int:
    return next(i for i, (_, lo, hi) in enumerate(buckets) if value >= lo and (hi is None or value < hi))


def conference_day_summary(*, user: Any, params: dict) -> list[dict]:
    """Conferences per UTC day by outcome; each counts once: ongoing, else error, else warning, else success."""
    outcome = Case(
        When(ongoing=True, then=Value("ongoing")),
        When(Exists(Issue.objects.filter(conference=OuterRef("pk"), type=Issue.Type.ERROR)), then=Value("error")),
        When(Exists(Issue.objects.filter(conference=OuterRef("pk"), type=Issue.Type.WARNING)), then=Value("warning")),
        default=Value("success"),
    )
    rows = (
        _filtered(Conference.objects.all(), params, user=user, allowed=APP_SCOPE)
        .annotate(day=TruncDate("created_at", tzinfo=UTC), outcome=outcome)
        .values("day", "outcome")
        .annotate(count=Count("id"))
        .order_by("day")
    )
    days: dict[str, dict] = {}
    for row in rows:
        day = days.setdefault(
            row["day"].isoformat(),
            {"date": row["day"].isoformat(), "success": 0, "warning": 0, "error": 0, "ongoing": 0, "total": 0},
        )
        day[row["outcome"]] += row["count"]
        day["total"] += row["count"]
    return list(days.values())


def conference_duration_summary(*, user: Any, params: dict) -> list[dict]:
    """Conferences by duration (seconds with a live connection), in 12 buckets from <1 m to >60 m."""
    conferences = _filtered(Conference.objects.all(), params, user=user, allowed=APP_SCOPE)
    counts = conferences.aggregate(
        **{
            f"b{index}": Count("id", filter=Q(duration__gte=lo) & (Q(duration__lt=hi) if hi else Q()))
            for index, (_, lo, hi) in enumerate(DURATION_BUCKETS)
        }
    )
    return [
        {"range": label, "min_sec": lo, "max_sec": hi, "count": counts[f"b{index}"]}
        for index, (label, lo, hi) in enumerate(DURATION_BUCKETS)
    ]


def conference_participant_count_summary(*, user: Any, params: dict) -> dict:
    """How many conferences had 1, 2, 3 … participants (everyone the conference page lists)."""
    sizes = Counter(
        _filtered(Conference.objects.all(), params, user=user, allowed=APP_SCOPE)
        .annotate(size=Count("participants", distinct=True))
        .values_list("size", flat=True)
    )
    return {
        "data": [{"participants": size, "conferences": count} for size, count in sorted(sizes.items())],
        "total_conferences": sum(sizes.values()),
    }


def session_summary(*, user: Any, params: dict) -> dict:
    """Sessions by browser, operating system, country and city (``platform``, ``geo_ip``)."""
    sessions = _filtered(Session.objects.all(), params, user=user, allowed=APP_SCOPE)
    fields = {
        "browsers": "platform__browser__name",
        "os": "platform__os__name",
        "countries": "geo_ip__country",
        "cities": "geo_ip__city",
    }
    result = {}
    for name, path in fields.items():
        rows = sessions.values(value=KT(path)).annotate(count=Count("id")).order_by("-count")
        result[name] = {row["value"]: row["count"] for row in rows if row["value"]}
    return result


def connection_summary(*, user: Any, params: dict) -> dict:
    """Connections by path: direct (host, srflx, prflx candidates), relayed (TURN), or not known yet."""
    connections = _filtered(Connection.objects.all(), params, user=user, allowed=APP_SCOPE)
    return connections.aggregate(
        direct=Count("id", filter=Q(type__in=[Connection.Type.HOST, Connection.Type.SRFLX, Connection.Type.PRFLX])),
        relayed=Count("id", filter=Q(type=Connection.Type.RELAY)),
        unknown=Count("id", filter=Q(type="")),
    )


def connection_setup_time_summary(*, user: Any, params: dict) -> list[dict]:
    """Connections by the time their first negotiation took to connect, in 11 buckets (ms)."""
    buckets = [
        {"range": label, "min_ms": lo, "max_ms": hi, "count": 0, "conference_ids": []}
        for label, lo, hi in SETUP_TIME_BUCKETS
    ]
    connections = _filtered(Connection.objects.all(), params, user=user, allowed=APP_SCOPE)
    for conference_id, info in connections.values_list("conference_id", "connection_info").iterator(chunk_size=2000):
        negotiations = (info or {}).get("negotiations") or []
        first = next((n for n in negotiations if n.get("status") == "connected"), None)
        if first is None or first.get("duration") is None:
            continue
        bucket = buckets[_bucket(SETUP_TIME_BUCKETS, first["duration"] * 1000)]
        bucket["count"] += 1
        if len(bucket["conference_ids"]) < BUCKET_CONFERENCE_IDS and str(conference_id) not in bucket["conference_ids"]:
            bucket["conference_ids"].append(str(conference_id))
    return buckets


def issue_summary(*, user: Any, params: dict) -> list[dict]:
    rows = (
        _filtered(Issue.objects.all(), params, user=user, allowed=APP_SCOPE)
        .values("code")
        .annotate(count=Count("id"))
        .order_by("-count", "code")
    )
    return [
        {"code": row["code"], "title": ISSUES.get(row["code"], ("", row["code"]))[1], "count": row["count"]}
        for row in rows
    ]


def gum_error_summary(*, user: Any, params: dict) -> dict:
    """Failed getUserMedia calls by error ``name`` and ``message``; ``total`` = every failed call."""
    rows = (
        _filtered(
            GenericEvent.objects.filter(category=GenericEvent.Category.GET_USER_MEDIA, data__has_key="error"),
            params,
            user=user,
            allowed=APP_SCOPE,
        )
        .values(name=KT("data__error__name"), message=KT("data__error__message"))
        .annotate(count=Count("id"))
        .order_by("-count")
    )
    data = [{"name": row["name"] or "", "message": row["message"] or "", "count": row["count"]} for row in rows]
    return {"data": data, "total": sum(row["count"] for row in data)}
