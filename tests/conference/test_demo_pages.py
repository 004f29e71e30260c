"""Sample pages: the join page and its config, the JS client served, quick-demo protection."""

import base64
import json
from urllib.parse import parse_qs, urlparse

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conference.services import service_bootstrap_super
from streamengine import services as engine_services
from tests.streamengine import live_state as ls


def page_config(response) -> dict:
    html = response.content.decode()
    start = html.index('id="owt-config"')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


def test_join_page_config_and_token(client):
    response = client.get("/demo/", {"token": "abc", "autojoin": "1"})
    assert response.status_code == 200
    assert page_config(response) == {
        "iceServers": [],
        "autojoin": True,
        "watch": "all",
        "publish": True,
        "view": False,
        "signalingUrl": None,
    }
    assert b">abc</textarea>" in response.content
    assert b'src="/static/owt/demo.js"' in response.content
    assert b"The viewer layout" not in response.content


def test_the_viewer_layout_watches_only(client):
    response = client.get("/demo/", {"token": "abc", "autojoin": "1", "publish": "0", "view": "1", "watch": "mix"})
    config = page_config(response)
    assert (config["publish"], config["view"], config["watch"]) == (False, True, "mix")
    assert b"The viewer layout" in response.content


@pytest.mark.parametrize(("query", "watch"), [("mix", "mix"), ("none", "none"), ("everything", "all")])
def test_join_page_watch_choice(client, query, watch):
    assert page_config(client.get("/demo/", {"watch": query}))["watch"] == watch


def test_join_page_escapes_token(client):
    response = client.get("/demo/", {"token": "</textarea><script>alert(1)</script>"})
    assert b"<script>alert(1)</script>" not in response.content


@pytest.mark.parametrize("name", ["owt-client.js", "demo.js"])
def test_client_module_is_served(client, name):
    response = client.get(f"/static/owt/{name}")
    assert response.status_code == 200
    assert "javascript" in response["Content-Type"]
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"export" in body or b"import" in body


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("staff", password="pw", is_staff=True)


def test_quick_demo_needs_staff(db, client, settings, staff):
    settings.DEBUG = False
    settings.OWT_DEMO_OPEN = False
    response = client.get("/demo/quick")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=")
    get_user_model().objects.create_user("plain", password="pw")
    plain = Client()
    plain.login(username="plain", password="pw")
    assert plain.get("/demo/quick").status_code == 403
    client.force_login(staff)
    assert client.get("/demo/quick").status_code == 200


def test_quick_demo_open_setting(db, client, settings):
    settings.OWT_DEMO_OPEN = True
    assert client.get("/demo/quick").status_code == 200


def test_quick_join_mints_a_token_for_demo_rooms_only(db, client, settings):
    settings.OWT_DEMO_OPEN = True
    super_service, _ = service_bootstrap_super()
    room = ls.room(super_service, "demo")
    response = client.get(f"/demo/quick/{room.id}/join", {"user": "alice"}, HTTP_HOST="127.0.0.1:8123")
    assert response.status_code == 302
    location = urlparse(response["Location"])
    assert location.path == "/demo/"
    query = parse_qs(location.query)
    assert query["autojoin"] == ["1"]
    token_text = query["token"][0]
    assert json.loads(base64.b64decode(token_text))["host"] == "127.0.0.1:8123"
    token = engine_services.token_consume(token_string=token_text)
    assert (token.domain_id, token.user, token.role) == (room.id, "alice", "presenter")

    tenant, _, _ = ls.tenant("tenant-a")
    foreign = ls.room(tenant, "not a demo room")
    assert client.get(f"/demo/quick/{foreign.id}/join").status_code == 404
    assert client.get(f"/demo/quick/{room.id}/join", {"role": "nobody"}).status_code == 400


def test_quick_demo_creates_a_super_service_room(db, client, settings):
    from conference.models import Room
    from streamengine.models import Domain

    settings.OWT_DEMO_OPEN = True
    response = client.post("/demo/quick", {"name": "standup"})
    assert response.status_code == 200
    room = Room.objects.get(name="standup")
    assert room.service.is_super
    assert room.service_id == Domain.objects.get(id=room.id).owner
    html = response.content.decode()
    assert f"/demo/quick/{room.id}/join" in html
    assert "join as viewer" in html
