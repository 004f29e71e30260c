"""Small async helpers for live tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from channels.db import database_sync_to_async


async def eventually(check: Callable[[], bool], timeout: float = 10.0, *, db: bool = True) -> None:
    """Wait until ``check()`` holds (run in a thread when it queries the database)."""
    probe = database_sync_to_async(check) if db else None
    async with asyncio.timeout(timeout):
        while not (await probe() if probe else check()):
            await asyncio.sleep(0.05)
