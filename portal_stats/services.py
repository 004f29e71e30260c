"""portal_stats writes: get-or-insert registration, report ingestion, aggregation, rollups, retention."""

from __future__ import annotations

import io
import re
import secrets
import time
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import URLValidator
from django.db import IntegrityError, connection, models, transaction

from portal_stats import conf, selectors
from portal_stats.errors import ForeignClient, InvalidInput, UnknownParent
from portal_stats.models import (
    ALL,
    BROWSERS,
    STEP_DAY,
    STEP_HOUR,
    STEP_MINUTE,
    AggregationCursor,
    Client,
    ClientKey,
    ReportBatch,
    StatsBucket,
    Stream,
    StreamQuality,
    ViewerReport,
)

# --- Registration (tracker-api) and client keys ---------------------------------------------------

# A key says what it is, so a read key pasted into a player is refused by name (and secret
# scanners can spot leaked keys).
KEY_PREFIXES = {ClientKey.WRITE: "vbw_", ClientKey.READ: "vbr_"}


def _get_or_insert(model: type[models.Model], **key: Any) -> tuple[Any, bool]:
    """Insert first, fall back to the row a concurrent writer won with (the unique constraint decides).

    Never check-then-insert: two trackers registering the same stream at once both get its one id.
    The savepoint keeps an outer transaction usable after the IntegrityError.
    """
    try:
        with transaction.atomic():
            return model.objects.create(**key), True
    except IntegrityError:
        lookup = {name: value for name, value in key.items() if name != "name"}
        return model.objects.get(**lookup), False


def client_get_or_insert(*, uuid: str, name: str) -> tuple[Client, bool]:
    """The client with this uuid, created with ``name`` if new (an existing name is left as is)."""
    return _get_or_insert(Client, uuid=uuid, name=name)


def client_register(*, uuid: str, name: str) -> tuple[Client, dict[str, str]]:
    """:func:`client_get_or_insert`, and a new client's first write and read keys ({} if it existed)."""
    with transaction.atomic():
        client, created = client_get_or_insert(uuid=uuid, name=name)
        if not created:
            return client, {}
        return client, {kind: client_key_issue(client=client, kind=kind) for kind in (ClientKey.WRITE, ClientKey.READ)}


def client_key_issue(*, client: Client, kind: str, revoke_others: bool = False) -> str:
    """A new ``kind`` key for the client; returns the plain key, which is not stored and so shown once.

    The client's other keys of that kind stay valid (a rolling rotation) unless ``revoke_others``.
    """
    key = f"{KEY_PREFIXES[kind]}{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        if revoke_others:
            ClientKey.objects.filter(client=client, kind=kind).delete()
        ClientKey.objects.create(client=client, kind=kind, key_hash=selectors.key_hash(key), hint=key[:12])
    return key


def _check_owner(owner_id: int, only_client: int | None, what: str) -> None:
    if only_client is not None and owner_id != only_client:
        raise ForeignClient(f"{what} belongs to another client than this key's")


def stream_get_or_insert(*, client_id: int, cdn_stream: str, only_client: int | None = None) -> tuple[Stream, bool]:
    """``only_client``: the caller's key is bound to that client (None: an operator, or open mode)."""
    _check_owner(client_id, only_client, f"client: client {client_id}")
    if not Client.objects.filter(id=client_id).exists():
        raise UnknownParent(f"client: unknown client id {client_id}")
    return _get_or_insert(Stream, client_id=client_id, cdn_stream=cdn_stream)


def quality_get_or_insert(
    *, stream_id: int, bitrate: int, only_client: int | None = None
) -> tuple[StreamQuality, bool]:
    owner_id = Stream.objects.filter(id=stream_id).values_list("client_id", flat=True).first()
    if owner_id is None:
        raise UnknownParent(f"stream: unknown stream id {stream_id}")
    _check_owner(owner_id, only_client, f"stream: stream {stream_id}")
    return _get_or_insert(StreamQuality, stream_id=stream_id, bitrate=bitrate)


