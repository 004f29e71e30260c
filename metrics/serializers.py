"""Wire formats: the SDK's request bodies, parsed into typed values, and the dashboard's DRF serializers.

The views parse; services take the typed values. The SDK bodies are checked by hand, not by
DRF fields: the reference's leniency (numbers accepted as ids, strings cut to their column,
null meaning absent) and its error codes are what the SDK was written against. Each parser
checks the keys in the order the reference did, so a body with several faults reports the
same one. The SDK routes answer small literal dicts in the views.
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers
from rest_framework.parsers import JSONParser

from metrics.errors import PeermetricsError
from metrics.models import App, Conference, Connection, GenericEvent, Issue, Organization, Participant, Session, Track
from owt.errors import describe_validation_error

CONNECTION_EVENTS = {
    "addConnection", "removeConnection", "removePeer", "peerDetails", "onicecandidate", "onicegatheringstatechange",
    "onsignalingstatechange", "oniceconnectionstatechange", "onconnectionstatechange", "onnegotiationneeded",
    "onicecandidateerror", "ondatachannel",
}  # fmt: skip
TRACK_EVENTS = {"mute", "unmute", "ended", "overconstrained"}
MAX_DELTA_MS = 7 * 24 * 3600 * 1000


# --- SDK request bodies ----------------------------------------------------------------------


MAX_JSON_DEPTH = 32  # the SDK's deepest body (a stats report) nests 5 levels


class _NotFinite(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf
        raise _NotFinite(text)
    return value


def _refuse_constant(name: str) -> None:
    raise _NotFinite(name)


def _check_tree(value: Any, *, check_text: bool) -> None:
    """Depth and, with ``check_text``, strings: no NUL (PostgreSQL text cannot hold it), no lone surrogate."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
            if check_text:
                _check_strings(item.keys())
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise PeermetricsError("invalid_parameters", f"JSON nests deeper than {MAX_JSON_DEPTH} levels")
        for child in children:
            if isinstance(child, (dict, list)):
                stack.append((child, depth + 1))
            elif check_text and isinstance(child, str):
                _check_strings((child,))


