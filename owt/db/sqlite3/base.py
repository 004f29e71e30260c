"""Django's SQLite backend, making the database file's folder when it first connects.

The embedded default database lives under ``var/``. Settings only name that path (importing
them writes nothing), so the folder appears when a process first opens the database
(``migrate``, the portal, a worker, the test run), wherever ``OWT_VAR_DIR`` points.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        if not self.is_in_memory_db():
            Path(conn_params["database"]).parent.mkdir(parents=True, exist_ok=True)
        return super().get_new_connection(conn_params)