# --- Viewer report ingestion (hot path) ----------------------------------------------------------

SESSION_RE = re.compile(r"[A-Za-z0-9._:\-]{1,64}\Z")
MAX_BYTES = 1 << 40  # per report interval; far above any real segment traffic
MAX_MS = 24 * 3600 * 1000
MAX_BITRATE = 1_000_000  # kbps
MAX_ID = 2**63 - 1  # ids are 64-bit: anything larger cannot name a row (and SQLite cannot bind it)
_url_validator = URLValidator(schemes=["http", "https"])

# User-agent tokens in the order that disambiguates (Edge and Opera also say "Chrome", Chrome says "Safari").
_UA_RULES = (
    ("opr/", "opera"),
    ("opera", "opera"),
    ("edg", "edge"),
    ("firefox", "firefox"),
    ("fxios", "firefox"),
    ("chrome", "chrome"),
    ("crios", "chrome"),
    ("chromium", "chrome"),
    ("trident", "ie"),
    ("msie", "ie"),
    ("safari", "safari"),
)
_BROWSER_NAMES = {**{browser: browser for browser in BROWSERS}, "internet explorer": "ie", "msie": "ie"}


def browser_code(value: str) -> str:
    """A browser name ("chrome", "IE") or a full user agent → one of :data:`BROWSERS`."""
    lowered = value.strip().lower()
    if lowered in _BROWSER_NAMES:
        return _BROWSER_NAMES[lowered]
    for token, code in _UA_RULES:
        if token in lowered:
            return code
    return "other"


def _int_field(report: dict, name: str, index: int, *, default: int | None, maximum: int) -> int | None:
    value = report.get(name, default)
    if value is default:
        return value
    if type(value) is not int or not 0 <= value <= maximum:
        raise InvalidInput(f"reports[{index}].{name}: expected an integer between 0 and {maximum}")
    return value


def _parse_report(index: int, report: Any, now: int, oldest: int) -> list:
    """Validate one report into a row list; stream and quality are resolved later, per batch."""
    if not isinstance(report, dict):
        raise InvalidInput(f"reports[{index}]: expected an object")
    session = report.get("session")
    if type(session) is not str or not SESSION_RE.match(session):
        raise InvalidInput(f"reports[{index}].session: required, 1-64 characters of A-Z a-z 0-9 . _ : -")
    browser = report.get("browser", "other")
    if type(browser) is not str or len(browser) > 512:
        raise InvalidInput(f"reports[{index}].browser: expected a browser name or user agent string")
    webrtc = report.get("webrtc", False)
    if type(webrtc) is not bool:
        raise InvalidInput(f"reports[{index}].webrtc: expected true or false")
    ts = report.get("ts")
    if ts is None:
        ts = now
    elif type(ts) in (int, float) and 0 < ts < MAX_ID:  # also refuses 1e400, which JSON reads as inf
        ts = min(now, max(oldest, int(ts)))
    else:
        raise InvalidInput(f"reports[{index}].ts: expected Unix seconds")
    down_cdn = _int_field(report, "down_cdn", index, default=0, maximum=MAX_BYTES)
    down_swarm = _int_field(report, "down_swarm", index, default=0, maximum=MAX_BYTES)
    up_swarm = _int_field(report, "up_swarm", index, default=0, maximum=MAX_BYTES)
    if not webrtc and (down_swarm or up_swarm):
        raise InvalidInput(f"reports[{index}]: a viewer without WebRTC cannot have swarm traffic")
    rebuffer_ms = _int_field(report, "rebuffer_ms", index, default=None, maximum=MAX_MS)
    startup_ms = _int_field(report, "startup_ms", index, default=None, maximum=MAX_MS)
    # [ts, client, stream, quality, session, browser, webrtc, down_cdn, down_swarm, up_swarm, rebuffer, startup]
    return [
        ts,
        None,
        None,
        ALL,
        session,
        browser_code(browser),
        webrtc,
        down_cdn,
        down_swarm,
        up_swarm,
        rebuffer_ms,
        startup_ms,
    ]


