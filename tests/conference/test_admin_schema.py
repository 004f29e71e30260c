"""Admin pages for services and rooms; the OpenAPI schema documents the management routes."""

from conference.models import Room


def test_admin_pages(admin_client, api):
    room = api.create_room("visible", {"participantLimit": 7})
    assert admin_client.get("/admin/conference/service/").status_code == 200
    assert b"tenant-a" in admin_client.get("/admin/conference/service/").content
    page = admin_client.get(f"/admin/conference/room/{room['_id']}/change/")
    assert page.status_code == 200
    assert page.context["adminform"].form.initial["participantLimit"] == 7
    assert admin_client.get("/admin/streamengine/token/").status_code == 200
    assert Room.objects.filter(id=room["_id"]).exists()


def test_schema_documents_routes_with_examples(client, db):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    for path in ("/services", "/services/{service_id}", "/v1/rooms", "/v1/rooms/{room_id}", "/v1/rooms/{room_id}/tokens",
                 "/v1.1/rooms", "/v1.1/rooms/{room_id}", "/v1.1/rooms/{room_id}/tokens"):  # fmt: skip
        assert path in paths, path
    assert set(paths["/v1/rooms/{room_id}"]) >= {"get", "put", "patch", "delete"}
    assert "/v1/rooms/" not in paths  # slash variants work but are not listed twice
    create = paths["/v1/rooms"]["post"]
    assert "Minimal" in create["requestBody"]["content"]["application/json"]["examples"]
    assert "MAuth" in schema["components"]["securitySchemes"]
