"""Builders of live engine state and an MAuth-signing test client (shared by the REST tests).

The rows are what the signaling consumer and the SFU write while clients are connected;
the read-side tests create them directly so they can check every field and tenant edge.
"""

from __future__ import annotations

import json
import secrets

from django.utils import timezone
from rest_framework.test import APIClient

from conference import services as conference_services
from conference.models import Room, Service
from owt import mauth
from streamengine import services as engine_services
from streamengine.models import Node, Participant, Publication, Subscription

PRESENTER = {"publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}}


class MAuthClient:
    """DRF's test client with a fresh MAuth header (new cnonce) on every request."""

    def __init__(self, service: Service, key: str, *, user: str | None = None, role: str | None = None):
        self.client = APIClient()
        self.service, self.key, self.user, self.role = service, key, user, role

    def _headers(self) -> dict:
        header = mauth.build_header(service_id=self.service.id, key=self.key, user=self.user, role=self.role)
        return {"HTTP_AUTHORIZATION": header}

    def get(self, path: str, data: dict | None = None, **extra):
        return self.client.get(path, data, **self._headers(), **extra)

    def get_with_body(self, path: str, body: dict):
        """GET with a JSON body (how OWT's own clients pass list filters)."""
        return self.client.generic(
            "GET", path, data=json.dumps(body), content_type="application/json", **self._headers()
        )

    def post(self, path: str, body: object = None, **extra):
        return self.client.post(path, body, format="json", **self._headers(), **extra)

    def patch(self, path: str, body: object = None):
        return self.client.patch(path, body, format="json", **self._headers())

    def delete(self, path: str):
        return self.client.delete(path, **self._headers())


def tenant(name: str) -> tuple[Service, str, MAuthClient]:
    key = conference_services.service_key_generate()
    service = conference_services.service_create(name=name, key=key)
    return service, key, MAuthClient(service, key)


# The parts of OWT's default room document the engine and the live resources read.
ROOM_CONFIG = {
    "inputLimit": -1,
    "participantLimit": -1,
    "roles": [
        {"role": "presenter", **PRESENTER},
        {"role": "viewer", "publish": {"audio": False, "video": False}, "subscribe": {"audio": True, "video": True}},
    ],
    "views": [{"label": "common"}],
    "mediaOut": {
        "audio": [{"codec": "opus", "sampleRate": 48000, "channelNum": 2}, {"codec": "pcmu"}],
        "video": {
            "format": [{"codec": "vp8"}, {"codec": "h264", "profile": "CB"}, {"codec": "vp9"}],
            "parameters": {
                "resolution": ["x3/4", "x1/2", "hd720p", "vga", "qvga"],
                "framerate": [6, 12, 15, 24, 30, 48, 60],
                "bitrate": ["x0.8", "x0.6", "x0.4", "x0.2"],
                "keyFrameInterval": [100, 30, 5, 2, 1],
            },
        },
    },
    "transcoding": {
        "audio": True,
        "video": {
            "format": True,
            "parameters": {"resolution": True, "framerate": True, "bitrate": True, "keyFrameInterval": True},
        },
    },
    "notifying": {"participantActivities": True, "streamChange": True},
}


def streaming_room(tenant_name: str) -> tuple[Service, MAuthClient, Room, Publication]:
    """A tenant with a room in which a participant publishes a stream: what the REST tests of
    jobs over a stream (recordings, analytics, SIP calls, processors) start from."""
    service, _, client = tenant(tenant_name)
    created = room(service)
    return service, client, created, publication(participant(created.id))


def room(service: Service, name: str = "room", config: dict | None = None) -> Room:
    """A room and its engine domain, as conference.services.room_create leaves them."""
    config = json.loads(json.dumps(config or ROOM_CONFIG))
    created = Room.objects.create(service=service, name=name, config=config)
    engine_services.domain_configure(domain_id=created.id, owner=service.id, config=config)
    return created


def node(node_id: str = "node-1", *, agent: str = "agent-a") -> Node:
    return Node.objects.create(
        id=node_id,
        agent=agent,
        stream_addr={"ip": "127.0.0.1", "port": 0},
        load=0.25,
        embedded=True,
        heartbeat_at=timezone.now(),
    )


def participant(room_id: str, user: str = "alice", *, role: str = "presenter", on: Node | None = None) -> Participant:
    return Participant.objects.create(
        id=secrets.token_hex(10),
        domain_id=room_id,
        user=user,
        role=role,
        permission=PRESENTER,
        portal="specific.channel!abc",
        node=on,
        user_agent={"sdk": {"type": "JavaScript", "version": "5.0"}},
    )


def publication(owner: Participant, *, video: dict | None = None, data: bool = False) -> Publication:
    pub_id = secrets.token_hex(16)
    video = video or {"format": {"codec": "vp8"}, "parameters": {"resolution": {"width": 640, "height": 480}}}
    tracks = [
        {
            "id": f"{pub_id}-0",
            "type": "audio",
            "source": "mic",
            "format": {"codec": "opus", "sampleRate": 48000, "channelNum": 2},
            "status": "active",
            "mid": "0",
        },
        {"id": f"{pub_id}-1", "type": "video", "source": "camera", "status": "active", "mid": "1", **video},
    ]
    return Publication.objects.create(
        id=pub_id,
        domain_id=owner.domain_id,
        participant=owner,
        node=owner.node,
        media={"tracks": tracks},
        data=data,
        info={"owner": owner.id, "type": "webrtc", "inViews": [], "attributes": {"label": "cam"}},
        transport_id=pub_id,
        ready=True,
    )


def subscription(viewer: Participant, source: Publication) -> Subscription:
    sub_id = secrets.token_hex(16)
    tracks = [
        {"type": "audio", "from": source.id, "format": {"codec": "opus"}, "mid": "0", "status": "active"},
        {"type": "video", "from": source.id, "format": {"codec": "vp8"}, "mid": "1", "status": "active"},
    ]
    return Subscription.objects.create(
        id=sub_id,
        domain_id=viewer.domain_id,
        participant=viewer,
        node=viewer.node,
        media={"tracks": tracks},
        info={"owner": viewer.id, "type": "webrtc"},
        transport_id=sub_id,
        ready=True,
    )
