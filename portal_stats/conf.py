"""portal_stats settings with their defaults (override any of them in settings / the environment)."""

from __future__ import annotations

from django.conf import settings

DEFAULTS = {
    # Largest batch one POST may carry.
    "MAX_BATCH": 5000,
    # A report may carry its own ``ts``; it is clamped to [now - MAX_REPORT_AGE, now] so a wrong
    # player clock cannot write into minutes the aggregator no longer revisits.
    "MAX_REPORT_AGE": 120,
    # The aggregator folds closed minutes only, GRACE seconds after they end, and re-folds the
    # last LOOKBACK seconds on every run so late reports (<= MAX_REPORT_AGE) are always counted.
    "GRACE": 10,
    "LOOKBACK": 300,
    # Retention in seconds (0 = keep forever).
    "RAW_RETENTION": 2 * 86400,
    "MINUTE_RETENTION": 35 * 86400,
    "HOUR_RETENTION": 400 * 86400,
    "DAY_RETENTION": 0,
    # Longest range served at minute / hour resolution (longer ranges use the next rollup).
    "MINUTE_MAX_SPAN": 7 * 86400,
    "HOUR_MAX_SPAN": 180 * 86400,
    # Most points one time-series answer may hold.
    "MAX_POINTS": 20000,
}


def get(name: str) -> int:
    return int(getattr(settings, "PORTAL_STATS", {}).get(name, DEFAULTS[name]))
