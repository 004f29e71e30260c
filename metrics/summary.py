"""Conference summary: per-connection time series from the raw stats rows, and eMOS issues.

Runs in a Celery task (``metrics.tasks.summary_build``, queued by ``metrics.tasks.summary_queue`` when a
call ends and by the dashboard's /graphs), never in an SDK request. Counters
in the SDK's reports are cumulative; every value here is per interval (the difference
with the previous sample of the same report id), which is what the charts and the
E-model need. Rebuilding replaces the summary and its ``low_emos``/``very_low_emos``
issues instead of adding duplicates.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from metrics.emodel import audio_mos, video_score
from metrics.models import ISSUES, Conference, Connection, GenericEvent, Issue, Summary

EMOS_CODES = ("low_emos", "very_low_emos")


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def _reports(data: dict, kind: str, direction: str) -> list[dict]:
    reports = (data.get(kind) or {}).get(direction) or []
    return [report for report in reports if isinstance(report, dict)]


class _ConnectionSeries:
    """Turns one connection's cumulative reports into per-interval samples."""

    def __init__(self) -> None:
        self.previous: dict[str, tuple[datetime, dict]] = {}
        self.samples: list[dict] = []
        self.last_signature: tuple = ()

    def _delta(self, report: dict, key: str, at: datetime) -> tuple[float, float] | None:
        """(Δvalue, Δseconds) since this report id's previous sample, None for the first one."""
        previous = self.previous.get(str(report.get("id")))
        if previous is None:
            return None
        seconds = (at - previous[0]).total_seconds()
        delta = _num(report.get(key)) - _num(previous[1].get(key))
        if seconds <= 0 or delta < 0:  # a restarted counter is a new stream
            return None
        return delta, seconds

    def _bitrate(self, report: dict, key: str, at: datetime) -> float:
        if "bitrate" in report:
            return _num(report["bitrate"])
        delta = self._delta(report, key, at)
        return delta[0] * 8 / delta[1] if delta else 0.0

    def _loss(self, report: dict, at: datetime) -> float | None:
        lost = self._delta(report, "packetsLost", at)
        received = self._delta(report, "packetsReceived", at)
        if lost is None or received is None:
            lost_n, received_n = _num(report.get("packetsLost")), _num(report.get("packetsReceived"))
        else:
            lost_n, received_n = lost[0], received[0]
        total = lost_n + received_n
        return 100.0 * lost_n / total if total > 0 else None

    @staticmethod
    def _signature(data: dict) -> tuple:
        """The counters of a sample: a retried POST (same body, back-dated) repeats them exactly."""
        return tuple(
            (str(report.get("id")), report.get("bytesReceived"), report.get("bytesSent"), report.get("timestamp"))
            for kind in ("audio", "video")
            for direction in ("inbound", "outbound")
            for report in _reports(data, kind, direction)
        )

    def add(self, at: datetime, data: dict) -> None:
        signature = self._signature(data)
        if signature and signature == self.last_signature:
            return  # the SDK retried a request whose answer it lost
        self.last_signature = signature
        pair = data.get("connection") or {}
        rtt = _num(pair.get("currentRoundTripTime")) * 1000
        if not rtt:
            for kind in ("audio", "video"):
                for remote in _reports(data.get("remote") or {}, kind, "inbound"):
                    rtt = rtt or _num(remote.get("roundTripTime")) * 1000
        inbound = [(kind, report) for kind in ("audio", "video") for report in _reports(data, kind, "inbound")]
        outbound = [report for kind in ("audio", "video") for report in _reports(data, kind, "outbound")]
        losses = [loss for _, report in inbound if (loss := self._loss(report, at)) is not None]
        sample: dict[str, Any] = {
            "t": at.isoformat(),
            "bitrate_in": round(sum(self._bitrate(report, "bytesReceived", at) for _, report in inbound)),
            "bitrate_out": round(sum(self._bitrate(report, "bytesSent", at) for report in outbound)),
            "packet_loss": round(max(losses), 3) if losses else 0.0,
            "jitter": round(max((_num(report.get("jitter")) * 1000 for _, report in inbound), default=0.0), 2),
            "rtt": round(rtt, 2),
            "fps": None,
            "frame_height": None,
            "audio_mos": None,
            "video_score": None,
        }
        for kind, report in inbound:
            loss = self._loss(report, at) or 0.0
            if (
                kind == "audio"
                and sample["audio_mos"] is None
                and (_num(report.get("packetsReceived")) or _num(report.get("packetsLost")))
            ):
                emitted = self._delta(report, "jitterBufferEmittedCount", at)
                buffered = self._delta(report, "jitterBufferDelay", at)
                if emitted and buffered and emitted[0] > 0:
                    buffer_ms = 1000 * buffered[0] / emitted[0]
                elif _num(report.get("jitterBufferEmittedCount")):
                    buffer_ms = 1000 * _num(report.get("jitterBufferDelay")) / _num(report["jitterBufferEmittedCount"])
                else:
                    buffer_ms = 0.0
                sample["audio_mos"] = audio_mos(
                    loss_percent=loss,
                    rtt_ms=rtt,
                    jitter_buffer_ms=buffer_ms,
                    bitrate_bps=self._bitrate(report, "bytesReceived", at) or None,
                    fec=bool(report.get("fecPacketsReceived")),
                )
            elif kind == "video" and sample["video_score"] is None:
                frames = self._delta(report, "framesDecoded", at)
                fps = frames[0] / frames[1] if frames else _num(report.get("framesPerSecond"))
                sample["fps"] = round(fps, 2)
                sample["frame_height"] = report.get("frameHeight")
                sample["video_score"] = video_score(
                    loss_percent=loss, fps=fps, height=_num(report.get("frameHeight")), rtt_ms=rtt
                )
        for _, report in inbound:
            self.previous[str(report.get("id"))] = (at, report)
        for report in outbound:
            self.previous[str(report.get("id"))] = (at, report)
        self.samples.append(sample)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def _emos_runs(samples: list[dict], needed: int) -> tuple[str | None, float | None]:
    """The worst sustained quality: ``needed`` consecutive samples below 3 → very low, below 4 → low."""
    worst: str | None = None
    below3 = below4 = 0
    for sample in samples:
        mos = sample["audio_mos"]
        if mos is None:
            continue
        below4 = below4 + 1 if mos < 4 else 0
        below3 = below3 + 1 if mos < 3 else 0
        if below3 >= needed:
            worst = "very_low_emos"
        elif below4 >= needed and worst is None:
            worst = "low_emos"
    scores = [s["audio_mos"] for s in samples if s["audio_mos"] is not None]
    return worst, _mean(scores)


