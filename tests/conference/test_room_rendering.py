"""Rooms are answered from renderings cached per room version, and MAuth from credentials kept a
few seconds: neither may ever show a stale room or let a deleted service in on this process."""

import json

import pytest

from conference import services
from conference.models import Room
from conference.serializers import RoomOutput
from owt.client import OwtApiError


def test_every_write_shows_in_list_and_detail(api):
    rooms = [api.create_room(f"r{i}") for i in range(3)]
    assert api.list_rooms() == rooms
    # Several writes within a second: each is a new version of the room.
    for limit in (5, 6, 7):
        api.patch_room(rooms[1]["_id"], {"participantLimit": limit})
        assert api.get_room(rooms[1]["_id"])["participantLimit"] == limit
        assert [room["participantLimit"] for room in api.list_rooms()] == [-1, limit, -1]
    api.update_room(rooms[2]["_id"], {"name": "renamed"})
    assert [room["name"] for room in api.list_rooms()] == ["r0", "r1", "renamed"]
    api.delete_room(rooms[0]["_id"])
    assert [room["_id"] for room in api.list_rooms()] == [rooms[1]["_id"], rooms[2]["_id"]]


def test_a_write_outside_the_api_shows_too(api):
    room_id = api.create_room("r")["_id"]
    assert api.get_room(room_id)["inputLimit"] == -1
    services.room_update(room=Room.objects.get(id=room_id), body={"inputLimit": 2}, merge="deep")
    assert api.get_room(room_id)["inputLimit"] == 2
    assert api.list_rooms()[0]["inputLimit"] == 2


def test_cached_rendering_reads_like_the_serializer_key_order_included(api, http):
    room_id = api.create_room("ordered", {"views": [{"label": "a"}, {"label": "b"}]})["_id"]
    api.list_rooms()  # rendered and cached
    expected = json.dumps([RoomOutput().to_representation(Room.objects.get(id=room_id))], separators=(",", ":"))
    response = http.get("/v1/rooms", headers={"Authorization": api.authorization()})
    assert response.content.decode() == expected


def test_a_deleted_service_is_refused_at_once(superapi, api):
    assert api.list_rooms() == []  # its credentials are now kept by this process
    superapi.delete_service(api.service_id)
    with pytest.raises(OwtApiError) as info:
        api.list_rooms()
    assert (info.value.status, info.value.code) == (401, 1101)
