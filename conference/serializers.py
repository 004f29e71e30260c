"""Wire formats of the OWT management API (services, rooms, tokens).

Room bodies are validated by :mod:`conference.roomconfig` (the schema with the reference's
defaults); the serializers here shape responses and document requests in the OpenAPI schema.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

import orjson
from rest_framework import serializers

from conference import selectors
from conference.models import Room, Service
from conference.roomconfig import decrypt_sip, in_key_order
from owt.parsers import QUERY_INTEGER_MAX
from streamengine.models import Token


def column_length(model: type, field: str) -> int:
    """The ``max_length`` of a text column, so a longer input is a 400 rather than a database error."""
    return model._meta.get_field(field).max_length


class ServiceOutput(serializers.Serializer):
    """``object(Service)``; ``key`` is the encrypted key, as the reference returns it."""

    _id = serializers.CharField()
    name = serializers.CharField()
    key = serializers.CharField()
    encrypted = serializers.BooleanField()
    rooms = serializers.ListField(child=serializers.CharField())

    def to_representation(self, service: Service) -> dict[str, Any]:
        return {
            "_id": service.id,
            "name": service.name,
            "key": service.key_encrypted,
            "encrypted": True,
            "rooms": [room.id for room in service.rooms.all()],
        }


class ServiceCreateInput(serializers.Serializer):
    name = serializers.CharField(max_length=column_length(Service, "name"))
    key = serializers.CharField()


class RoomOutput(serializers.Serializer):
    """``object(Room)``: ``_id`` (and ``id``, the same), ``name`` and the room settings."""

    _id = serializers.CharField()
    id = serializers.CharField()
    name = serializers.CharField()
    inputLimit = serializers.IntegerField()  # noqa: N815 (wire names)
    participantLimit = serializers.IntegerField()  # noqa: N815
    selectActiveAudio = serializers.BooleanField()  # noqa: N815
    enableBandwidthAdaptation = serializers.BooleanField()  # noqa: N815
    roles = serializers.JSONField()
    views = serializers.JSONField()
    mediaIn = serializers.JSONField()  # noqa: N815
    mediaOut = serializers.JSONField()  # noqa: N815
    transcoding = serializers.JSONField()
    notifying = serializers.JSONField()
    sip = serializers.JSONField(required=False)

    def to_representation(self, room: Room) -> dict[str, Any]:
        return {"_id": room.id, "id": room.id, "name": room.name, **in_key_order(decrypt_sip(room.config))}

    @classmethod
    def rendered(cls, room: Room) -> orjson.Fragment:
        """The room's document as JSON (for ``owt.renderers.JSONRenderer``), encoded once per
        version of the room: putting a stored room back in key order cost more than the rest of
        a ``GET /v1/rooms``."""
        key = (room.id, room.updated_at)
        fragment = _rendered.get(key)
        if fragment is None:
            fragment = orjson.Fragment(orjson.dumps(cls().to_representation(room)))
            _rendered.put(key, fragment)
        return fragment

    @classmethod
    def rendered_many(cls, versions: list[tuple[str, datetime]]) -> list[orjson.Fragment]:
        """:meth:`rendered` of each ``(room id, updated_at)`` (``selectors.room_versions``): the rooms
        not rendered yet are loaded in one query; one deleted meanwhile is left out."""
        missing = [room_id for room_id, version in versions if (room_id, version) not in _rendered]
        rooms = selectors.rooms_by_id(room_ids=missing) if missing else {}
        fragments = []
        for room_id, version in versions:
            fragment = _rendered.get((room_id, version))
            if fragment is None:
                if room_id not in rooms:
                    continue
                fragment = cls.rendered(rooms[room_id])  # the room as loaded: that version or a newer one
            fragments.append(fragment)
        return fragments


class RenderedRooms:
    """Encoded room documents by (room id, ``updated_at``), at most ``size``, oldest dropped first.

    Every write of a room saves ``updated_at`` (``auto_now``), so a changed room is a new key
    and each portal process renders it again; entries of old versions just age out.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.items: dict[tuple[str, datetime], orjson.Fragment] = {}
        self.lock = threading.Lock()

    def __contains__(self, key: tuple[str, datetime]) -> bool:
        return key in self.items

    def get(self, key: tuple[str, datetime]) -> orjson.Fragment | None:
        return self.items.get(key)

    def put(self, key: tuple[str, datetime], fragment: orjson.Fragment) -> None:
        with self.lock:
            self.items[key] = fragment
            while len(self.items) > self.size:
                del self.items[next(iter(self.items))]


_rendered = RenderedRooms(size=4096)


class RoomCreateInput(serializers.Serializer):
    name = serializers.CharField(help_text="Name of the room")
    options = serializers.JSONField(required=False, help_text="Any subset of object(Room); defaults fill the rest")


class RoomUpdateInput(serializers.Serializer):
    """Any subset of ``object(Room)`` (PUT: top-level keys replace; PATCH: JSON merge patch)."""

    name = serializers.CharField(required=False)
    inputLimit = serializers.IntegerField(required=False)  # noqa: N815
    participantLimit = serializers.IntegerField(required=False)  # noqa: N815
    roles = serializers.JSONField(required=False)
    views = serializers.JSONField(required=False)
    mediaIn = serializers.JSONField(required=False)  # noqa: N815
    mediaOut = serializers.JSONField(required=False)  # noqa: N815
    transcoding = serializers.JSONField(required=False)
    notifying = serializers.JSONField(required=False)
    sip = serializers.JSONField(required=False)


class RoomListQuery(serializers.Serializer):
    """1-based ``page``; ``per_page`` > 0 turns pagination on (otherwise every room is returned)."""

    page = serializers.IntegerField(required=False, max_value=QUERY_INTEGER_MAX)
    per_page = serializers.IntegerField(required=False, max_value=QUERY_INTEGER_MAX)


class Preference(serializers.Serializer):
    isp = serializers.CharField(required=False)
    region = serializers.CharField(required=False)


class TokenCreateInput(serializers.Serializer):
    user = serializers.CharField(
        max_length=column_length(Token, "user"),
        help_text="Participant's user id (the MAuth header's username wins if given)",
    )
    role = serializers.CharField(
        max_length=column_length(Token, "role"),
        help_text="One of the room's roles (the MAuth header's role wins if given)",
    )
    preference = Preference(required=False)