def _stream_key(index: int, report: dict) -> tuple[str, Any]:
    """("id", stream id) or ("url", (client key, cdn url)) — how this report names its stream."""
    stream = report.get("stream")
    if stream is not None:
        if type(stream) is not int or not 0 < stream <= MAX_ID:
            raise InvalidInput(f"reports[{index}].stream: expected a stream id")
        return "id", stream
    url = report.get("cdn_stream")
    client = report.get("client")
    if type(url) is not str or client is None:
        raise InvalidInput(f"reports[{index}]: give either 'stream' (id) or 'client' and 'cdn_stream'")
    return "url", (str(client), url)


def _quality_key(index: int, report: dict) -> tuple[str, int] | None:
    quality = report.get("quality")
    if quality is not None:
        if type(quality) is not int or not 0 < quality <= MAX_ID:
            raise InvalidInput(f"reports[{index}].quality: expected a stream quality id")
        return "id", quality
    bitrate = report.get("bitrate")
    if bitrate is None:
        return None
    if type(bitrate) is not int or not 0 < bitrate <= MAX_BITRATE:
        raise InvalidInput(f"reports[{index}].bitrate: expected an integer bitrate in kbps")
    return "bitrate", bitrate


def _resolve_streams(
    url_keys: set[tuple[str, str]], stream_ids: set[int], clients: dict[str, int]
) -> tuple[dict, dict]:
    """Stream ids named directly must exist; streams named by URL are get-or-inserted under their client.

    Returns ({stream id: client id}, {(client key, url): (stream id, client id)}).
    """
    by_id = dict(Stream.objects.filter(id__in=stream_ids).values_list("id", "client_id")) if stream_ids else {}
    missing = stream_ids - by_id.keys()
    if missing:
        raise UnknownParent(f"stream: unknown stream id {min(missing)}")
    by_url: dict[tuple[str, str], tuple[int, int]] = {}
    if url_keys:
        max_length = Stream._meta.get_field("cdn_stream").max_length
        for _, url in url_keys:
            try:
                _url_validator(url)
            except DjangoValidationError:
                raise InvalidInput(f"cdn_stream: not an http(s) URL: {url[:200]!r}") from None
            if len(url) > max_length:
                raise InvalidInput(f"cdn_stream: URL longer than {max_length} characters")
        pairs = {(clients[key], url) for key, url in url_keys}
        Stream.objects.bulk_create([Stream(client_id=c, cdn_stream=u) for c, u in pairs], ignore_conflicts=True)
        found = {
            (client_id, url): stream_id
            for stream_id, client_id, url in Stream.objects.filter(
                client_id__in={c for c, _ in pairs}, cdn_stream__in={u for _, u in pairs}
            ).values_list("id", "client_id", "cdn_stream")
        }
        for key, url in url_keys:
            by_url[(key, url)] = (found[(clients[key], url)], clients[key])
    return by_id, by_url


def _resolve_qualities(quality_ids: set[int], bitrate_keys: set[tuple[int, int]]) -> tuple[dict, dict]:
    """Quality ids must exist; (stream, bitrate) pairs are get-or-inserted (players switch renditions)."""
    by_id = dict(StreamQuality.objects.filter(id__in=quality_ids).values_list("id", "stream_id")) if quality_ids else {}
    missing = quality_ids - by_id.keys()
    if missing:
        raise UnknownParent(f"quality: unknown stream quality id {min(missing)}")
    by_bitrate: dict[tuple[int, int], int] = {}
    if bitrate_keys:
        StreamQuality.objects.bulk_create(
            [StreamQuality(stream_id=s, bitrate=b) for s, b in bitrate_keys], ignore_conflicts=True
        )
        for quality_id, stream_id, bitrate in StreamQuality.objects.filter(
            stream_id__in={s for s, _ in bitrate_keys}, bitrate__in={b for _, b in bitrate_keys}
        ).values_list("id", "stream_id", "bitrate"):
            by_bitrate[(stream_id, bitrate)] = quality_id
    return by_id, by_bitrate


