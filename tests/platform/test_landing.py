"""The landing page at /: what runs, every page, where the credentials are; /favicon.ico; admin's "View site"."""

import pytest
from django.conf import settings

from owt.views import LANDING_LINKS


@pytest.fixture
def no_worker_wait(monkeypatch):
    """No worker runs in these tests: do not wait the ping's full timeout on every page."""
    from owt import views

    monkeypatch.setattr(views, "WORKER_PING_SECONDS", 0.1)


@pytest.mark.django_db
def test_landing_page_shows_every_part_and_every_page(client, no_worker_wait):
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    for name in ("database", "broker", "channel layer", "workers", "media nodes"):
        assert f'data-check="{name}"' in page
    for _, url, _ in LANDING_LINKS:
        assert f'href="{url}"' in page
    assert "admin-password.txt" in page and "owt_bootstrap" in page
    # Without a worker or a call yet: the workers are reported down, the media node as not started
    # (embedded: it starts with the first call; on the Redis layer nodes are processes of their own).
    assert "no worker answered" in page
    if settings.MEDIA_NODE_EMBEDDED:
        assert "the embedded node starts with the first call" in page
    else:
        assert "no media node heartbeats: start one with manage.py medianode" in page


@pytest.mark.django_db
def test_landing_page_shows_failure_details_to_staff_only(client, no_worker_wait, monkeypatch, django_user_model):
    from owt import views

    def broken():
        raise ConnectionError("broker down at 10.0.0.7")

    monkeypatch.setitem(views.CHECKS, "broker", broken)
    assert "10.0.0.7" not in client.get("/").content.decode()
    client.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    assert "ConnectionError: broker down at 10.0.0.7" in client.get("/").content.decode()


@pytest.mark.django_db
def test_every_landing_link_answers(admin_client, no_worker_wait):
    for title, url, _ in LANDING_LINKS:
        response = admin_client.get(url)
        assert response.status_code == 200, (title, url, response.status_code)


@pytest.mark.django_db
def test_media_nodes_line_counts_live_and_silent_nodes(settings):
    from datetime import timedelta

    from django.utils import timezone

    from streamengine.models import Node
    from streamengine.selectors import media_nodes_health

    settings.MEDIA_NODE_EMBEDDED = False
    assert media_nodes_health()["ok"] is False
    Node.objects.create(id="old", agent="h", heartbeat_at=timezone.now() - timedelta(hours=1))
    Node.objects.create(id="new", agent="h", heartbeat_at=timezone.now())
    assert media_nodes_health() == {"ok": True, "live": 1, "silent": 1}


def test_favicon_points_at_the_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == "/static/owt/favicon.svg"


@pytest.mark.django_db
def test_admin_view_site_link_leads_to_the_landing_page(admin_client, no_worker_wait):
    index = admin_client.get("/admin/").content.decode()
    assert 'href="/">View site</a>' in index
    assert admin_client.get("/").status_code == 200
