"""Where ``SECRET_KEY`` comes from: the environment, else the file ``bin/run`` made on first
start (``var/secret_key``), else the public development key below, which the checks report
(``owt/checks.py``: a warning in embedded mode, an error that stops a production start).

No Django here: the settings read the file before Django is configured.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

# Public (it is in this repository): anyone holding it can forge room tokens and peermetrics
# JWTs and decrypt the stored service keys of a server that runs on it.
DEVELOPMENT_SECRET_KEY = "owt-embedded-insecure-key-change-me-in-production-0123456789"


def read_file(path: Path) -> str:
    """The key kept in ``path``, or "" when there is no such file."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return ""


def create_file(path: Path) -> str:
    """Make ``path`` (mode 0600, never overwritten) holding a new random key, and return the key."""
    key = secrets.token_urlsafe(64)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: two first starts at once cannot both write (and one silently replace the other's key).
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(key + "\n")
    return key