def reports_ingest(
    *, reports: Any, batch: Any = None, now: float | None = None, only_client: int | None = None
) -> int | None:
    """Validate and store a batch of viewer reports in one multi-row write; returns how many.

    All or nothing: the first invalid report (named by index) rejects the batch, so a player
    can retry it whole. Per report the work is a few type checks; names are resolved per batch.
    With a ``batch`` key, a batch already accepted under that key stores nothing and returns
    ``None`` (a retry after a lost response); the key's primary key decides, even for two
    concurrent retries. With ``only_client`` (the caller's write key is bound to that client)
    every report must be for that client: one report for another rejects the batch (403).
    """
    if batch is not None and (type(batch) is not str or not SESSION_RE.match(batch)):
        raise InvalidInput("batch: 1-64 characters of A-Z a-z 0-9 . _ : -")
    if not isinstance(reports, list) or not reports:
        raise InvalidInput("reports: expected a non-empty list of reports")
    if len(reports) > conf.get("MAX_BATCH"):
        raise InvalidInput(f"reports: at most {conf.get('MAX_BATCH')} reports per request")
    now_s = int(time.time() if now is None else now)
    oldest = now_s - conf.get("MAX_REPORT_AGE")
    rows, stream_keys, quality_keys = [], [], []
    for index, report in enumerate(reports):
        rows.append(_parse_report(index, report, now_s, oldest))
        client = report.get("client")
        if client is not None and (type(client) not in (int, str) or not str(client)):
            raise InvalidInput(f"reports[{index}].client: expected a client uuid or id")
        stream_keys.append(_stream_key(index, report))
        quality_keys.append(_quality_key(index, report))

    client_keys = [None if report.get("client") is None else str(report["client"]) for report in reports]
    clients = selectors.clients_by_keys({key for key in client_keys if key is not None})
    unknown = next((key for key in client_keys if key is not None and key not in clients), None)
    if unknown is not None:
        raise UnknownParent(f"client: unknown client {unknown!r}")
    if only_client is not None:
        for index, key in enumerate(client_keys):
            if key is not None:
                _check_owner(clients[key], only_client, f"reports[{index}].client: client {key!r}")

    with transaction.atomic():
        if batch is not None:
            try:
                with transaction.atomic():
                    ReportBatch.objects.create(key=f"{only_client or 0}:{batch}", ts=now_s)
            except IntegrityError:
                return None
        by_stream_id, by_url = _resolve_streams(
            {value for kind, value in stream_keys if kind == "url"},
            {value for kind, value in stream_keys if kind == "id"},
            clients,
        )
        for index, (row, (kind, value)) in enumerate(zip(rows, stream_keys, strict=True)):
            if kind == "url":
                row[2], row[1] = by_url[value]
                continue
            row[1], row[2] = by_stream_id[value], value
            _check_owner(row[1], only_client, f"reports[{index}].stream: stream {value}")
            key = client_keys[index]
            if key is not None and clients[key] != row[1]:
                raise InvalidInput(f"reports[{index}].stream: stream {value} does not belong to client {key!r}")
        quality_ids = {key[1] for key in quality_keys if key and key[0] == "id"}
        bitrate_keys = {
            (row[2], key[1]) for row, key in zip(rows, quality_keys, strict=True) if key and key[0] == "bitrate"
        }
        by_quality_id, by_bitrate = _resolve_qualities(quality_ids, bitrate_keys)
        for index, (row, key) in enumerate(zip(rows, quality_keys, strict=True)):
            if key is None:
                continue
            if key[0] == "id":
                if by_quality_id[key[1]] != row[2]:
                    raise InvalidInput(
                        f"reports[{index}].quality: quality {key[1]} is not a quality of stream {row[2]}"
                    )
                row[3] = key[1]
            else:
                row[3] = by_bitrate[(row[2], key[1])]
        _insert_reports(rows)
    return len(rows)


