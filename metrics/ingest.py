"""The /stats hot path: accept fast, write in bulk, lose nothing.

Each SDK request is checked (token, connection of this session, not ended) against small
in-process caches, then handed to a per-event-loop :class:`StatsWriter`. The writer runs
group commit: while one batch is being written, new requests queue up, and the next batch
takes all of them in one multi-row INSERT and one commit. A request is answered only after
its row is committed (on a write failure it gets a 500 and the SDK retries), so nothing the
server acknowledged can be lost, and a single client sees no added latency.

One row per POST holds the whole parsed report (the reference wrote 1 + N rows and
rewrote the Connection every time). Connection type, ``established`` and the
``tcp_used``/``turn_used`` issues are derived in the same batch, once per connection.

One tenant cannot fail another's requests: bodies that no database can store (NaN, NUL …)
are refused with a 400 before they are queued (:func:`metrics.serializers.json_load`), and a
batch that fails anyway is retried row by row, so only the row at fault fails (a 400 when
the database refused its data, else a 500 the SDK retries).

A reset api key revokes the app's tokens here too: the app's key generation is cached for
:data:`APP_TTL_SECONDS` (at once in the process that reset it).

``METRICS_STATS_INGEST = "direct"`` switches to the naive path (one INSERT and commit per
request, connection and session read from the database every time); the benchmark uses it
as its baseline.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
import weakref
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import DataError, IntegrityError, connections, transaction

from metrics import tokens
from metrics.errors import PeermetricsError
from metrics.models import CANDIDATE_TYPES, ISSUES, App, Connection, GenericEvent, Issue, Session

CONNECTION_TTL_SECONDS = 2.0  # how long another process's "connection ended" may go unseen
APP_TTL_SECONDS = 2.0  # how long another process's key reset may go unseen
SESSION_TTL_SECONDS = 300.0
CACHE_LIMIT = 20000


@dataclass
class SessionMeta:
    id: uuid.UUID
    app_id: uuid.UUID
    conference_id: uuid.UUID
    participant_id: uuid.UUID


@dataclass
class ConnectionMeta:
    id: uuid.UUID
    session_id: uuid.UUID
    conference_id: uuid.UUID
    peer_id: uuid.UUID
    ended: bool
    type: str
    established: bool
    issues: set[str] = field(default_factory=set)


_sessions: dict[str, tuple[float, SessionMeta]] = {}
_connections: dict[str, tuple[float, ConnectionMeta]] = {}
_app_generations: dict[str, tuple[float, int]] = {}


def _cache_put(cache: dict, key: str, ttl: float, value: Any) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()  # cheap bound; entries are reloaded on demand
    cache[key] = (time.monotonic() + ttl, value)


def _cache_get(cache: dict, key: str) -> Any:
    entry = cache.get(key)
    if entry is None or entry[0] < time.monotonic():
        return None
    return entry[1]


def forget_connection(connection_id: Any) -> None:
    """Called when a connection ends so this process refuses its stats at once."""
    _connections.pop(str(connection_id), None)


def forget_app(app_id: Any) -> None:
    """Called when an app's key is reset so this process refuses its old tokens at once."""
    _app_generations.pop(str(app_id), None)


def app_generation_load(app_id: Any) -> int | None:
    return App.objects.filter(pk=app_id).values_list("key_generation", flat=True).first()


def session_meta_load(session_id: Any) -> SessionMeta:
    row = Session.objects.filter(pk=session_id).values("id", "app_id", "conference_id", "participant_id").first()
    if row is None:
        raise PeermetricsError("invalid_token")
    return SessionMeta(**row)


def connection_meta_load(connection_id: Any) -> ConnectionMeta | None:
    try:
        connection_uuid = uuid.UUID(str(connection_id))
    except ValueError:
        return None
    row = (
        Connection.objects.filter(pk=connection_uuid)
        .values("id", "session_id", "conference_id", "peer_id", "end_time", "type", "connection_info")
        .first()
    )
    if row is None:
        return None
    existing = set(
        Issue.objects.filter(connection_id=connection_uuid, code__in=("tcp_used", "turn_used")).values_list(
            "code", flat=True
        )
    )
    return ConnectionMeta(
        id=row["id"],
        session_id=row["session_id"],
        conference_id=row["conference_id"],
        peer_id=row["peer_id"],
        ended=row["end_time"] is not None,
        type=row["type"],
        established=bool((row["connection_info"] or {}).get("established")),
        issues=existing,
    )


async def _cached(cache: dict, key: str, ttl: float, loader: Any) -> Any:
    value = _cache_get(cache, key)
    if value is None:
        value = await asyncio.get_running_loop().run_in_executor(_EXECUTOR, _in_db_thread(loader), key)
        if value is not None:
            _cache_put(cache, key, ttl, value)
    return value


