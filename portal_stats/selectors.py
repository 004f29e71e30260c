"""portal_stats reads: client/stream/quality lookup by URL keys, and the time-series query."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from django.db import connection
from django.db.models import Q

from portal_stats import conf
from portal_stats.errors import (
    ClientNotFound,
    ForeignClient,
    InvalidRange,
    QualityNotFound,
    StreamNotFound,
    UnknownMetric,
)
from portal_stats.models import (
    ALL,
    BROWSERS,
    RESOLUTIONS,
    STEP_DAY,
    STEP_HOUR,
    STEP_MINUTE,
    Client,
    ClientKey,
    StatsBucket,
    Stream,
    StreamQuality,
)


def clients_by_keys(keys: set[str]) -> dict[str, int]:
    """Map client keys to client ids. A key is a client ``uuid`` or a numeric ``id``.

    Rule: the uuid wins. "11111111" is first looked up as a uuid (the spec's examples use
    uuids); only when no client has that uuid and the key is all digits is it taken as an id.
    """
    if not keys:
        return {}
    numeric = {int(key) for key in keys if key.isdigit() and len(key) < 19}
    rows = Client.objects.filter(Q(uuid__in=keys) | Q(id__in=numeric)).values_list("id", "uuid")
    by_uuid = {uuid: client_id for client_id, uuid in rows}
    by_id = {client_id for client_id, _ in rows}
    found: dict[str, int] = {}
    for key in keys:
        if key in by_uuid:
            found[key] = by_uuid[key]
        elif key.isdigit() and len(key) < 19 and int(key) in by_id:
            found[key] = int(key)
    return found


def client_get(*, key: str, only_client: int | None = None) -> Client:
    """The client named by ``key`` (uuid or id). With ``only_client`` (the caller's key is bound to
    that client) any other client, known or not, is refused alike: a key learns nothing of others."""
    client_id = clients_by_keys({key}).get(key)
    if only_client is not None and client_id != only_client:
        raise ForeignClient(f"This key does not grant access to client {key!r}")
    if client_id is None:
        raise ClientNotFound(f"Client {key!r} not found (give its uuid or numeric id)")
    return Client.objects.get(id=client_id)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class KeyGrant:
    """What a presented client key grants: ``request.auth`` after ClientKeyAuthentication."""

    client_id: int
    kind: str


def client_key_find(*, key: str) -> KeyGrant | None:
    """The grant of a client key, or None if it is unknown or revoked (one indexed query)."""
    row = ClientKey.objects.filter(key_hash=key_hash(key)).values_list("client_id", "kind").first()
    return None if row is None else KeyGrant(client_id=row[0], kind=row[1])


def _numeric_id(value: str) -> int | None:
    return int(value) if value.isdigit() and len(value) < 19 else None


def stream_get(*, client: Client, stream_id: str) -> Stream:
    stream = Stream.objects.filter(client=client, id=_numeric_id(stream_id) or -1).first()
    if stream is None:
        raise StreamNotFound(f"Stream {stream_id!r} not found for client {client.uuid!r}")
    return stream


def quality_get(*, stream: Stream, quality_id: str) -> StreamQuality:
    quality = StreamQuality.objects.filter(stream=stream, id=_numeric_id(quality_id) or -1).first()
    if quality is None:
        raise QualityNotFound(f"Stream quality {quality_id!r} not found for stream {stream.id}")
    return quality


# --- Metrics ---------------------------------------------------------------------------------------


def _offload(prefix: str) -> str:
    # Computed from the bucket's summed bytes (never an average of per-minute percentages).
    swarm, total = f"{prefix}down_swarm", f"({prefix}down_cdn + {prefix}down_swarm)"
    return f"CASE WHEN {total} > 0 THEN 100.0 * {swarm} / {total} END"


# Metric name -> SQL expression over one StatsBucket row (a fixed whitelist: safe to format into SQL).
METRICS: dict[str, str] = {
    "full.count": "viewers",
    "webrtc.count": "webrtc_viewers",
    **{f"browser.{browser}.full.count": f"{browser}_viewers" for browser in BROWSERS},
    "full.down_total": "down_cdn + down_swarm",
    "full.down_cdn": "down_cdn",
    "full.down_swarm": "down_swarm",
    "full.up_swarm": "up_swarm",
    "full.offload_percent": _offload(""),
    "webrtc.down_total": "webrtc_down_cdn + webrtc_down_swarm",
    "webrtc.down_cdn": "webrtc_down_cdn",
    "webrtc.down_swarm": "webrtc_down_swarm",
    "webrtc.up_swarm": "webrtc_up_swarm",
    "webrtc.offload_percent": _offload("webrtc_"),
}

_RANGE_RE = re.compile(r"(\d{1,12})-(\d{1,12})\Z")


@dataclass(frozen=True)
class TimeSeries:
    """Values on a regular grid of timestamps; ``None`` where a bucket has no data."""

    values: list[float | None]
    timestamps: range

    @property
    def step(self) -> int:
        return self.timestamps.step

    @property
    def resolution(self) -> str:
        return RESOLUTIONS[self.step]

    def to_json(self) -> str:
        """``[[value, ts], ...]`` as JSON text, built directly from strings.

        A week at minute resolution is 10,081 pairs; building them as 10,081 Python lists (GC-tracked
        containers) for ``json.dumps`` promotes them through the collector's generations and triggers
        periodic full collections that dominate the tail latency. Float text is ``repr`` (what
        ``json`` writes), ``None`` is ``null``.
        """
        return (
            "["
            + ",".join(
                [
                    f"[{'null' if value is None else repr(value)},{ts}]"
                    for value, ts in zip(self.values, self.timestamps, strict=True)
                ]
            )
            + "]"
        )


def parse_range(value: str) -> tuple[int, int]:
    match = _RANGE_RE.match(value)
    if not match:
        raise InvalidRange(
            f"Invalid time range {value!r}: expected <from>-<until> as Unix seconds, e.g. 1431654240-1431654840"
        )
    start, until = int(match[1]), int(match[2])
    if start >= until:
        raise InvalidRange(f"Invalid time range {value!r}: <from> must be before <until>")
    return start, until


def choose_step(start: int, until: int) -> int:
    """Minute data up to MINUTE_MAX_SPAN, hour rollups up to HOUR_MAX_SPAN, day rollups beyond."""
    span = until - start
    if span <= conf.get("MINUTE_MAX_SPAN"):
        return STEP_MINUTE
    if span <= conf.get("HOUR_MAX_SPAN"):
        return STEP_HOUR
    return STEP_DAY


def time_grid(start: int, until: int, step: int) -> range:
    """Graphite/whisper alignment, end inclusive (reference B.4): first = floor(from/step)*step + step,
    last = floor(until/step)*step + step, both included. For 1431654240-1431654840 at 60 s that is the
    11 points 1431654300 … 1431654900: an aligned ``from`` is excluded and the grid ends one step after
    ``until``. A point at T holds the bucket [T, T + step).
    """
    first = start - start % step + step
    last = until - until % step + step
    return range(first, last + 1, step)


def time_series(
    *, metric: str, start: int, until: int, client_id: int, stream_id: int = ALL, quality_id: int = ALL
) -> TimeSeries:
    """``[[value, ts], ...]`` for one metric on the grid of :func:`time_grid`, ``None`` where no bucket."""
    expression = METRICS.get(metric)
    if expression is None:
        raise UnknownMetric(f"Unknown metric {metric!r}. Valid metrics: {', '.join(METRICS)}")
    step = choose_step(start, until)
    grid = time_grid(start, until, step)
    if len(grid) > conf.get("MAX_POINTS"):
        raise InvalidRange(
            f"Time range too long: {len(grid)} points at {step} s resolution, at most {conf.get('MAX_POINTS')}"
        )
    # One text row "ts value,ts value,..." instead of 10,081 row tuples: tuples held alive together
    # drive the garbage collector (and its occasional full passes) on every request.
    aggregate = "string_agg" if connection.vendor == "postgresql" else "group_concat"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {aggregate}(ts || ' ' || CAST({expression} AS DOUBLE PRECISION), ',') "
            f"FROM {StatsBucket._meta.db_table} "
            "WHERE step = %s AND client_id = %s AND stream_id = %s AND quality_id = %s AND ts >= %s AND ts <= %s",
            [step, client_id, stream_id, quality_id, grid.start, grid[-1]],
        )
        text = cursor.fetchone()[0]
    found = {}
    if text:
        for pair in text.split(","):
            ts, _, value = pair.partition(" ")
            found[int(ts)] = float(value)
    return TimeSeries(values=[found.get(ts) for ts in grid], timestamps=grid)


# The statistics page lists at most this many clients (the newest); others by uuid in the URL.
PAGE_CLIENTS = 500


def registry_tree() -> list[dict]:
    """Clients with their streams and qualities, for the statistics page's pickers."""
    clients = Client.objects.order_by("-id")[:PAGE_CLIENTS].prefetch_related("streams__qualities")
    return [
        {
            "uuid": client.uuid,
            "name": client.name,
            "streams": [
                {
                    "id": stream.id,
                    "url": stream.cdn_stream,
                    "qualities": [{"id": quality.id, "bitrate": quality.bitrate} for quality in stream.qualities.all()],
                }
                for stream in client.streams.all()
            ],
        }
        for client in clients
    ]