_REPORT_COLUMNS = (
    "ts",
    "client_id",
    "stream_id",
    "quality_id",
    "session",
    "browser",
    "webrtc",
    "down_cdn",
    "down_swarm",
    "up_swarm",
    "rebuffer_ms",
    "startup_ms",
)


def _insert_reports(rows: list[list]) -> None:
    """One round trip for the whole batch: COPY on PostgreSQL, executemany elsewhere.

    COPY's text format needs no escaping here: sessions and browser codes are validated to a
    safe alphabet and every other column is a number, a boolean or NULL.
    """
    table = ViewerReport._meta.db_table
    columns = ", ".join(_REPORT_COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            buffer = io.StringIO(
                "".join(
                    "\t".join(
                        "\\N" if value is None else ("t" if value is True else "f" if value is False else str(value))
                        for value in row
                    )
                    + "\n"
                    for row in rows
                )
            )
            cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)
        else:
            placeholders = ", ".join(["%s"] * len(_REPORT_COLUMNS))
            cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", rows)


# --- Aggregation -----------------------------------------------------------------------------------

_COUNT_COLUMNS = ("viewers", "webrtc_viewers", *(f"{browser}_viewers" for browser in BROWSERS))
_BYTE_COLUMNS = ("down_cdn", "down_swarm", "up_swarm", "webrtc_down_cdn", "webrtc_down_swarm", "webrtc_up_swarm")
_BUCKET_COLUMNS = ("step", "client_id", "stream_id", "quality_id", "ts", "samples", *_COUNT_COLUMNS, *_BYTE_COLUMNS)
_KEY = "step, client_id, stream_id, quality_id, ts"
_UPSERT = f"ON CONFLICT ({_KEY}) DO UPDATE SET " + ", ".join(
    f"{column} = excluded.{column}" for column in _BUCKET_COLUMNS[5:]
)

# Minute fold: viewers are distinct sessions seen in the minute, bytes are sums.
_MINUTE_VALUES = ", ".join(
    [
        "COUNT(DISTINCT session)",
        "COUNT(DISTINCT CASE WHEN webrtc THEN session END)",
        *(f"COUNT(DISTINCT CASE WHEN browser = '{browser}' THEN session END)" for browser in BROWSERS),
        "SUM(down_cdn)",
        "SUM(down_swarm)",
        "SUM(up_swarm)",
        "SUM(CASE WHEN webrtc THEN down_cdn ELSE 0 END)",
        "SUM(CASE WHEN webrtc THEN down_swarm ELSE 0 END)",
        "SUM(CASE WHEN webrtc THEN up_swarm ELSE 0 END)",
    ]
)
# (stream column, quality column, extra filter, grouping) per level: client, stream, quality.
_LEVELS = (
    ("0", "0", "", "client_id"),
    ("stream_id", "0", "", "client_id, stream_id"),
    ("stream_id", "quality_id", f"AND quality_id <> {ALL}", "client_id, stream_id, quality_id"),
)


def _minute_sql(stream: str, quality: str, extra: str, group: str) -> str:
    return (
        f"INSERT INTO {StatsBucket._meta.db_table} ({', '.join(_BUCKET_COLUMNS)}) "
        f"SELECT {STEP_MINUTE}, client_id, {stream}, {quality}, (ts / {STEP_MINUTE}) * {STEP_MINUTE}, 1, {_MINUTE_VALUES} "
        f"FROM {ViewerReport._meta.db_table} WHERE ts >= %s AND ts < %s {extra} "
        f"GROUP BY {group}, (ts / {STEP_MINUTE}) * {STEP_MINUTE} {_UPSERT}"
    )