def _check_strings(texts: Any) -> None:
    for text in texts:
        if "\x00" in text:
            raise PeermetricsError("invalid_parameters", "strings must not contain NUL characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PeermetricsError("invalid_parameters", "strings must not contain lone surrogates") from exc


def json_load(raw: bytes) -> Any:
    """JSON that every database stores and every renderer writes back, or a 400.

    Refused: NaN, Infinity and numbers beyond a float's range (not JSON; they poison a
    batch and break the dashboard's renderer), nesting deeper than :data:`MAX_JSON_DEPTH`
    (``RecursionError`` in the encoders), NUL and lone surrogates in strings and keys
    (PostgreSQL refuses both). Only an escape can produce the last two (the decoder
    rejects raw control characters and invalid UTF-8), so strings are only walked when
    the body has one.
    """
    try:
        value = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except _NotFinite as exc:
        raise PeermetricsError("invalid_parameters", "numbers must be finite (no NaN or Infinity)") from exc
    except RecursionError as exc:
        raise PeermetricsError("invalid_parameters", f"JSON nests deeper than {MAX_JSON_DEPTH} levels") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise PeermetricsError("unknown_error", "") from exc
    _check_tree(value, check_text=b"\\u" in raw)
    return value


def parse_body(raw: bytes, *, allow_list: bool = False) -> Any:
    """The SDK's JSON body, sent as text/plain (beacons as text/plain;charset=UTF-8)."""
    if not raw.strip():
        return {}
    body = json_load(raw)
    if isinstance(body, dict) or (allow_list and isinstance(body, list)):
        return body
    raise PeermetricsError("invalid_parameters", "the body must be a JSON object")


def event_time(delta: Any) -> datetime:
    """``utcnow − delta`` (ms): events the SDK held back keep the time they happened."""
    if delta in (None, ""):
        return timezone.now()
    if isinstance(delta, bool) or not isinstance(delta, (int, float)) or not 0 <= delta <= MAX_DELTA_MS:
        raise PeermetricsError("invalid_parameters", "delta must be a number of milliseconds")
    return timezone.now() - timedelta(milliseconds=delta)


def require(body: dict, *keys: str) -> None:
    """``missing_parameters`` for the first key that is absent, null or empty."""
    for key in keys:
        if body.get(key) in (None, ""):
            raise PeermetricsError("missing_parameters", f"{key} is required")


def _text(body: dict, key: str, *, required: bool = False, limit: int = 64) -> str:
    if required:
        require(body, key)
    value = body.get(key)
    if value in (None, ""):
        return ""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise PeermetricsError("invalid_parameters", f"{key} must be a string")
    return str(value)[:limit]


def _json(body: dict, key: str, kind: type, default: Any) -> Any:
    value = body.get(key, default)
    if value is None:
        return default
    if not isinstance(value, kind):
        raise PeermetricsError("invalid_parameters", f"{key} has the wrong type")
    return value


def _meta(meta: Any) -> dict:
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


def connection_uuid(value: Any) -> uuid.UUID:
    """``connectionId``: required; one that is not a UUID names no connection."""
    if not value:
        raise PeermetricsError("missing_parameters", "connectionId is required")
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise PeermetricsError("connection_not_found") from exc


@dataclass(frozen=True)
class InitializeIn:
    """POST /initialize, once ``conferenceId``, ``userId`` and ``apiKey`` are present and the key checked."""

    conference_id: str
    user_id: str
    conference_name: str = ""
    user_name: str = ""

    @classmethod
    def parse(cls, body: dict) -> InitializeIn:
        return cls(
            conference_id=_text(body, "conferenceId"),
            user_id=_text(body, "userId"),
            conference_name=_text(body, "conferenceName"),
            user_name=_text(body, "userName"),
        )


@dataclass(frozen=True)
class SessionIn:
    """POST /sessions: what the SDK knows of the page; absent keys are empty."""

    platform: dict
    constraints: dict
    devices: list
    metadata: dict
    app_version: str
    webrtc_sdk: str

    @classmethod
    def parse(cls, body: dict) -> SessionIn:
        return cls(
            platform=_json(body, "platform", dict, {}),
            constraints=_json(body, "constraints", dict, {}),
            devices=_json(body, "devices", list, []),
            metadata=_meta(body.get("meta")),
            app_version=_text(body, "appVersion", limit=16),
            webrtc_sdk=_text(body, "webrtcSdk", limit=16),
        )


@dataclass(frozen=True)
class SessionUpdateIn:
    """PUT /sessions: only the keys present change (None: not sent; a null that is sent empties the field)."""

    platform: dict | None = None
    constraints: dict | None = None
    devices: list | None = None
    webrtc_sdk: str | None = None
    app_version: str | None = None

    @classmethod
    def parse(cls, body: dict) -> SessionUpdateIn:
        sent: dict[str, Any] = {}
        for key, kind in (("platform", dict), ("constraints", dict), ("devices", list)):
            if key in body:
                sent[key] = _json(body, key, kind, kind())
        for key, field in (("webrtcSdk", "webrtc_sdk"), ("appVersion", "app_version")):
            if key in body:
                sent[field] = _text(body, key, limit=16)
        return cls(**sent)


@dataclass(frozen=True)
class GetUserMediaIn:
    """POST /events/get-user-media: the SDK's report (constraints, tracks, error)."""

    data: dict

    @classmethod
    def parse(cls, body: dict) -> GetUserMediaIn:
        data = body.get("data")
        if not isinstance(data, dict):
            raise PeermetricsError("invalid_parameters", "data must be an object")
        return cls(data=data)


@dataclass(frozen=True)
class BrowserEventIn:
    """POST /events/browser: the event's name and the whole rest of the body (``devices``, ``focus`` …)."""

    name: str
    data: dict

    @classmethod
    def parse(cls, body: dict) -> BrowserEventIn:
        return cls(
            name=_text(body, "eventName", required=True, limit=32),
            data={key: value for key, value in body.items() if key not in ("token", "eventName")},
        )


@dataclass(frozen=True)
class AddConnectionIn:
    """``addConnection``: ``peer_id`` is the app-level id; ``data`` the SDK's own values, kept in the event."""

    peer_id: str
    peer_name: str
    is_sfu: bool
    connected: bool
    data: dict


@dataclass(frozen=True)
class RemovePeerIn:
    """``removePeer``: the app-level peer id (or the peer's UUID), as sent."""

    peer_id: str


@dataclass(frozen=True)
class ConnectionEventIn:
    """Any other connection event; ``data`` is checked by the state machine, once the connection is found."""

    name: str
    connection_id: uuid.UUID
    data: Any


ConnectionEvent = AddConnectionIn | RemovePeerIn | ConnectionEventIn


def connection_event(body: dict) -> ConnectionEvent:
    """POST /connection (and each item of /connection/batch)."""
    name = _text(body, "eventName", required=True, limit=32)
    if name not in CONNECTION_EVENTS:
        raise PeermetricsError("invalid_parameters", f"unknown connection event {name}")
    peer_id = _text(body, "peerId", required=True)
    if name == "addConnection":
        return AddConnectionIn(
            peer_id=peer_id,
            peer_name=_text(body, "peerName"),
            is_sfu=bool(body.get("isSfu")),
            connected=body.get("connectionState") == "connected",
            data={key: body.get(key) for key in ("peerId", "peerName", "connectionState", "isSfu")},
        )
    if name == "removePeer":
        return RemovePeerIn(peer_id=str(body["peerId"]))
    return ConnectionEventIn(name=name, connection_id=connection_uuid(body.get("connectionId")), data=body.get("data"))


@dataclass(frozen=True)
class ConnectionBatchIn:
    """POST /connection/batch: the reference's ``{token, delta, data:[…]}`` or the SDK's bare array.

    The SDK's batch mode drops the token (an array property JSON.stringify ignores): the
    first item carrying one is used, else the request is refused as unauthenticated.
    """

    token: Any
    data: Any
    delta: Any

    @classmethod
    def parse(cls, body: dict | list) -> ConnectionBatchIn:
        if isinstance(body, list):
            token = next((item.get("token") for item in body if isinstance(item, dict) and item.get("token")), None)
            return cls(token=token, data=body, delta=None)
        return cls(token=body.get("token"), data=body.get("data"), delta=body.get("delta"))

    def events(self) -> list[tuple[ConnectionEvent, datetime]]:
        """Each event and its time, parsed only once the token is checked (the reference's order).

        One bad item refuses the whole request, naming the item (``data[i]: …``): the batch
        is stored all or nothing, so an SDK retry never duplicates the good ones.
        """
        if not isinstance(self.data, list):
            raise PeermetricsError("invalid_parameters", "data must be a list of events")
        events = []
        for index, item in enumerate(self.data):
            with batch_item(index):
                if not isinstance(item, dict):
                    raise PeermetricsError("invalid_parameters", "an event must be an object")
                events.append(
                    (connection_event(item), event_time(item.get("delta", item.get("timeDelta", self.delta))))
                )
        return events


@contextmanager
def batch_item(index: int) -> Iterator[None]:
    """A failure inside names the batch item it came from."""
    try:
        yield
    except PeermetricsError as exc:
        raise PeermetricsError(exc.code, f"data[{index}]: {exc.detail or exc.message}") from exc


@dataclass(frozen=True)
class TrackIn:
    """POST /tracks (``ontrack``): a remote track of the connection ``connectionId`` (parsed first, on its own)."""

    track_id: str
    data: dict
    event: str = "ontrack"

    @classmethod
    def parse(cls, body: dict) -> TrackIn:
        return cls(
            track_id=_text(body, "trackId", required=True),
            data=_json(body, "data", dict, {}),
            event=_text(body, "event", limit=32) or "ontrack",
        )


@dataclass(frozen=True)
class TrackUpdateIn:
    """PUT /tracks: ``mute``, ``unmute``, ``ended`` or ``overconstrained`` of a track of the session."""

    event: str
    track_id: str
    connection_id: uuid.UUID | None
    data: Any

    @classmethod
    def parse(cls, body: dict) -> TrackUpdateIn:
        event = _text(body, "event", required=True, limit=32)
        if event not in TRACK_EVENTS:
            raise PeermetricsError("invalid_parameters", f"unknown track event {event}")
        return cls(
            event=event,
            track_id=_text(body, "trackId", required=True),
            connection_id=connection_uuid(body["connectionId"]) if body.get("connectionId") else None,
            data=body.get("data"),
        )


# --- dashboard -------------------------------------------------------------------------------


class JsonBodyParser(JSONParser):
    """The dashboard's JSON bodies, through the same loader as the SDK's (:func:`json_load`)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        return json_load(stream.read())


def query_params(serializer: type[serializers.Serializer], params: Any) -> dict:
    """Checked query parameters, or ``invalid_parameters`` saying which one is wrong."""
    query = serializer(data=params)
    if not query.is_valid():
        raise PeermetricsError("invalid_parameters", describe_validation_error(query.errors))
    return query.validated_data


# Far beyond any real list, far below the 64-bit column and SQLite integer limits.
MAX_OFFSET = 2**31 - 1


class PageQuery(serializers.Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    offset = serializers.IntegerField(min_value=0, max_value=MAX_OFFSET, default=0)


class ListQuery(PageQuery):
    """``?appId|conferenceId|participantId`` (the selector says which apply), dates and paging."""

    appId = serializers.UUIDField(required=False)  # noqa: N815 - the wire name
    conferenceId = serializers.UUIDField(required=False)  # noqa: N815
    participantId = serializers.UUIDField(required=False)  # noqa: N815
    created_at_gt = serializers.DateTimeField(required=False)
    created_at_gte = serializers.DateTimeField(required=False)
    created_at_lt = serializers.DateTimeField(required=False)
    created_at_lte = serializers.DateTimeField(required=False)


class ConferenceListQuery(ListQuery):
    issue_code = serializers.CharField(max_length=32, required=False)


class EventListQuery(PageQuery):
    type = serializers.CharField(max_length=33, required=False)  # an event name (32) or "-" and one


class SearchQuery(serializers.Serializer):
    query = serializers.CharField(max_length=64)


class OrganizationOut(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "created_at"]


class OrganizationIn(serializers.Serializer):
    name = serializers.CharField(max_length=64)


class AppOut(serializers.ModelSerializer):
    # The caller is a member of the app's organization (selectors guarantee it), so the key is theirs.
    class Meta:
        model = App
        fields = ["id", "organization", "name", "api_key", "domain", "interval", "recording", "created_at"]


class AppIn(serializers.Serializer):
    organization = serializers.UUIDField()
    name = serializers.CharField(max_length=64)
    domain = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")
    interval = serializers.IntegerField(min_value=1000, max_value=600000, required=False, default=10000)
    recording = serializers.BooleanField(required=False, default=True)


class AppUpdateIn(serializers.Serializer):
    name = serializers.CharField(max_length=64, required=False)
    domain = serializers.CharField(max_length=256, required=False, allow_blank=True)
    interval = serializers.IntegerField(min_value=1000, max_value=600000, required=False)
    recording = serializers.BooleanField(required=False)


class ConferenceOut(serializers.ModelSerializer):
    participants_count = serializers.IntegerField(read_only=True)
    has_errors = serializers.BooleanField(read_only=True)
    has_warnings = serializers.BooleanField(read_only=True)

    class Meta:
        model = Conference
        fields = [
            "id", "app", "conference_id", "conference_name", "start_time", "call_start", "end_time", "ongoing",
            "duration", "created_at", "participants_count", "has_errors", "has_warnings",
        ]  # fmt: skip


class ParticipantOut(serializers.ModelSerializer):
    class Meta:
        model = Participant
        fields = ["id", "app", "participant_id", "participant_name", "is_sfu", "created_at"]


class IssueOut(serializers.ModelSerializer):
    type = serializers.CharField(source="get_type_display")
    title = serializers.CharField(read_only=True)
    explanation = serializers.CharField(read_only=True)

    class Meta:
        model = Issue
        fields = [
            "id",
            "conference",
            "session",
            "participant",
            "connection",
            "track",
            "type",
            "code",
            "title",
            "explanation",
            "data",
            "created_at",
        ]


class ConferenceDetailOut(serializers.ModelSerializer):
    participants = ParticipantOut(many=True, read_only=True)
    issues = IssueOut(many=True, read_only=True)

    class Meta:
        model = Conference
        fields = [
            "id", "app", "conference_id", "conference_name", "start_time", "call_start", "end_time", "ongoing",
            "duration", "created_at", "participants", "issues",
        ]  # fmt: skip


class SessionOut(serializers.ModelSerializer):
    issues = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Session
        fields = [
            "id", "app", "conference", "participant", "platform", "devices", "metadata", "geo_ip", "app_version",
            "webrtc_sdk", "call_start", "end_time", "duration", "created_at", "issues",
        ]  # fmt: skip


class ConnectionOut(serializers.ModelSerializer):
    type = serializers.CharField(source="get_type_display")

    class Meta:
        model = Connection
        fields = [
            "id", "conference", "session", "participant", "peer", "type", "state", "connection_info", "start_time",
            "end_time", "duration", "created_at",
        ]  # fmt: skip


class TrackOut(serializers.ModelSerializer):
    kind = serializers.CharField(source="get_kind_display")
    direction = serializers.CharField(source="get_direction_display")

    class Meta:
        model = Track
        fields = ["id", "session", "connection", "kind", "direction", "track_id", "label", "track_info", "created_at"]


class EventOut(serializers.ModelSerializer):
    category = serializers.CharField(source="get_category_display")

    class Meta:
        model = GenericEvent
        fields = [
            "id",
            "conference",
            "session",
            "participant",
            "peer",
            "connection",
            "track",
            "category",
            "type",
            "data",
            "created_at",
        ]
