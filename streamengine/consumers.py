"""The signaling consumer: OWT client-portal protocol 1.2 over JSON WebSocket frames.

Wire format: docs/signaling.md. Handlers take the request's ``data`` and return the ack
data, or raise :class:`SignalingError` / a service ``ApiError`` whose message becomes
the ``error`` ack. A socket.io adapter can later call :meth:`SignalingConsumer.dispatch`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from owt.errors import ApiError
from streamengine import control, selectors, services
from streamengine.node import ensure_embedded_node, ensure_watchdog, media_accept, stale_after

logger = logging.getLogger(__name__)

PROTOCOLS = {"1.2"}
LOGIN_TIMEOUT_SECONDS = 180


class SignalingError(Exception):
    pass


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SignalingError(message)


def _kinds(value: object) -> set[str]:
    _require(value in control.KINDS, "Invalid track kind")
    return control.KINDS[value]  # type: ignore[index]


def _tracks(media: object, *, subscribe: bool) -> list[dict]:
    _require(isinstance(media, dict) and isinstance(media.get("tracks"), list) and media["tracks"], "Invalid media")
    tracks = []
    for track in media["tracks"]:
        _require(isinstance(track, dict) and track.get("type") in ("audio", "video"), "Invalid track type")
        _require(isinstance(track.get("mid"), str | int), "Invalid track mid")
        entry = {"type": track["type"], "mid": str(track["mid"])}
        if subscribe:
            _require(isinstance(track.get("from"), str) and track["from"], "Invalid track from")
            entry["from"] = track["from"]
            for key in ("format", "parameters"):
                if track.get(key) is not None:
                    _require(isinstance(track[key], dict), f"Invalid track {key}")
                    entry[key] = track[key]
        else:
            entry["source"] = track.get("source") if isinstance(track.get("source"), str) else None
        tracks.append(entry)
    _require(len({t["mid"] for t in tracks}) == len(tracks), "Duplicate track mid")
    return tracks


def _transport(data: dict) -> None:
    transport = data.get("transport") or {"type": "webrtc"}
    _require(isinstance(transport, dict) and transport.get("type", "webrtc") == "webrtc", "Invalid transport type")
    # One peer connection per session: sessions are answered by separate aiortc peer connections.
    _require(not transport.get("id"), "Transport reuse is not supported; omit transport.id")


class SignalingConsumer(AsyncWebsocketConsumer):
    participant_id: str | None = None
    domain_id: str | None = None
    node_channel: str = ""

    async def connect(self) -> None:
        await self.accept()
        self.closing = False
        self.login_timer = asyncio.get_running_loop().call_later(LOGIN_TIMEOUT_SECONDS, self._login_timeout)
        await ensure_embedded_node()
        ensure_watchdog()

    def _login_timeout(self) -> None:
        if self.participant_id is None:
            asyncio.ensure_future(self.close())

    async def disconnect(self, code: int) -> None:
        self.login_timer.cancel()
        if self.participant_id is None:
            return
        participant_id, self.participant_id = self.participant_id, None
        await self.channel_layer.group_discard(f"domain.{self.domain_id}", self.channel_name)
        await self.channel_layer.group_discard(f"participant.{participant_id}", self.channel_name)
        await database_sync_to_async(control.participant_left)(participant_id=participant_id, domain_id=self.domain_id)

    # --- frames ---------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        request_id = None
        try:
            frame = json.loads(text_data or "")
            request_id = frame.get("id") if isinstance(frame, dict) else None
            valid = isinstance(frame, dict) and frame.get("type") == "request" and isinstance(frame.get("event"), str)
            valid = valid and isinstance(request_id, int) and not isinstance(request_id, bool)
        except (ValueError, TypeError):
            valid = False
        if not valid:
            await self._send(
                {
                    "type": "ack",
                    "id": request_id if isinstance(request_id, int) else None,
                    "status": "error",
                    "data": "Invalid frame",
                }
            )
            return
        status, data, after = await self.dispatch_request(frame["event"], frame.get("data"))
        await self._send({"type": "ack", "id": request_id, "status": status, "data": data})
        if after is not None:
            await after()

    async def dispatch_request(self, event: str, data: object):
        """Run one request; returns ``(status, ack data, follow-up coroutine or None)``."""
        handler = self.HANDLERS.get(event)
        if handler is None:
            return "error", "Unknown request", None
        if self.participant_id is None and event not in ("login", "relogin"):
            return "error", "Illegal request", None
        try:
            result = await handler(self, data)
        except (SignalingError, ApiError) as exc:
            # A refused login ends the connection (as OWT's portal does); a second login does not.
            failure = self._close_after if event == "login" and self.participant_id is None else None
            return "error", str(exc), failure
        except Exception:
            logger.exception("signaling request %s failed", event)
            return "error", "Internal error", None
        if isinstance(result, tuple):
            return "ok", result[0], result[1]
        return "ok", result, None

    async def _close_after(self) -> None:
        await self.close()

    async def _send(self, frame: dict) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def notify(self, event: str, data: object = None) -> None:
        await self._send({"type": "notification", "event": event, "data": data})

    # --- requests -------------------------------------------------------------------

    async def on_login(self, data: object):
        _require(isinstance(data, dict), "Invalid login data")
        _require(self.participant_id is None, "Connection is in service")
        _require(data.get("protocol") in PROTOCOLS, "Unknown client protocol")
        agent = data.get("userAgent")
        sdk = agent.get("sdk") if isinstance(agent, dict) else None
        _require(
            isinstance(sdk, dict) and bool(sdk.get("type")) and bool(sdk.get("version")), "User agent info is incorrect"
        )
        _require(isinstance(data.get("token"), str), "Invalid token")
        participant = await database_sync_to_async(services.participant_join)(
            token_string=data["token"],
            participant_id=uuid.uuid4().hex,
            portal=self.channel_name,
            user_agent=agent,
            protocol=data["protocol"],
        )
        try:
            node = await database_sync_to_async(services.domain_place)(
                domain_id=participant.domain_id, stale_after=stale_after()
            )
        except ApiError:
            await database_sync_to_async(services.participant_leave)(participant_id=participant.id)
            raise
        self.participant_id, self.domain_id, self.node_channel = (
            participant.id,
            participant.domain_id,
            node.channel_name,
        )
        self.login_timer.cancel()
        await self.channel_layer.group_add(f"domain.{self.domain_id}", self.channel_name)
        await self.channel_layer.group_add(f"participant.{participant.id}", self.channel_name)
        result = await database_sync_to_async(self._login_result)(participant)

        async def announce() -> None:
            await database_sync_to_async(control.notify_domain)(
                self.domain_id,
                "participant",
                {"action": "join", "data": selectors.participant_brief(participant)},
                exclude=participant.id,
                gate="participantActivities",
            )

        return result, announce

    def _login_result(self, participant) -> dict:
        domain = participant.domain
        return {
            **selectors.participant_brief(participant),
            "permission": participant.permission,
            "room": {
                "id": domain.id,
                "views": [view.get("label") for view in domain.config.get("views", []) if isinstance(view, dict)],
                "participants": [
                    selectors.participant_brief(p) for p in selectors.domain_participants(domain_id=domain.id)
                ],
                "streams": [selectors.publication_stream(p) for p in selectors.domain_streams(domain_id=domain.id)],
            },
        }

    async def on_relogin(self, data: object):
        raise SignalingError("Reconnection is not supported")

    async def on_refresh_ticket(self, data: object):
        raise SignalingError("Reconnection is not supported")

    async def on_logout(self, data: object):
        return None, self._close_after

    async def on_publish(self, data: object):
        _require(isinstance(data, dict), "Invalid publish data")
        _require(data.get("media") is not None, "Data-only publications are not supported")
        tracks = _tracks(data.get("media"), subscribe=False)
        _transport(data)
        attributes = data.get("attributes") if isinstance(data.get("attributes"), dict) else {}
        publication_id = uuid.uuid4().hex
        await database_sync_to_async(services.publication_create)(
            participant_id=self.participant_id,
            publication_id=publication_id,
            tracks=tracks,
            attributes=attributes,
            transport_id=publication_id,
        )
        domain = await database_sync_to_async(selectors.domain_get)(domain_id=self.domain_id)
        await self.channel_layer.send(
            self.node_channel,
            {
                "type": "node.publish",
                "session": publication_id,
                "participant": self.participant_id,
                "reply": self.channel_name,
                "tracks": tracks,
                "accept": {k: sorted(v) for k, v in media_accept(domain.config).items()},
            },
        )
        return {"id": publication_id, "transportId": publication_id}

    async def on_subscribe(self, data: object):
        _require(isinstance(data, dict), "Invalid subscribe data")
        tracks = _tracks(data.get("media"), subscribe=True)
        _transport(data)
        subscription_id = uuid.uuid4().hex
        subscription = await database_sync_to_async(services.subscription_create)(
            participant_id=self.participant_id,
            subscription_id=subscription_id,
            tracks=tracks,
            transport_id=subscription_id,
        )
        await self.channel_layer.send(
            self.node_channel,
            {
                "type": "node.subscribe",
                "session": subscription_id,
                "participant": self.participant_id,
                "reply": self.channel_name,
                "tracks": tracks,
                "source": subscription.info["from"],
            },
        )
        return {"id": subscription_id, "transportId": subscription_id}

    async def _own(self, kind: str, session_id: object):
        _require(isinstance(session_id, str) and bool(session_id), "Invalid id")
        getter = selectors.publication_get if kind == "publication" else selectors.subscription_get
        row = await database_sync_to_async(getter)(**{f"{kind}_id": session_id})
        _require(row is not None, "Stream not found" if kind == "publication" else "Subscription not found")
        _require(row.participant_id == self.participant_id, "unauthorized")
        return row

    async def on_unpublish(self, data: object):
        await self._own("publication", (data or {}).get("id") if isinstance(data, dict) else None)
        await database_sync_to_async(control.publication_delete)(publication_id=data["id"])

    async def on_unsubscribe(self, data: object):
        await self._own("subscription", (data or {}).get("id") if isinstance(data, dict) else None)
        await database_sync_to_async(control.subscription_delete)(subscription_id=data["id"])

    async def on_soac(self, data: object):
        _require(isinstance(data, dict), "Invalid soac data")
        _require(isinstance(data.get("id"), str), "Invalid soac id")
        signaling = data.get("signaling")
        _require(isinstance(signaling, dict), "Invalid signaling object")
        _require(
            signaling.get("type") in ("offer", "answer", "candidate", "removed-candidates"), "Invalid signaling type"
        )
        publication = await database_sync_to_async(selectors.publication_get)(publication_id=data["id"])
        row = publication or await database_sync_to_async(selectors.subscription_get)(subscription_id=data["id"])
        _require(row is not None and row.participant_id == self.participant_id, "Transport not found")
        await self.channel_layer.send(
            self.node_channel, {"type": "node.soac", "session": data["id"], "signaling": signaling}
        )

    async def on_stream_control(self, data: object):
        _require(isinstance(data, dict), "Invalid stream-control data")
        await self._own("publication", data.get("id"))
        operation = data.get("operation")
        if operation in ("pause", "play"):
            status = "inactive" if operation == "pause" else "active"
            await database_sync_to_async(control.publication_set_track_status)(
                publication_id=data["id"], kinds=_kinds(data.get("data")), status=status
            )
        elif operation in ("mix", "unmix"):
            _require(isinstance(data.get("data"), str), "Invalid view")
            await database_sync_to_async(control.publication_update_in_views)(
                publication_id=data["id"], view=data["data"], add=operation == "mix"
            )
        else:
            raise SignalingError(f"Operation not supported: {operation}")

    async def on_subscription_control(self, data: object):
        _require(isinstance(data, dict), "Invalid subscription-control data")
        await self._own("subscription", data.get("id"))
        operation = data.get("operation")
        _require(operation in ("pause", "play"), f"Operation not supported: {operation}")
        await database_sync_to_async(control.subscription_set_track_status)(
            subscription_id=data["id"],
            kinds=_kinds(data.get("data")),
            status="inactive" if operation == "pause" else "active",
        )

    async def on_text(self, data: object):
        _require(isinstance(data, dict), "Invalid text data")
        to = data.get("to")
        _require(isinstance(to, str) and bool(to), "Invalid receiver")
        message = {"from": self.participant_id, "to": "all" if to == "all" else "me", "message": data.get("message")}
        if to == "all":
            await database_sync_to_async(control.notify_domain)(self.domain_id, "text", message)
            return None
        target = await database_sync_to_async(selectors.participant_get)(participant_id=to)
        _require(target is not None and target.domain_id == self.domain_id, f"Target participant does NOT exist: {to}")
        await database_sync_to_async(control.notify_participant)(to, "text", message)
        return None

    HANDLERS = {
        "login": on_login,
        "relogin": on_relogin,
        "refreshReconnectionTicket": on_refresh_ticket,
        "logout": on_logout,
        "publish": on_publish,
        "unpublish": on_unpublish,
        "subscribe": on_subscribe,
        "unsubscribe": on_unsubscribe,
        "soac": on_soac,
        "stream-control": on_stream_control,
        "subscription-control": on_subscription_control,
        "text": on_text,
    }

    # --- messages from the platform (Channels layer) -----------------------------------

    async def engine_notify(self, message: dict) -> None:
        if message.get("exclude") != self.participant_id:
            await self.notify(message["event"], message.get("data"))

    async def engine_drop(self, message: dict) -> None:
        await self.notify("drop")
        self.closing = True
        await self.close()
        # The server closes: clean up now rather than wait for the client's close frame.
        await self.disconnect(1000)

    async def engine_permission(self, message: dict) -> None:
        # Permission is read from the database on every publish/subscribe; nothing is cached.
        return None

    async def engine_progress(self, message: dict) -> None:
        await self.notify("progress", message["data"])

    async def engine_session(self, message: dict) -> None:
        session_id, transport = message["session"], message["session"]
        if message["status"] == "ready":
            if message["kind"] == "publication":
                await database_sync_to_async(control.publication_ready)(
                    publication_id=session_id, formats=message["formats"]
                )
            else:
                await database_sync_to_async(services.subscription_set_ready)(subscription_id=session_id)
            await self.notify("progress", {"id": transport, "sessionId": session_id, "status": "ready"})
        else:
            await self.notify(
                "progress", {"id": transport, "sessionId": session_id, "status": "error", "data": message.get("reason")}
            )
