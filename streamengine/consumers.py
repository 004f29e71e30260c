"""The signaling session: OWT client-portal protocol 1.2, one implementation, two framings.

Protocol translation only: a request is checked and turned into a call of the engine's
write API (``services``, awaited with ``acall``); the platform's messages (``protocol``)
become notifications. :class:`SignalingSession` holds all of it and knows no framing:
:class:`SignalingConsumer` carries it over JSON WebSocket frames (docs/signaling.md),
``streamengine.sio`` over socket.io for the unmodified OWT JS SDK. Handlers take the
request's ``data`` and return the ack data, or raise :class:`SignalingError` / a service
``ApiError`` whose message becomes the ``error`` ack.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from functools import partial

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from owt.errors import ApiError
from owt.throttling import signaling_login_allowed
from streamengine import lifecycle, protocol, selectors, services
from streamengine.node import ensure_embedded_node, ensure_watchdog
from streamengine.reconnection import RECONNECTING_SDKS, Parked, parked_take, ticket_issue, ticket_verify

logger = logging.getLogger(__name__)

PROTOCOLS = {"1.2"}
LOGIN_TIMEOUT_SECONDS = 180
MAX_ANALYTICS_EVENT = 4096  # bytes of JSON: an event is a few fields, not a frame


class SignalingError(Exception):
    pass


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise SignalingError(message)


def _kinds(value: object) -> set[str]:
    _require(value in services.KINDS, "Invalid track kind")
    return services.KINDS[value]  # type: ignore[index]


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
        _require(not track.get("rid"), "Simulcast (rid layers) is not supported: publish a single encoding")
        tracks.append(entry)
    _require(len({t["mid"] for t in tracks}) == len(tracks), "Duplicate track mid")
    return tracks


def _transport(data: dict) -> str | None:
    """The transport the session joins (``transport.id``), or None for a new one."""
    transport = data.get("transport") or {"type": "webrtc"}
    _require(isinstance(transport, dict) and transport.get("type", "webrtc") == "webrtc", "Invalid transport type")
    transport_id = transport.get("id")
    _require(transport_id is None or (isinstance(transport_id, str) and bool(transport_id)), "Invalid transport id")
    return transport_id


def _subscription_changes(data: object) -> dict[str, dict]:
    """``subscription-control update`` data → ``{kind: {from?, parameters?}}``."""
    _require(isinstance(data, dict) and bool(data), "Invalid update data")
    changes = {}
    for kind, change in data.items():
        _require(kind in ("audio", "video") and isinstance(change, dict), "Invalid update data")
        entry = {}
        if change.get("from") is not None:
            _require(isinstance(change["from"], str) and bool(change["from"]), "Invalid update from")
            entry["from"] = change["from"]
        if change.get("parameters") is not None:
            _require(kind == "video" and isinstance(change["parameters"], dict), "Invalid update parameters")
            # The SDK sends every key, unset ones as null.
            entry["parameters"] = {k: v for k, v in change["parameters"].items() if v is not None}
        changes[kind] = entry
    return changes


def _session_id(data: object) -> str:
    session_id = data.get("id") if isinstance(data, dict) else None
    _require(isinstance(session_id, str) and bool(session_id), "Invalid id")
    return session_id


class SignalingSession:
    """One client's signaling connection, whatever carries it.

    A framing provides ``scope`` (the ASGI scope: client address for throttling),
    ``channel_layer`` and ``channel_name`` (where the platform's messages reach this
    session, dispatched to the ``engine_*`` handlers by their ``type``), and implements
    :meth:`notify` and :meth:`close`; it calls :meth:`start` once connected,
    :meth:`dispatch_request` per request and :meth:`disconnect` once gone.
    """

    participant_id: str | None = None
    domain_id: str | None = None
    # Reconnection enabled for this client (its SDK reconnects) and not ended on purpose.
    reconnect = False
    leaving = False
    closing = False
    # The client keeps one transport (peer connection) for its later sessions (OWT JS SDK).
    keeps_transports = False
    scope: dict
    channel_layer: object
    channel_name: str

    async def notify(self, event: str, data: object = None) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def start(self) -> None:
        self.closing = False
        self.login_timer = asyncio.get_running_loop().call_later(LOGIN_TIMEOUT_SECONDS, self._login_timeout)
        node = await ensure_embedded_node()
        # The in-memory channel layer reaches only this process: use our own node then.
        self.only_node = node.id if node is not None and settings.CHANNEL_LAYER == "memory" else None
        ensure_watchdog()

    def _login_timeout(self) -> None:
        if self.participant_id is None:
            asyncio.ensure_future(self.close())

    async def disconnect(self, code: int) -> None:
        if getattr(self, "login_timer", None) is not None:
            self.login_timer.cancel()
        if self.participant_id is None:
            return
        participant_id, domain_id, self.participant_id = self.participant_id, self.domain_id, None
        try:
            for group in (protocol.domain_group(domain_id), protocol.participant_group(participant_id)):
                await self.channel_layer.group_discard(group, self.channel_name)
        except Exception:
            # The channel layer is down: a parked participant could not be reached either.
            logger.exception("leaving the groups of participant %s failed", participant_id)
            self.leaving = True

        async def leave() -> None:
            await services.participant_left.acall(participant_id=participant_id)

        if self.reconnect and not self.leaving:
            # The socket dropped: keep the participant and its media for a relogin.
            parked = Parked(participant_id, domain_id, leave)
            await parked.start()
            await services.participant_set_portal.acall(participant_id=participant_id, portal=parked.channel)
        else:
            await leave()

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

    # --- requests -------------------------------------------------------------------

    async def on_login(self, data: object):
        _require(await signaling_login_allowed(self.scope), "Too many logins from this address, try again later")
        _require(isinstance(data, dict), "Invalid login data")
        _require(self.participant_id is None, "Connection is in service")
        _require(data.get("protocol") in PROTOCOLS, "Unknown client protocol")
        agent = data.get("userAgent")
        sdk = agent.get("sdk") if isinstance(agent, dict) else None
        _require(
            isinstance(sdk, dict) and bool(sdk.get("type")) and bool(sdk.get("version")), "User agent info is incorrect"
        )
        _require(isinstance(data.get("token"), str), "Invalid token")
        participant = await services.participant_join.acall(
            token_string=data["token"],
            participant_id=uuid.uuid4().hex,
            portal=self.channel_name,
            user_agent=agent,
            protocol=data["protocol"],
            only_node=self.only_node,
        )
        self.participant_id, self.domain_id = participant.id, participant.domain_id
        self.login_timer.cancel()
        for group in (protocol.domain_group(self.domain_id), protocol.participant_group(participant.id)):
            await self.channel_layer.group_add(group, self.channel_name)
        result = await database_sync_to_async(self._login_result)(participant)
        self.reconnect = sdk["type"] in RECONNECTING_SDKS
        if self.reconnect:
            result["reconnectionTicket"] = ticket_issue(participant.id)
        return result

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
        _require(self.participant_id is None, "Connection is in service")
        try:
            participant_id = ticket_verify(data)
        except ValueError as exc:
            raise SignalingError(str(exc)) from exc
        parked = parked_take(participant_id)
        _require(parked is not None, "Participant early left")
        await parked.stop()
        await services.participant_set_portal.acall(participant_id=participant_id, portal=self.channel_name)
        self.participant_id, self.domain_id = participant_id, parked.domain_id
        self.reconnect = True
        self.login_timer.cancel()
        for group in parked.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        ticket = ticket_issue(participant_id)
        participant = await database_sync_to_async(selectors.participant_get)(participant_id=participant_id)
        sdk = (participant.user_agent.get("sdk") if participant is not None else None) or {}
        if not isinstance(sdk, dict) or sdk.get("type") != "JavaScript":
            return {"ticket": ticket, "messages": parked.messages}
        # The OWT JS SDK takes the ack as the ticket string (owt-compat §11 item 11: the
        # documented 1.2 ``{ticket, messages}`` breaks its reconnection); its missed
        # notifications follow as notifications, as for protocol 1.0/1.1 clients.
        return ticket, partial(self._replay, parked.messages)

    async def _replay(self, messages: list[dict]) -> None:
        for message in messages:
            await self.notify(message["event"], message["data"])

    async def on_refresh_ticket(self, data: object):
        _require(self.reconnect, "Reconnection is not enabled")
        return ticket_issue(self.participant_id)

    async def on_logout(self, data: object):
        self.leaving = True
        return None, self._close_after

    async def on_publish(self, data: object):
        _require(isinstance(data, dict), "Invalid publish data")
        _require(data.get("media") is not None, "Data-only publications are not supported")
        tracks = _tracks(data.get("media"), subscribe=False)
        publication = await services.publication_create.acall(
            participant_id=self.participant_id,
            publication_id=uuid.uuid4().hex,
            tracks=tracks,
            attributes=data.get("attributes") if isinstance(data.get("attributes"), dict) else {},
            transport_id=_transport(data),
            keep_transport=self.keeps_transports,
        )
        return {"id": publication.id, "transportId": publication.transport_id}

    async def on_subscribe(self, data: object):
        _require(isinstance(data, dict), "Invalid subscribe data")
        tracks = _tracks(data.get("media"), subscribe=True)
        subscription = await services.subscription_create.acall(
            participant_id=self.participant_id,
            subscription_id=uuid.uuid4().hex,
            tracks=tracks,
            transport_id=_transport(data),
            keep_transport=self.keeps_transports,
        )
        return {"id": subscription.id, "transportId": subscription.transport_id}

    async def on_unpublish(self, data: object):
        await services.publication_delete.acall(publication_id=_session_id(data), owner=self.participant_id)

    async def on_unsubscribe(self, data: object):
        await services.subscription_delete.acall(subscription_id=_session_id(data), owner=self.participant_id)

    async def on_soac(self, data: object):
        _require(isinstance(data, dict), "Invalid soac data")
        _require(isinstance(data.get("id"), str), "Invalid soac id")
        signaling = data.get("signaling")
        _require(isinstance(signaling, dict), "Invalid signaling object")
        _require(
            signaling.get("type") in ("offer", "answer", "candidate", "removed-candidates"), "Invalid signaling type"
        )
        await services.transport_signal.acall(owner=self.participant_id, transport_id=data["id"], signaling=signaling)

    async def on_stream_control(self, data: object):
        _require(isinstance(data, dict), "Invalid stream-control data")
        publication_id = _session_id(data)
        operation = data.get("operation")
        if operation in ("pause", "play"):
            await services.publication_set_track_status.acall(
                publication_id=publication_id,
                kinds=_kinds(data.get("data")),
                status="inactive" if operation == "pause" else "active",
                owner=self.participant_id,
            )
        elif operation in ("mix", "unmix"):
            _require(isinstance(data.get("data"), str), "Invalid view")
            await services.publication_update_in_views.acall(
                publication_id=publication_id, view=data["data"], add=operation == "mix", owner=self.participant_id
            )
        elif operation == "get-region":
            _require(isinstance(data.get("data"), str), "Invalid view")
            region = await database_sync_to_async(selectors.stream_region)(
                domain_id=self.domain_id, stream_id=publication_id, label=data["data"]
            )
            if region is None:
                raise SignalingError(f"Stream {publication_id} has no region in view {data['data']}")
            return {"region": region}
        elif operation == "set-region":
            target = data.get("data")
            _require(
                isinstance(target, dict)
                and isinstance(target.get("view"), str)
                and isinstance(target.get("region"), str),
                "Invalid region: data must be {view, region}",
            )
            await services.mixed_set_region.acall(
                publication_id=selectors.mixed_stream_id(self.domain_id, target["view"]),
                stream_id=publication_id,
                region_id=target["region"],
                owner=self.participant_id,
            )
        else:
            raise SignalingError(f"Operation not supported: {operation}")

    async def on_mixed_control(self, data: object):
        """Internal (a mixer job's only): ``{"id": mixedStreamId, "activeInput": streamId}``.

        The mixer hears the speaker; the room must hear it from the portal, whose channel
        layer reaches the participants (a worker's may be in-process)."""
        _require(isinstance(data, dict) and isinstance(data.get("activeInput"), str), "Invalid mixed-control data")
        await services.mixed_set_active_input.acall(
            publication_id=_session_id(data), stream_id=data["activeInput"], owner=self.participant_id
        )

    async def on_subscription_control(self, data: object):
        _require(isinstance(data, dict), "Invalid subscription-control data")
        subscription_id = _session_id(data)
        operation = data.get("operation")
        if operation == "update":
            await services.subscription_update.acall(
                subscription_id=subscription_id,
                changes=_subscription_changes(data.get("data")),
                owner=self.participant_id,
            )
            return
        _require(operation in ("pause", "play"), f"Operation not supported: {operation}")
        await services.subscription_set_track_status.acall(
            subscription_id=subscription_id,
            kinds=_kinds(data.get("data")),
            status="inactive" if operation == "pause" else "active",
            owner=self.participant_id,
        )

    async def on_text(self, data: object):
        _require(isinstance(data, dict), "Invalid text data")
        to = data.get("to")
        _require(isinstance(to, str) and bool(to), "Invalid receiver")
        await services.text_send.acall(participant_id=self.participant_id, to=to, message=data.get("message"))

    async def on_analytics_event(self, data: object):
        """An analytics job announces what its algorithm saw (no client sends this)."""
        event = data.get("event") if isinstance(data, dict) else None
        _require(isinstance(event, dict) and len(json.dumps(event)) <= MAX_ANALYTICS_EVENT, "Invalid analytics event")
        await services.analytics_event.acall(participant_id=self.participant_id, event=event)

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
        "mixed-control": on_mixed_control,
        "text": on_text,
        "analytics-event": on_analytics_event,
    }

    # --- messages from the platform (protocol: Channels calls the handler its ``type`` names) ---

    async def engine_notify(self, message: dict) -> None:
        notify = protocol.decode(message)
        if notify.exclude != self.participant_id:
            await self.notify(notify.event, notify.data)

    async def engine_drop(self, message: dict) -> None:
        await self.notify("drop")
        self.closing = self.leaving = True
        await self.close()
        # The server closes: clean up now rather than wait for the client's close frame.
        await self.disconnect(1000)

    async def engine_permission(self, message: dict) -> None:
        # Permission is read from the database on every publish/subscribe; nothing is cached.
        return None

    async def engine_progress(self, message: dict) -> None:
        await self.notify("progress", protocol.decode(message).data)

    async def engine_session_ready(self, message: dict) -> None:
        ready = protocol.decode(message)
        if ready.kind == "publication":
            await services.publication_ready.acall(publication_id=ready.session, formats=ready.formats)
        else:
            await database_sync_to_async(services.subscription_ready)(subscription_id=ready.session)
        await self.notify("progress", {"id": ready.transport, "sessionId": ready.session, "status": "ready"})

    async def engine_session_failed(self, message: dict) -> None:
        failed = protocol.decode(message)
        await services.session_failed.acall(session_id=failed.session, kind=failed.kind)
        await self.notify(
            "progress", {"id": failed.transport, "sessionId": failed.session, "status": "error", "data": failed.reason}
        )

    async def engine_session_parameters(self, message: dict) -> None:
        measured = protocol.decode(message)
        await services.publication_parameters.acall(publication_id=measured.session, parameters=measured.parameters)


class SignalingConsumer(SignalingSession, AsyncWebsocketConsumer):
    """The session over JSON WebSocket frames (``/ws/signaling/``, docs/signaling.md)."""

    async def __call__(self, scope, receive, send) -> None:
        lifecycle.track_connection()
        try:
            await super().__call__(scope, receive, send)
        except BaseException as exc:
            # The server is stopping (``lifecycle.shutdown`` cancels us), or a crash (e.g. the
            # channel layer is unreachable) closed the socket with 1011 and no websocket.disconnect
            # will reach us: leave now, no parking, rather than keep a ghost's seat.
            self.leaving = True
            await self.disconnect(1001 if isinstance(exc, asyncio.CancelledError) else 1011)
            raise

    async def connect(self) -> None:
        await self.accept()
        await self.start()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        request_id, valid = None, False
        if len(text_data or "") <= settings.SIGNALING_MAX_FRAME_LENGTH:
            try:
                frame = json.loads(text_data or "")
                request_id = frame.get("id") if isinstance(frame, dict) else None
                valid = (
                    isinstance(frame, dict) and frame.get("type") == "request" and isinstance(frame.get("event"), str)
                )
                valid = valid and isinstance(request_id, int) and not isinstance(request_id, bool)
            except (ValueError, TypeError, RecursionError):  # RecursionError: nesting too deep to parse
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

    async def _send(self, frame: dict) -> None:
        if not self.closing:
            await self.send(text_data=json.dumps(frame, separators=(",", ":")))

    async def notify(self, event: str, data: object = None) -> None:
        await self._send({"type": "notification", "event": event, "data": data})

    async def close(self, code: int | bool | None = None, reason: str | None = None) -> None:
        await AsyncWebsocketConsumer.close(self, code, reason)
