"""portal_stats settings with their defaults.

Override any of them with the environment variable ``PORTAL_STATS_<NAME>`` (an integer, e.g.
``PORTAL_STATS_RAW_RETENTION=86400``), which ``owt/settings.py`` reads into
``settings.PORTAL_STATS``, or by setting that dict directly. Unknown names are reported by
``manage.py check``.
"""

from __future__ import annotations

from django.conf import settings
from django.core import checks

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
    # 1 = no credentials anywhere (a local demo); 0 = trackers need their client's write key and
    # readers its read key or an operator (staff) login.
    "OPEN": 0,
}


def get(name: str) -> int:
    return int(getattr(settings, "PORTAL_STATS", {}).get(name, DEFAULTS[name]))


@checks.register()
def check_names(app_configs: object = None, **kwargs: object) -> list[checks.CheckMessage]:
    """A misspelt PORTAL_STATS_<NAME> would be ignored silently: say so."""
    return [
        checks.Warning(
            f"Unknown portal_stats setting {name!r} (PORTAL_STATS_{name}); it has no effect.",
            hint=f"Known settings: {', '.join(DEFAULTS)}.",
            id="portal_stats.W001",
        )
        for name in sorted(set(getattr(settings, "PORTAL_STATS", {})) - set(DEFAULTS))
    ]