def _check_connection(session: SessionMeta, meta: ConnectionMeta | None) -> ConnectionMeta:
    # A connection of another session (or tenant) is "not found", never written to.
    if meta is None or meta.session_id != session.id:
        raise PeermetricsError("connection_not_found")
    if meta.ended:
        raise PeermetricsError("connection_ended")
    return meta


@dataclass
class PendingStats:
    session: SessionMeta
    connection: ConnectionMeta
    data: dict
    created_at: datetime


def pending_stats(*, session: SessionMeta, connection: ConnectionMeta, body: dict, now: datetime) -> PendingStats:
    data = body.get("data")
    if not isinstance(data, dict):
        raise PeermetricsError("invalid_parameters", "data must be an object")
    time_taken = body.get("timeTaken")
    if isinstance(time_taken, (int, float)) and not isinstance(time_taken, bool):
        data = {**data, "timeTaken": time_taken}
    return PendingStats(session=session, connection=connection, data=data, created_at=now)


def stats_established(data: dict) -> bool:
    """The reference's definition: a working candidate pair or any media flowing."""
    pair = data.get("connection") or {}
    if pair.get("state") == "succeeded" and (
        pair.get("nominated") or pair.get("selected") or pair.get("bytesSent") or pair.get("currentRoundTripTime")
    ):
        return True
    if pair.get("bytesSent") or pair.get("bytesReceived"):
        return True
    for kind in ("audio", "video"):
        for direction in ("inbound", "outbound"):
            for report in (data.get(kind) or {}).get(direction) or []:
                if isinstance(report, dict) and any(
                    report.get(key) for key in ("bytesReceived", "bytesSent", "packetsReceived", "packetsSent")
                ):
                    return True
    return False


@dataclass
class _ConnectionChanges:
    """What a batch changes on its connections; applied to the cached facts only once committed."""

    types: dict[uuid.UUID, str] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)
    established: set[uuid.UUID] = field(default_factory=set)

    def commit(self, metas: dict[uuid.UUID, ConnectionMeta]) -> None:
        for connection_id, candidate_type in self.types.items():
            metas[connection_id].type = candidate_type
        for issue in self.issues:
            metas[issue.connection_id].issues.add(issue.code)
        for connection_id in self.established:
            metas[connection_id].established = True


def _connection_changes(items: Iterable[PendingStats]) -> _ConnectionChanges:
    """Type, new ``tcp_used``/``turn_used`` issues and newly established connections of a batch."""
    changes = _ConnectionChanges()
    raised: set[tuple[uuid.UUID, str]] = set()
    for item in items:
        meta = item.connection
        local = ((item.data.get("connection") or {}).get("local")) or {}
        candidate_type = CANDIDATE_TYPES.get(local.get("candidateType"), "")
        if candidate_type and candidate_type != changes.types.get(meta.id, meta.type):
            changes.types[meta.id] = candidate_type
        for code, hit in (("tcp_used", local.get("protocol") == "tcp"), ("turn_used", candidate_type == "r")):
            if hit and code not in meta.issues and (meta.id, code) not in raised:
                raised.add((meta.id, code))
                changes.issues.append(
                    Issue(
                        app_id=item.session.app_id,
                        conference_id=meta.conference_id,
                        session_id=meta.session_id,
                        participant_id=item.session.participant_id,
                        connection_id=meta.id,
                        type=ISSUES[code][0],
                        code=code,
                        data={"candidate": local},
                        created_at=item.created_at,
                    )
                )
        if not meta.established and meta.id not in changes.established and stats_established(item.data):
            changes.established.add(meta.id)
    return changes


def stats_store(items: list[PendingStats]) -> None:
    """Write a batch: one multi-row INSERT of stats rows plus the per-connection facts."""
    events = [
        GenericEvent(
            app_id=item.session.app_id,
            conference_id=item.session.conference_id,
            participant_id=item.session.participant_id,
            session_id=item.session.id,
            peer_id=item.connection.peer_id,
            connection_id=item.connection.id,
            category=GenericEvent.Category.STATS,
            type="stats",
            data=item.data,
            created_at=item.created_at,
        )
        for item in items
    ]
    changes = _connection_changes(items)
    with transaction.atomic():
        GenericEvent.objects.bulk_create(events, batch_size=500)
        for connection_id, candidate_type in changes.types.items():
            Connection.objects.filter(pk=connection_id).update(type=candidate_type)
        if changes.issues:
            Issue.objects.bulk_create(changes.issues, ignore_conflicts=True)
        for connection in Connection.objects.select_for_update().filter(pk__in=changes.established):
            connection.connection_info["established"] = True
            connection.save(update_fields=["connection_info"])
    changes.commit({item.connection.id: item.connection for item in items})


