"""The portal's HTTP side under ASGI (owt/http.py): every request in one hop to a pool thread.

Through ``owt.asgi.application`` itself, in this process: bodies in and out, middleware
refusals, static files (WhiteNoise on the loop), and a view whose ``async_to_sync`` must
reach the loop that owns the in-memory channel layer (``/health/``'s round trip).
"""

from pathlib import Path

import httpx
import pytest

from owt.mauth import build_header

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
async def http():
    from owt.asgi import application

    transport = httpx.ASGITransport(app=application, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def service():
    from conference.services import service_create

    return service_create(name="asgi", key="asgi-key")


async def test_health_reaches_the_loop_s_channel_layer(http):
    response = await http.get("/health/")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "checks": {name: {"ok": True} for name in ("database", "broker", "channel_layer")},
    }


async def test_rest_round_trip_with_bodies(http, service):
    def auth() -> dict:
        return {"Authorization": build_header(service_id=service.id, key="asgi-key")}

    created = await http.post(
        "/v1/rooms", json={"name": "through asgi", "options": {"participantLimit": 3}}, headers=auth()
    )
    assert created.status_code == 200
    room = created.json()
    assert (room["name"], room["participantLimit"]) == ("through asgi", 3)
    listed = await http.get("/v1/rooms", headers=auth())
    assert listed.json() == [room]
    assert listed.headers["content-type"] == "application/json"
    assert int(listed.headers["content-length"]) == len(listed.content)
    token = await http.post(f"/v1/rooms/{room['_id']}/tokens", json={"user": "u", "role": "presenter"}, headers=auth())
    assert token.status_code == 200 and token.headers["content-type"].startswith("text/plain")
    missing = await http.get("/v1/rooms/000000000000000000000000", headers=auth())
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 1003


async def test_refused_before_a_view(http, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    response = await http.post(
        "/v1/rooms", content=b"{" + b" " * 200 + b"}", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert "error" in response.json()


async def test_static_files_are_served(http):
    response = await http.get("/static/owt/owt-client.js")
    assert response.status_code == 200
    assert response.content == (Path(__file__).parents[2] / "streamengine/static/owt/owt-client.js").read_bytes()
