"""Writes of the peermetrics API, one module per concern.

- :mod:`metrics.services.ingestion`: SDK events → rows (every SDK route but ``/stats``, which is
  :mod:`metrics.ingest`), and retention of the raw stats.
- :mod:`metrics.services.connections`: the connection state machine, session and conference ends,
  issue detection.
- :mod:`metrics.services.dashboard`: dashboard CRUD (organizations, apps, reset-key).

Reads are in :mod:`metrics.selectors`; request bodies are parsed in :mod:`metrics.serializers`.
"""