def stats_store_one(item: PendingStats) -> None:
    """One request's row; data the database refuses is the client's fault (400), not a 500 to retry."""
    try:
        stats_store([item])
    except (DataError, IntegrityError, ValueError) as exc:
        raise PeermetricsError("invalid_parameters", "the sample could not be stored") from exc


def stats_store_isolated(items: list[PendingStats]) -> list[Exception | None]:
    """Each item's outcome: the whole batch at once, or, when that fails, row by row.

    The fallback costs nothing while batches succeed and keeps one bad row (or one
    tenant's) from failing the other requests that happened to share its batch.
    """
    if len(items) > 1:
        try:
            stats_store(items)
        except Exception:  # noqa: BLE001 - whatever failed, the rows are retried one by one
            pass
        else:
            return [None] * len(items)
    outcomes: list[Exception | None] = []
    for item in items:
        try:
            stats_store_one(item)
        except Exception as exc:  # noqa: BLE001 - reported to this item's request only
            outcomes.append(exc)
        else:
            outcomes.append(None)
    return outcomes


def stats_ingest_direct(*, claims: dict[str, Any], body: dict, now: datetime) -> None:
    """The naive baseline: read session, app and connection, insert one row, commit — per request."""
    session = session_meta_load(claims["s"])
    tokens.verify_generation(claims, app_generation_load(session.app_id))
    meta = _check_connection(session, connection_meta_load(body.get("connectionId")))
    stats_store_one(pending_stats(session=session, connection=meta, body=body, now=now))


# --- group commit ------------------------------------------------------------------------------

# One thread owns the writer's database connection: batches are serial, and a batch of N
# requests costs one round of INSERT + COMMIT instead of N.
_EXECUTOR = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics-stats")
MAX_BATCH = 1000


def _in_db_thread(function: Any) -> Any:
    def run(*args: Any) -> Any:
        try:
            return function(*args)
        finally:
            # Nothing pins the connection open between batches (CONN_MAX_AGE is honoured).
            for connection in connections.all(initialized_only=True):
                connection.close_if_unusable_or_obsolete()

    return run


@dataclass
class _LoopState:
    pending: list[tuple[PendingStats, asyncio.Future]] = field(default_factory=list)
    flushing: bool = False


class StatsWriter:
    def __init__(self) -> None:
        self._states: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = weakref.WeakKeyDictionary()

    async def submit(self, item: PendingStats) -> None:
        loop = asyncio.get_running_loop()
        state = self._states.setdefault(loop, _LoopState())
        future = loop.create_future()
        state.pending.append((item, future))
        if not state.flushing:
            state.flushing = True
            # A fresh context: the drain outlives the request that happened to start it.
            loop.create_task(self._drain(loop, state), context=contextvars.Context())
        await future

    async def _drain(self, loop: asyncio.AbstractEventLoop, state: _LoopState) -> None:
        try:
            while state.pending:
                batch, state.pending = state.pending[:MAX_BATCH], state.pending[MAX_BATCH:]
                try:
                    outcomes = await loop.run_in_executor(
                        _EXECUTOR, _in_db_thread(stats_store_isolated), [item for item, _ in batch]
                    )
                except Exception as exc:  # noqa: BLE001 - every waiter gets the failure, the SDK retries
                    outcomes = [exc] * len(batch)
                for (_, future), outcome in zip(batch, outcomes, strict=True):
                    if future.done():
                        continue
                    if outcome is None:
                        future.set_result(None)
                    else:
                        future.set_exception(outcome)
        finally:
            state.flushing = False


WRITER = StatsWriter()


async def stats_accept(*, claims: dict[str, Any], body: dict, now: datetime) -> None:
    """Validate one /stats request (its session token's ``claims``) and return once its row is committed."""
    if getattr(settings, "METRICS_STATS_INGEST", "bulk") == "direct":
        await asyncio.get_running_loop().run_in_executor(
            None, _in_db_thread(lambda: stats_ingest_direct(claims=claims, body=body, now=now))
        )
        return
    session = await _cached(_sessions, str(claims["s"]), SESSION_TTL_SECONDS, session_meta_load)
    generation = await _cached(_app_generations, str(session.app_id), APP_TTL_SECONDS, app_generation_load)
    tokens.verify_generation(claims, generation)
    meta = _check_connection(
        session,
        await _cached(_connections, str(body.get("connectionId") or ""), CONNECTION_TTL_SECONDS, connection_meta_load),
    )
    await WRITER.submit(pending_stats(session=session, connection=meta, body=body, now=now))
