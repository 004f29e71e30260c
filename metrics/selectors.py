"""Reads for the peermetrics API. Every dashboard query starts from the caller's organizations."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any

from django.db.models import Count, Exists, Max, OuterRef, Q, QuerySet

from metrics import tokens
from metrics.errors import PeermetricsError
from metrics.models import App, Conference, Connection, GenericEvent, Issue, Organization, Participant, Session

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
            participants_count=Count("sessions__participant", distinct=True),
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
