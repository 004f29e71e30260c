"""Viblast-style P2P CDN statistics: registry (clients, streams, qualities), raw viewer reports, buckets.

Data flow: players post :class:`ViewerReport` rows in batches (hot path, bulk insert, no FK
checks); the per-minute aggregator folds them into :class:`StatsBucket` rows at step 60 with one
``INSERT … SELECT … GROUP BY … ON CONFLICT DO UPDATE`` per level (client, stream, quality), then
rolls minutes into hours (step 3600) and days (step 86400). The time-series API reads buckets only.
"""

from __future__ import annotations

from django.db import models

# Browser codes stored on reports and the bucket column that counts each one's viewers.
BROWSERS = ("chrome", "firefox", "ie", "safari", "opera", "edge", "other")

# Bucket steps (seconds): minute data, hour rollups, day rollups.
STEP_MINUTE = 60
STEP_HOUR = 3600
STEP_DAY = 86400
STEPS = (STEP_MINUTE, STEP_HOUR, STEP_DAY)
RESOLUTIONS = {STEP_MINUTE: "minute", STEP_HOUR: "hour", STEP_DAY: "day"}

# ``stream_id`` / ``quality_id`` value of a bucket that covers all streams / all qualities.
ALL = 0


class Client(models.Model):
    """A customer; ``uuid`` is the caller's external key (e.g. "11111111"), ``id`` ours."""

    uuid = models.CharField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.uuid})"


class ClientKey(models.Model):
    """An API key of one client: ``write`` for its trackers and players, ``read`` for its dashboards.

    Only the SHA-256 of the key is stored (keys are 256-bit random, so a fast hash cannot be
    brute-forced; a lookup by hash is one indexed query). ``hint`` is the key's first characters,
    enough to tell keys apart in the admin. A client may hold several keys of a kind at once:
    rotate by issuing a new one, deploying it, then revoking (deleting) the old one.
    """

    WRITE = "write"
    READ = "read"
    KINDS = ((WRITE, "write (trackers, players)"), (READ, "read (time series)"))

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="keys")
    kind = models.CharField(max_length=5, choices=KINDS)
    key_hash = models.CharField(max_length=64, unique=True)
    hint = models.CharField(max_length=12)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} key {self.hint}… of {self.client_id}"


class Stream(models.Model):
    """A CDN stream (HLS/DASH manifest URL) of one client; natural key (client, cdn_stream)."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="streams")
    cdn_stream = models.CharField(max_length=1024)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [models.UniqueConstraint(fields=["client", "cdn_stream"], name="portal_stream_client_url_uniq")]

    def __str__(self) -> str:
        return self.cdn_stream


class StreamQuality(models.Model):
    """An adaptive-bitrate rendition of a stream; natural key (stream, bitrate in kbps)."""

    stream = models.ForeignKey(Stream, on_delete=models.CASCADE, related_name="qualities")
    bitrate = models.PositiveIntegerField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "stream qualities"
        constraints = [models.UniqueConstraint(fields=["stream", "bitrate"], name="portal_quality_stream_bitrate_uniq")]

    def __str__(self) -> str:
        return f"{self.bitrate} kbps"


class ViewerReport(models.Model):
    """One player announce: byte deltas since its previous report, for one viewer session.

    Written in bulk on the hot path, so ids are plain integers (no FK triggers per row, and a
    client deleted in the admin does not cascade over millions of rows); retention purges them.
    ``ts`` is Unix seconds (received time, or the player's own time clamped to a short window).
    """

    ts = models.BigIntegerField(db_index=True)
    client_id = models.BigIntegerField()
    stream_id = models.BigIntegerField()
    quality_id = models.BigIntegerField(default=ALL)
    session = models.CharField(max_length=64)
    browser = models.CharField(max_length=8)
    webrtc = models.BooleanField()
    down_cdn = models.BigIntegerField(default=0)
    down_swarm = models.BigIntegerField(default=0)
    up_swarm = models.BigIntegerField(default=0)
    # Optional QoE, kept for later metrics: stall time in the interval and startup delay.
    rebuffer_ms = models.IntegerField(null=True)
    startup_ms = models.IntegerField(null=True)

    def __str__(self) -> str:
        return f"{self.session}@{self.ts} stream={self.stream_id}"


class ReportBatch(models.Model):
    """The key of an accepted report batch, so a retried POST is not counted twice (kept as long as
    raw reports). Inserted in the same transaction as the batch's reports.

    ``key`` is ``"<client id>:<batch>"`` (0 for a batch not bound to one client: open mode, an
    operator), so one client cannot burn the batch keys of another."""

    key = models.CharField(max_length=85, primary_key=True)
    ts = models.BigIntegerField(db_index=True)

    def __str__(self) -> str:
        return self.key


class StatsBucket(models.Model):
    """Aggregated statistics of one (step, client, stream, quality, ts) bucket.

    A bucket at ``ts`` covers ``[ts, ts + step)`` (whisper's convention). ``stream_id`` /
    ``quality_id`` are :data:`ALL` (0) for client- and stream-level buckets. Minute counts are
    distinct viewer sessions; hour/day counts are the average over the minutes with data
    (``samples`` of them), bytes are sums.
    """

    step = models.IntegerField()
    client_id = models.BigIntegerField()
    stream_id = models.BigIntegerField()
    quality_id = models.BigIntegerField()
    ts = models.BigIntegerField()
    samples = models.IntegerField(default=1)
    viewers = models.FloatField(default=0)
    webrtc_viewers = models.FloatField(default=0)
    chrome_viewers = models.FloatField(default=0)
    firefox_viewers = models.FloatField(default=0)
    ie_viewers = models.FloatField(default=0)
    safari_viewers = models.FloatField(default=0)
    opera_viewers = models.FloatField(default=0)
    edge_viewers = models.FloatField(default=0)
    other_viewers = models.FloatField(default=0)
    down_cdn = models.BigIntegerField(default=0)
    down_swarm = models.BigIntegerField(default=0)
    up_swarm = models.BigIntegerField(default=0)
    webrtc_down_cdn = models.BigIntegerField(default=0)
    webrtc_down_swarm = models.BigIntegerField(default=0)
    webrtc_up_swarm = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = "stats rollup"
        constraints = [
            models.UniqueConstraint(
                fields=["step", "client_id", "stream_id", "quality_id", "ts"], name="portal_bucket_key_uniq"
            )
        ]

    def __str__(self) -> str:
        return f"{self.step}s@{self.ts} client={self.client_id} stream={self.stream_id} quality={self.quality_id}"


class AggregationCursor(models.Model):
    """Where the minute aggregator got to (exclusive end, Unix seconds); locked while it runs."""

    name = models.CharField(max_length=32, primary_key=True)
    position = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name}: {self.position}"
