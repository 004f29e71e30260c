"""The media node: hosts the SFU, registers as a ``Node``, heartbeats, takes commands.

Portals reach a node through the Channels layer: every command is a
:class:`~streamengine.protocol.NodeCommand` on the node's channel (``Node.channel_name``),
dispatched through :attr:`MediaNode.handlers`; every event of the SFU is translated into a
:class:`~streamengine.protocol.NodeEvent` on the reply channel of the participant's
signaling. The same code runs

* embedded (default, in-memory channel layer): inside the portal's event loop, started
  on the first signaling connection (the in-memory layer only reaches this process);
* separately: ``python manage.py medianode`` with ``CHANNEL_LAYER=redis``.

Liveness: each node heartbeats every ``MEDIA_NODE_HEARTBEAT_SECONDS``; a node silent for
three periods is reaped by any live node or portal watchdog (``reap_dead_nodes``), and
the participants of its rooms get ``drop``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections

from streamengine import protocol, services
from streamengine.media.ice import use_host_addresses, use_ice_servers, use_receive_buffer
from streamengine.media.passthrough import check_aiortc_internals
from streamengine.media.sfu import SFU, Answered, Connected, Failed, Measured, SessionEvent, TransportConnected

logger = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 2.0


async def reap_dead_nodes() -> int:
    """Remove nodes that missed their heartbeats and ``drop`` their participants."""
    reaped = await database_sync_to_async(services.node_reap_dead)(stale_after=services.stale_after())
    layer = get_channel_layer()
    for node_id, participant_ids in reaped.items():
        logger.warning("media node %s missed its heartbeats; dropping %d participants", node_id, len(participant_ids))
        for participant_id in participant_ids:
            await layer.group_send(protocol.participant_group(participant_id), protocol.encode(protocol.Drop()))
    return len(reaped)


class MediaNode:
    def __init__(self, *, node_id: str | None = None, embedded: bool, transcode_all: bool = False) -> None:
        self.id = node_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.embedded = embedded
        self.layer = get_channel_layer()
        self.sfu = SFU(self.on_session_event, transcode_all=transcode_all, forward_rtp=settings.MEDIA_FORWARD_RTP)
        self.channel_name = ""
        # Where each participant's events go: its signaling consumer, or its parked mailbox.
        self.replies: dict[str, str] = {}
        self.tasks: list[asyncio.Task] = []
        self.negotiations: set[asyncio.Task] = set()
        self._cpu = (time.monotonic(), time.process_time())

    async def start(self) -> None:
        check_aiortc_internals()
        use_ice_servers(json.loads(settings.ICE_SERVERS_JSON or "[]"))
        use_host_addresses(settings.MEDIA_HOST_ADDRESSES)
        use_receive_buffer(settings.MEDIA_UDP_RECEIVE_BUFFER_BYTES)
        # The default prefix: channels_redis serves all of a process's own channels from one
        # list, and a second prefix in the same process would starve the consumers' receives.
        self.channel_name = await self.layer.new_channel()
        await self._register()
        self.tasks = [asyncio.create_task(self._receive_loop()), asyncio.create_task(self._heartbeat_loop())]
        logger.info("media node %s started (embedded=%s)", self.id, self.embedded)

    async def _register(self) -> None:
        addresses = list(settings.MEDIA_HOST_ADDRESSES) or [socket.gethostname()]
        await database_sync_to_async(services.node_register)(
            node_id=self.id,
            agent=socket.gethostname(),
            channel_name=self.channel_name,
            stream_addr={"ip": addresses[0], "port": 0},
            embedded=self.embedded,
        )

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        # Bounded: a receive cancelled inside channels_redis can stay blocked in its
        # BZPOPMIN (seen in tests); a stopping node must not hang on it.
        _, pending = await asyncio.wait(self.tasks, timeout=STOP_TIMEOUT_SECONDS)
        if pending:
            logger.warning(
                "media node %s: %d loop(s) still stopping after %ss", self.id, len(pending), STOP_TIMEOUT_SECONDS
            )
        for task in self.negotiations:
            task.cancel()
        await self.sfu.close()
        await database_sync_to_async(services.node_unregister)(node_id=self.id)
        # Release this thread's database connection (a stopped node must not hold it open).
        await database_sync_to_async(connections.close_all)()

    async def on_session_event(self, event: SessionEvent) -> None:
        """Translate what the SFU reports into the portal protocol."""
        reply = self.replies.get(event.participant_id)
        if reply is None:
            return
        messages: list[protocol.NodeEvent]
        if isinstance(event, Answered):
            messages = [protocol.Progress({"id": event.transport_id, "status": "soac", "data": event.description})]
        elif isinstance(event, TransportConnected):
            messages = [protocol.Progress({"id": event.transport_id, "status": "ready"})]
        elif isinstance(event, Connected):
            messages = [protocol.SessionReady(event.session_id, event.transport_id, event.kind, event.formats)]
        elif isinstance(event, Failed):
            messages = [protocol.SessionFailed(event.session_id, event.transport_id, event.kind, event.reason)]
        elif isinstance(event, Measured):
            messages = [protocol.ParametersMeasured(event.session_id, event.parameters)]
        for message in messages:
            await self.layer.send(reply, protocol.encode(message))

    def load(self) -> float:
        """Share of one CPU this process used since the last call (0..1)."""
        wall, cpu = time.monotonic(), time.process_time()
        previous_wall, previous_cpu = self._cpu
        self._cpu = (wall, cpu)
        return max(0.0, min(1.0, (cpu - previous_cpu) / max(wall - previous_wall, 1e-6)))

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(settings.MEDIA_NODE_HEARTBEAT_SECONDS)
            try:
                if not await database_sync_to_async(services.node_heartbeat)(node_id=self.id, load=self.load()):
                    # Declared dead (e.g. the process was stopped too long): its rooms were
                    # dropped and re-placed, so start afresh.
                    logger.warning("media node %s was reaped; re-registering", self.id)
                    await self.sfu.close()
                    self.replies.clear()
                    await self._register()
                await reap_dead_nodes()
            except Exception:
                logger.exception("media node heartbeat failed")

    async def _receive_loop(self) -> None:
        while True:
            message = await self.layer.receive(self.channel_name)
            try:
                await self.handle(protocol.decode(message))
            except Exception:
                logger.exception("media node command failed: %s", message.get("type"))

    async def handle(self, command: protocol.Message) -> None:
        logger.debug("media node %s: %s", self.id, command)
        handler = self.handlers.get(type(command))
        if handler is None:
            logger.warning("media node: not a node command: %s", command.type)
            return
        await handler(self, command)

    async def on_publish(self, command: protocol.Publish) -> None:
        self.replies[command.participant] = command.reply
        await self.sfu.add_publication(
            room_id=command.room,
            session_id=command.session,
            participant_id=command.participant,
            tracks=command.tracks,
            accept={kind: set(codecs) for kind, codecs in command.accept.items()},
            transport_id=command.transport,
            keep_transport=command.keep_transport,
        )

    async def on_subscribe(self, command: protocol.Subscribe) -> None:
        self.replies[command.participant] = command.reply
        await self.sfu.add_subscription(
            room_id=command.room,
            session_id=command.session,
            participant_id=command.participant,
            tracks=command.tracks,
            source_id=command.source,
            transport_id=command.transport,
            keep_transport=command.keep_transport,
        )

    async def on_update_subscription(self, command: protocol.UpdateSubscription) -> None:
        await self.sfu.update_subscription(command.session, command.tracks)

    async def on_signal(self, command: protocol.Signal) -> None:
        # Concurrent across transports, in order within one (the transport's lock, FIFO).
        task = asyncio.create_task(self.sfu.soac(command.participant, command.transport, command.signaling))
        self.negotiations.add(task)
        task.add_done_callback(self.negotiations.discard)

    async def on_end_session(self, command: protocol.EndSession) -> None:
        await self.sfu.end_session(command.session)

    async def on_publication_active(self, command: protocol.SetPublicationActive) -> None:
        self.sfu.set_publication_active(command.session, set(command.kinds), command.active)

    async def on_subscription_paused(self, command: protocol.SetSubscriptionPaused) -> None:
        self.sfu.set_subscription_paused(command.session, set(command.kinds), command.paused)

    async def on_move_replies(self, command: protocol.MoveReplies) -> None:
        if command.participant in self.replies:
            self.replies[command.participant] = command.reply

    async def on_end_participant(self, command: protocol.EndParticipant) -> None:
        self.replies.pop(command.participant, None)
        await self.sfu.end_participant(command.participant)

    handlers: dict[type, Callable[[MediaNode, protocol.Message], Awaitable[None]]] = {
        protocol.Publish: on_publish,
        protocol.Subscribe: on_subscribe,
        protocol.UpdateSubscription: on_update_subscription,
        protocol.Signal: on_signal,
        protocol.EndSession: on_end_session,
        protocol.SetPublicationActive: on_publication_active,
        protocol.SetSubscriptionPaused: on_subscription_paused,
        protocol.MoveReplies: on_move_replies,
        protocol.EndParticipant: on_end_participant,
    }


_embedded: dict[asyncio.AbstractEventLoop, MediaNode] = {}
_embedded_lock: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}
# Loops whose portal is shutting down: a client reconnecting in the last moments (browsers
# retry at once) must not start a node that nothing stops, which the next start would then
# report as a node that missed its heartbeats.
_stopped: set[asyncio.AbstractEventLoop] = set()


async def ensure_embedded_node(*, transcode_all: bool = False) -> MediaNode | None:
    """Start this process's embedded node once per event loop (None when nodes run separately).

    ``transcode_all`` (benchmark baseline) applies only to the call that starts the node.
    """
    loop = asyncio.get_running_loop()
    if not settings.MEDIA_NODE_EMBEDDED or loop in _stopped:
        return None
    async with _embedded_lock.setdefault(loop, asyncio.Lock()):
        if loop not in _embedded:
            node = MediaNode(embedded=True, transcode_all=transcode_all)
            await node.start()
            _embedded[loop] = node
    return _embedded[loop]


async def stop_embedded_node(*, final: bool = False) -> None:
    """Stop this loop's embedded node; ``final`` (the portal is exiting): start none after it."""
    loop = asyncio.get_running_loop()
    if final:
        _stopped.add(loop)
    node = _embedded.pop(loop, None)
    _embedded_lock.pop(loop, None)
    if node is not None:
        await node.stop()


_watchdogs: dict[asyncio.AbstractEventLoop, asyncio.Task] = {}


def stop_watchdog() -> None:
    watchdog = _watchdogs.pop(asyncio.get_running_loop(), None)
    if watchdog is not None:
        watchdog.cancel()


def ensure_watchdog() -> None:
    """Portals without an embedded node still reap dead nodes, so their clients get ``drop``."""
    loop = asyncio.get_running_loop()
    task = _watchdogs.get(loop)
    if task is None or task.done():
        _watchdogs[loop] = loop.create_task(_watchdog_loop())


async def _watchdog_loop() -> None:
    while True:
        await asyncio.sleep(settings.MEDIA_NODE_HEARTBEAT_SECONDS)
        try:
            await reap_dead_nodes()
        except Exception:
            logger.exception("node watchdog failed")
