"""A Python stand-in of the OWT JS SDK's ``ConferenceClient``: socket.io, one peer connection.

It follows the SDK's own sequences (owt-client-javascript ``conference/channel.js`` and
``signaling.js``), so tests and the benchmark can check the portal against what the
unmodified SDK does without a browser:

* socket.io (python-socketio's client; polling then the WebSocket upgrade by default),
  ``emit(name, data, ack)`` answered ``ack(status, data)``, login with protocol 1.2 and
  ``userAgent.sdk.type = "JavaScript"``;
* **one RTCPeerConnection per conference** (max-bundle, as the SDK sets on Chrome): the
  first publish/subscribe has no ``transport.id``, every later one carries the returned
  ``transportId`` and a new offer with all m-lines so far; negotiations are serialized
  (the SDK's ``_chainSdpPromise``); an unpublished or unsubscribed session's m-lines stay in
  later offers (the SDK does not renegotiate them away itself);
* a session resolves on ``progress {id: transportId, sessionId, status: "ready"}``.

    async with SdkFlowClient(base_url) as client:
        await client.join(token)
        publication = await client.publish([SyntheticVideoTrack()])
        subscription = await client.subscribe(stream_id, audio=False)
        frame = await subscription.tracks["video"].recv()
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import socketio
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCRtpTransceiver, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from streamengine.client import SignalingError
from streamengine.media.ice import rtc_configuration

USER_AGENT = {"sdk": {"type": "JavaScript", "version": "5.1"}, "runtime": {"name": "aiortc"}}


@dataclass
class SdkSession:
    """A publication or subscription on the shared transport."""

    id: str
    transceivers: list[RTCRtpTransceiver]
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    error: str | None = None
    tracks: dict[str, MediaStreamTrack] = field(default_factory=dict)  # subscriptions: by kind


class SdkFlowClient:
    def __init__(self, url: str, *, transports: list[str] | None = None) -> None:
        """``url``: the portal, e.g. ``http://127.0.0.1:8080`` (socket.io at ``/socket.io/``)."""
        self.url = url
        self.transports = transports or ["polling", "websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.pc = RTCPeerConnection(
            RTCConfiguration(iceServers=rtc_configuration().iceServers, bundlePolicy=RTCBundlePolicy.MAX_BUNDLE)
        )
        self.transport_id: str | None = None
        self.sessions: dict[str, SdkSession] = {}
        self.notifications: asyncio.Queue = asyncio.Queue()
        self.negotiation = asyncio.Lock()
        self.answered = asyncio.Event()
        self.info: dict = {}
        for event in ("participant", "text", "stream", "progress", "drop"):
            self.sio.on(event, self._notification_handler(event))

    async def __aenter__(self) -> SdkFlowClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def connect(self) -> None:
        await self.sio.connect(self.url, socketio_path="socket.io", transports=self.transports)

    async def close(self) -> None:
        if self.sio.connected:
            if self.info:
                with contextlib.suppress(SignalingError, TimeoutError, socketio.exceptions.SocketIOError):
                    await self.request("logout", timeout=2)
            await self.sio.disconnect()
        await self.pc.close()

    def _notification_handler(self, event: str):
        async def handle(data: object = None) -> None:
            if event == "progress" and isinstance(data, dict):
                await self._progress(data)
            self.notifications.put_nowait((event, data))

        return handle

    async def _progress(self, data: dict) -> None:
        status = data.get("status")
        if status == "soac" and (data.get("data") or {}).get("type") == "answer":
            await self.pc.setRemoteDescription(RTCSessionDescription(**data["data"]))
            self.answered.set()
        session = self.sessions.get(data.get("sessionId") or "")
        if session is not None and status == "ready":
            session.ready.set()
        elif session is not None and status == "error":
            session.error = str(data.get("data"))
            session.ready.set()
            self.answered.set()  # a refused session gets no answer: the next negotiation goes on (SDK)

    async def request(self, event: str, data: object = None, timeout: float = 10.0) -> object:
        """``emit(event, data, ack)``; the ack data, or :class:`SignalingError` on ``error``."""
        args = () if data is None else (data,)
        ack = await self.sio.call(event, *args, timeout=timeout)
        status, result = (ack[0], ack[1] if len(ack) > 1 else None) if isinstance(ack, tuple) else (ack, None)
        if status not in ("ok", "success"):
            raise SignalingError(result)
        return result

    async def wait_for(self, event: str, predicate=lambda data: True, timeout: float = 10.0):
        async with asyncio.timeout(timeout):
            while True:
                name, data = await self.notifications.get()
                if name == event and predicate(data):
                    return data

    async def join(self, token: str) -> dict:
        self.info = await self.request("login", {"token": token, "userAgent": USER_AGENT, "protocol": "1.2"})
        return self.info

    async def _negotiate(self, event: str, transceivers: list[RTCRtpTransceiver], data: dict, timeout: float):
        """Offer (all m-lines so far), send the request on the shared transport, then the offer."""
        async with self.negotiation:
            await self.pc.setLocalDescription(await self.pc.createOffer())
            offer = self.pc.localDescription
            tracks = data["media"]["tracks"]
            for track, transceiver in zip(tracks, transceivers, strict=True):
                track["mid"] = transceiver.mid
            ack = await self.request(event, {**data, "transport": {"id": self.transport_id, "type": "webrtc"}})
            if self.transport_id is not None and ack["transportId"] != self.transport_id:
                raise SignalingError(f"Server returns conflict ID: {ack['transportId']}")
            self.transport_id = ack["transportId"]
            session = self.sessions[ack["id"]] = SdkSession(ack["id"], transceivers)
            self.answered.clear()
            await self.request("soac", {"id": self.transport_id, "signaling": {"type": offer.type, "sdp": offer.sdp}})
            async with asyncio.timeout(timeout):
                await self.answered.wait()  # the next negotiation waits for this answer (SDK order)
        async with asyncio.timeout(timeout):
            await session.ready.wait()
        if session.error:
            raise SignalingError(session.error)
        return session

    async def publish(self, tracks: list[MediaStreamTrack], *, timeout: float = 15.0) -> SdkSession:
        transceivers = [self.pc.addTransceiver(track, direction="sendonly") for track in tracks]
        media = {"tracks": [{"type": t.kind, "source": "mic" if t.kind == "audio" else "camera"} for t in transceivers]}
        return await self._negotiate("publish", transceivers, {"media": media, "attributes": {}}, timeout)

    async def subscribe(
        self,
        stream_id: str,
        *,
        audio: bool = True,
        video: bool = True,
        video_parameters: dict | None = None,
        timeout: float = 15.0,
    ) -> SdkSession:
        kinds = [kind for kind, wanted in (("audio", audio), ("video", video)) if wanted]
        transceivers = [self.pc.addTransceiver(kind, direction="recvonly") for kind in kinds]
        tracks = []
        for kind in kinds:
            track = {"type": kind, "from": stream_id}
            if kind == "video" and video_parameters:
                track["parameters"] = video_parameters
            tracks.append(track)
        session = await self._negotiate("subscribe", transceivers, {"media": {"tracks": tracks}}, timeout)
        session.tracks = {t.kind: t.receiver.track for t in transceivers}
        return session

    async def unpublish(self, session: SdkSession) -> None:
        await self.request("unpublish", {"id": session.id})
        for transceiver in session.transceivers:
            transceiver.sender.replaceTrack(None)
            transceiver.direction = "inactive"  # what removeTrack leaves of a sendonly transceiver
        self.sessions.pop(session.id, None)

    async def unsubscribe(self, session: SdkSession) -> None:
        await self.request("unsubscribe", {"id": session.id})
        for track in session.tracks.values():
            track.stop()  # the SDK stops the track and leaves the transceiver recvonly
        self.sessions.pop(session.id, None)

    async def update(self, session: SdkSession, video_parameters: dict) -> None:
        """``Subscription.applyOptions``: the SDK sends every parameter key, unset ones as null."""
        parameters = {"resolution": None, "framerate": None, "bitrate": None, "keyFrameInterval": None}
        await self.request(
            "subscription-control",
            {
                "id": session.id,
                "operation": "update",
                "data": {"video": {"parameters": {**parameters, **video_parameters}}},
            },
        )

    async def text(self, to: str, message: object) -> None:
        await self.request("text", {"to": to, "message": message})