def _rollup_sql(step: int, source_step: int) -> str:
    # Counts: the average over the finer points with data, weighted by how many minutes each holds.
    counts = ", ".join(f"SUM({column} * samples) / SUM(samples)" for column in _COUNT_COLUMNS)
    sums = ", ".join(f"SUM({column})" for column in _BYTE_COLUMNS)
    return (
        f"INSERT INTO {StatsBucket._meta.db_table} ({', '.join(_BUCKET_COLUMNS)}) "
        f"SELECT {step}, client_id, stream_id, quality_id, (ts / {step}) * {step}, SUM(samples), {counts}, {sums} "
        f"FROM {StatsBucket._meta.db_table} WHERE step = {source_step} AND ts >= %s AND ts < %s "
        f"GROUP BY client_id, stream_id, quality_id, (ts / {step}) * {step} {_UPSERT}"
    )


_MINUTE_SQL = tuple(_minute_sql(*level) for level in _LEVELS)
_HOUR_SQL = _rollup_sql(STEP_HOUR, STEP_MINUTE)
_DAY_SQL = _rollup_sql(STEP_DAY, STEP_HOUR)


def _aggregation_lock() -> AggregationCursor:
    """Lock the aggregator's cursor row for the current transaction.

    Every fold (beat run, manual re-fold) takes it first, so overlapping folds upsert the same
    buckets one after the other instead of deadlocking on them.
    """
    AggregationCursor.objects.get_or_create(name="minute")
    return AggregationCursor.objects.select_for_update().get(name="minute")


def stats_aggregate(*, start: int, end: int) -> None:
    """Fold raw reports of the minutes in [start, end) into minute buckets, then refresh the hour and
    day rollups those minutes belong to. Every statement recomputes its buckets from the finer data
    and upserts them, so any window can be re-run any number of times with the same result.
    """
    start -= start % STEP_MINUTE
    if end % STEP_MINUTE:
        end += STEP_MINUTE - end % STEP_MINUTE
    if end <= start:
        return
    hour_start, hour_end = start - start % STEP_HOUR, end + (-end % STEP_HOUR)
    day_start, day_end = start - start % STEP_DAY, end + (-end % STEP_DAY)
    with transaction.atomic(), connection.cursor() as cursor:
        _aggregation_lock()
        for sql in _MINUTE_SQL:
            cursor.execute(sql, [start, end])
        cursor.execute(_HOUR_SQL, [hour_start, hour_end])
        cursor.execute(_DAY_SQL, [day_start, day_end])


def stats_aggregate_pending(*, now: float | None = None) -> tuple[int, int]:
    """The beat job: fold every closed minute since the last run (at least the last LOOKBACK seconds).

    Returns the [start, end) window folded.
    """
    now_s = int(time.time() if now is None else now)
    closed_end = now_s - conf.get("GRACE")
    closed_end -= closed_end % STEP_MINUTE
    with transaction.atomic():
        cursor = _aggregation_lock()
        start = closed_end - conf.get("LOOKBACK")
        if 0 < cursor.position < start:
            # Catch up after downtime, but only as far back as raw reports are kept.
            start = max(cursor.position, now_s - conf.get("RAW_RETENTION"))
        stats_aggregate(start=start, end=closed_end)
        cursor.position = max(cursor.position, closed_end)
        cursor.save(update_fields=["position"])
    return start - start % STEP_MINUTE, closed_end


def stats_purge(*, now: float | None = None) -> dict[str, int]:
    """Retention: drop raw reports and buckets older than their configured lifetimes."""
    now_s = int(time.time() if now is None else now)
    deleted: dict[str, int] = {}
    with transaction.atomic():
        retention = conf.get("RAW_RETENTION")
        if retention:
            deleted["raw"] = ViewerReport.objects.filter(ts__lt=now_s - retention).delete()[0]
            ReportBatch.objects.filter(ts__lt=now_s - retention).delete()
        for step, setting in (
            (STEP_MINUTE, "MINUTE_RETENTION"),
            (STEP_HOUR, "HOUR_RETENTION"),
            (STEP_DAY, "DAY_RETENTION"),
        ):
            retention = conf.get(setting)
            if retention:
                deleted[str(step)] = StatsBucket.objects.filter(step=step, ts__lt=now_s - retention).delete()[0]
    return deleted
