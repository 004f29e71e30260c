"""A room's admin page: common settings as fields, the rest as JSON, validated like the API."""

import json

from conference.models import Room
from streamengine.models import Domain


def room_form(admin_client, room_id: str) -> dict:
    page = admin_client.get(f"/admin/conference/room/{room_id}/change/")
    assert page.status_code == 200
    form = page.context["adminform"].form
    return {
        "name": form.initial["name"],
        "participantLimit": form.initial["participantLimit"],
        "inputLimit": form.initial["inputLimit"],
        "other_settings": json.dumps(form.initial["other_settings"]),
    }


def test_room_page_is_a_form_and_saves_through_the_api_rules(admin_client, api):
    room = api.create_room("visible", {"participantLimit": 7})
    data = room_form(admin_client, room["_id"])
    assert data["participantLimit"] == 7 and "roles" in json.loads(data["other_settings"])
    other = json.loads(data["other_settings"])
    other["roles"] = [r for r in other["roles"] if r["role"] != "guest"]
    data.update(name="renamed", participantLimit=3, other_settings=json.dumps(other))
    response = admin_client.post(f"/admin/conference/room/{room['_id']}/change/", data)
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = Room.objects.get(id=room["_id"])
    assert stored.name == "renamed" and stored.config["participantLimit"] == 3
    assert "guest" not in [r["role"] for r in stored.config["roles"]]
    # The engine's copy follows, as after a PUT.
    assert Domain.objects.get(id=room["_id"]).config["participantLimit"] == 3


def test_room_page_refuses_what_the_api_refuses(admin_client, api):
    room = api.create_room("strict", {})
    data = room_form(admin_client, room["_id"])
    other = json.loads(data["other_settings"])
    other["views"] = [{"label": "a"}, {"label": "a"}]
    data["other_settings"] = json.dumps(other)
    response = admin_client.post(f"/admin/conference/room/{room['_id']}/change/", data)
    assert response.status_code == 200
    assert "view labels must be unique" in response.content.decode()
    assert Room.objects.get(id=room["_id"]).config["views"][0]["label"] == "common"
    assert admin_client.get("/admin/conference/room/add/").status_code == 403
