"""How an engine write reaches the live world: an outbox delivered after the write returns.

A write (``services``) changes the database and queues what the media node and the
signaling groups must hear. Only a write that succeeded delivers its outbox, so a refused
or rolled-back request messages nobody. :func:`engine_write` makes each write callable two
ways with one body:

* ``services.publication_delete(publication_id=...)``: synchronous, for REST views, the
  admin, management commands and Celery tasks (delivery through ``async_to_sync``);
* ``await services.publication_delete.acall(publication_id=...)``: for code on an event
  loop (the signaling consumer, media jobs): the database part runs in a worker thread,
  delivery is awaited on the loop itself, so no thread ever waits for the loop (a portal
  shutting down would hang on that).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Concatenate, Generic, ParamSpec, TypeVar

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from streamengine import protocol
from streamengine.models import Domain

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class Outbox:
    # (channel or group, group?, encoded message), in the order queued.
    messages: list[tuple[str, bool, dict]] = field(default_factory=list)

    def to_node(self, domain_id: str, command: protocol.NodeCommand) -> None:
        """Queue ``command`` for the node hosting the domain (none: the room has no live media)."""
        channel = Domain.objects.filter(id=domain_id).values_list("node__channel_name", flat=True).first()
        if channel:
            self.messages.append((channel, False, protocol.encode(command)))

    def to_group(self, group: str, message: protocol.SignalingMessage) -> None:
        self.messages.append((group, True, protocol.encode(message)))

    def notify_domain(
        self, domain_id: str, event: str, data: object, *, exclude: str | None = None, gate: str = ""
    ) -> None:
        """Notify every participant of the domain (``gate``: a ``notifying`` flag of the room)."""
        if gate:
            config = Domain.objects.filter(id=domain_id).values_list("config", flat=True).first() or {}
            if (config.get("notifying") or {}).get(gate, True) is False:
                return
        self.to_group(protocol.domain_group(domain_id), protocol.Notify(event, data, exclude))

    def notify_participant(self, participant_id: str, event: str, data: object) -> None:
        self.to_group(protocol.participant_group(participant_id), protocol.Notify(event, data))

    async def deliver(self) -> None:
        layer = get_channel_layer()
        for target, is_group, message in self.messages:
            if is_group:
                await layer.group_send(target, message)
            else:
                await layer.send(target, message)


class EngineWrite(Generic[P, R]):
    """A write whose body takes the outbox first; see the module docstring."""

    def __init__(self, body: Callable[Concatenate[Outbox, P], R]) -> None:
        self.body = body
        functools.update_wrapper(self, body)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        outbox = Outbox()
        result = self.body(outbox, *args, **kwargs)
        if outbox.messages:
            async_to_sync(outbox.deliver)()
        return result

    async def acall(self, *args: P.args, **kwargs: P.kwargs) -> R:
        outbox = Outbox()
        result = await database_sync_to_async(self.body)(outbox, *args, **kwargs)
        if outbox.messages:
            await outbox.deliver()
        return result


def engine_write(body: Callable[Concatenate[Outbox, P], R]) -> EngineWrite[P, R]:
    return EngineWrite(body)