def summary_build(*, conference_id: Any) -> Summary:
    conference = Conference.objects.select_related("app").get(pk=conference_id)
    connections = {
        connection.pk: connection
        for connection in Connection.objects.filter(conference=conference).select_related(
            "participant", "peer", "session"
        )
    }
    series: dict[Any, _ConnectionSeries] = {}
    last_at = None
    rows = (
        GenericEvent.objects.filter(conference=conference, category=GenericEvent.Category.STATS)
        .order_by("created_at", "id")
        .values_list("connection_id", "created_at", "data")
    )
    for connection_id, created_at, data in rows.iterator(chunk_size=2000):
        if connection_id in connections and isinstance(data, dict):
            series.setdefault(connection_id, _ConnectionSeries()).add(created_at, data)
        last_at = created_at
    # 30 s of consecutive samples at the interval this app told its SDKs to use.
    interval_ms = conference.app.interval or settings.METRICS_STATS_INTERVAL_MS
    needed = max(1, round(30000 / interval_ms))
    out, issues = [], []
    for connection_id, connection_series in series.items():
        connection = connections[connection_id]
        samples = connection_series.samples
        worst, average = _emos_runs(samples, needed)
        if worst:
            issues.append(
                Issue(
                    app_id=conference.app_id,
                    conference=conference,
                    session=connection.session,
                    participant=connection.participant,
                    connection=connection,
                    type=ISSUES[worst][0],
                    code=worst,
                    data={"average": average},
                )
            )
        out.append(
            {
                "connection_id": str(connection_id),
                "participant": {"id": str(connection.participant_id), "name": str(connection.participant)},
                "peer": {"id": str(connection.peer_id), "name": str(connection.peer)},
                "type": connection.get_type_display() if connection.type else None,
                "samples": samples,
                "averages": {
                    key: _mean([s[key] for s in samples if s[key] is not None])
                    for key in (
                        "bitrate_in",
                        "bitrate_out",
                        "packet_loss",
                        "jitter",
                        "rtt",
                        "fps",
                        "audio_mos",
                        "video_score",
                    )
                },
            }
        )
    with transaction.atomic():
        Issue.objects.filter(conference=conference, code__in=EMOS_CODES).delete()
        Issue.objects.bulk_create(issues)
        summary, _ = Summary.objects.get_or_create(conference=conference)
        summary.data = {"version": 1, "interval_ms": interval_ms, "connections": out}
        summary.status = Summary.Status.DONE
        summary.stats_until = last_at
        summary.end_time = timezone.now()
        summary.save()
    return summary


def summary_refresh(*, conference_id: Any) -> dict:
    """Build the summary of a conference that still exists; what the Celery task reports."""
    if not Conference.objects.filter(pk=conference_id).exists():
        return {"conference": conference_id, "built": False}
    summary = summary_build(conference_id=conference_id)
    return {"conference": conference_id, "built": True, "connections": len(summary.data.get("connections", []))}


def summary_is_stale(summary: Summary) -> bool:
    newer = GenericEvent.objects.filter(conference_id=summary.conference_id, category=GenericEvent.Category.STATS)
    if summary.stats_until:
        newer = newer.filter(created_at__gt=summary.stats_until)
    return newer.exists()
