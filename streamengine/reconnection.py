"""Reconnection tickets and parked participants (client-portal protocol 1.2 ``relogin``).

As in OWT, a ticket is ``base64(JSON{participantId, ticketId, notBefore, notAfter,
signature})`` signed with a random key of *this portal process*, so it works only on
the portal that issued it: the participant's session is parked here when its socket
drops, its notifications are buffered, and ``relogin`` on a new socket resumes it with
those messages. If nobody relogs in within ``RECONNECTION_TIMEOUT_SECONDS`` the
participant leaves as usual.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from channels.layers import get_channel_layer

from streamengine import protocol

TICKET_LIFETIME_SECONDS = 600
END_OF_MAILBOX = "parked.end"
MAILBOX_DRAIN_SECONDS = 2.0
RECONNECTION_TIMEOUT_SECONDS = 60
# SDKs whose clients reconnect (OWT's list, plus this project's Python client).
RECONNECTING_SDKS = {"JavaScript", "Objective-C", "C++", "Android", "Python"}

_KEY = secrets.token_bytes(32)


def _sign(participant_id: str, not_before: int, not_after: int) -> str:
    digest = hmac.new(_KEY, f"{participant_id},{not_before},{not_after}".encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def ticket_issue(participant_id: str) -> str:
    now = int(time.time() * 1000)
    body = {
        "participantId": participant_id,
        "ticketId": secrets.token_hex(12),
        "notBefore": now,
        "notAfter": now + TICKET_LIFETIME_SECONDS * 1000,
    }
    body["signature"] = _sign(participant_id, body["notBefore"], body["notAfter"])
    return base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()


def ticket_verify(ticket: object) -> str:
    """The participant id of a valid, unexpired ticket; raises ValueError otherwise."""
    try:
        body = json.loads(base64.b64decode(str(ticket), validate=True))
        participant_id, not_before, not_after = (
            str(body["participantId"]),
            int(body["notBefore"]),
            int(body["notAfter"]),
        )
        signature = str(body["signature"])
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise ValueError("Invalid reconnection ticket") from exc
    if not hmac.compare_digest(signature.encode(), _sign(participant_id, not_before, not_after).encode()):
        raise ValueError("Invalid reconnection ticket")
    if not not_before <= time.time() * 1000 <= not_after:
        raise ValueError("Ticket expired")
    return participant_id


@dataclass
class Parked:
    """A disconnected participant waiting for ``relogin``: a mailbox on its groups."""

    participant_id: str
    domain_id: str
    leave: Callable[[], Awaitable[None]]
    messages: list[dict] = field(default_factory=list)
    channel: str = ""
    task: asyncio.Task | None = None
    timer: asyncio.TimerHandle | None = None

    @property
    def groups(self) -> list[str]:
        return [protocol.domain_group(self.domain_id), protocol.participant_group(self.participant_id)]

    async def start(self) -> None:
        layer = get_channel_layer()
        self.channel = await layer.new_channel()
        for group in self.groups:
            await layer.group_add(group, self.channel)
        self.task = asyncio.create_task(self._collect())
        self.timer = asyncio.get_running_loop().call_later(
            RECONNECTION_TIMEOUT_SECONDS, lambda: asyncio.ensure_future(self.expire())
        )
        _parked[self.participant_id] = self

    async def _collect(self) -> None:
        layer = get_channel_layer()
        while True:
            received = await layer.receive(self.channel)
            if received.get("type") == END_OF_MAILBOX:
                return
            message = protocol.decode(received)
            if isinstance(message, protocol.Drop):
                asyncio.ensure_future(self.expire())
                return
            if isinstance(message, protocol.Notify) and message.exclude != self.participant_id:
                self.buffer(message.event, message.data)
            elif isinstance(message, protocol.Progress):
                self.buffer("progress", message.data)

    def buffer(self, event: str, data: object) -> None:
        self.messages.append({"event": event, "data": data, "seq": len(self.messages)})

    async def stop(self) -> None:
        _parked.pop(self.participant_id, None)
        if self.timer is not None:
            self.timer.cancel()
        layer = get_channel_layer()
        for group in self.groups:
            await layer.group_discard(group, self.channel)
        if self.task is not None and self.task is not asyncio.current_task() and not self.task.done():
            # What reached the mailbox before it left its groups may still be unread (a Redis
            # layer delivers later than the sender's ack): a last message marks the end, and
            # the collector reads up to it, so a relogin gets everything sent before it.
            await layer.send(self.channel, {"type": END_OF_MAILBOX})
            try:
                await asyncio.wait_for(asyncio.shield(self.task), MAILBOX_DRAIN_SECONDS)
            except TimeoutError:
                self.task.cancel()

    async def expire(self) -> None:
        if _parked.get(self.participant_id) is self:
            await self.stop()
            await self.leave()


_parked: dict[str, Parked] = {}


def parked_take(participant_id: str) -> Parked | None:
    return _parked.get(participant_id)


async def expire_all() -> None:
    """Every parked participant leaves now (the portal is stopping)."""
    for parked in list(_parked.values()):
        await parked.expire()
