"""Small helpers for live tests: waiting for a condition, and the marks of browser tests."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async

# Chromium also uses the machine's other interfaces: browser tests run in a loopback-only
# network namespace (unshare -n), and are skipped outside one.
IN_LOOPBACK_NAMESPACE = pytest.mark.skipif(
    {name for _, name in socket.if_nameindex()} != {"lo"},
    reason="needs a loopback-only network namespace: unshare -n sh -c 'ip link set lo up && python -m pytest -m browser ...'",
)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll ``check()`` (synchronous code, e.g. a browser page) until it gives a true value; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.25)


async def eventually(check: Callable[[], bool], timeout: float = 10.0, *, db: bool = True) -> None:
    """Wait until ``check()`` holds (run in a thread when it queries the database)."""
    probe = database_sync_to_async(check) if db else None
    async with asyncio.timeout(timeout):
        while not (await probe() if probe else check()):
            await asyncio.sleep(0.05)
