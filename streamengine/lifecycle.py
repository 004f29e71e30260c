"""A portal process that stops leaves nothing behind: its participants leave, its node stops.

Daphne (Twisted) has no ASGI lifespan, and its own shutdown hook does not reliably cancel
the live applications (it raises ``KeyError: 'application_instance'`` for a connection
whose application already ended, and cancels nothing after it). So the first signaling
connection registers :func:`shutdown` as a Twisted "before shutdown" trigger, the last
moment the event loop runs: live connections are cancelled (each leaves its room, see
``SignalingConsumer.__call__``), parked participants leave, the embedded media node and
the watchdog stop. Tasks left pending when the loop closes were torn down by the garbage
collector at interpreter exit, which crashed the process (SIGSEGV) or, with a participant
leaving through a worker thread that waited for the loop, hung it for good.
"""

from __future__ import annotations

import asyncio
import logging
import sys

from streamengine.node import stop_embedded_node, stop_watchdog
from streamengine.reconnection import expire_all

logger = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_SECONDS = 5.0

_connections: set[asyncio.Task] = set()
_registered: set[asyncio.AbstractEventLoop] = set()


def track_connection() -> None:
    """Called by each signaling connection's application task when it starts."""
    task = asyncio.current_task()
    if task is not None:
        _connections.add(task)
        task.add_done_callback(_connections.discard)
    loop = asyncio.get_running_loop()
    if loop not in _registered:
        _registered.add(loop)
        _register_with_twisted()


def _register_with_twisted() -> None:
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or not getattr(reactor, "running", False):
        return  # not under daphne: the test server and benchmarks stop the node themselves
    from twisted.internet.defer import Deferred

    reactor.addSystemEventTrigger("before", "shutdown", lambda: Deferred.fromFuture(asyncio.ensure_future(shutdown())))


async def shutdown() -> None:
    connections = [task for task in _connections if not task.done()]
    for task in connections:
        task.cancel()
    if connections:
        _, pending = await asyncio.wait(connections, timeout=SHUTDOWN_TIMEOUT_SECONDS)
        if pending:
            logger.warning("%d signaling connection(s) did not finish leaving", len(pending))
    await expire_all()
    stop_watchdog()
    await stop_embedded_node(final=True)
    logger.info("portal stopped: %d connection(s) ended", len(connections))
