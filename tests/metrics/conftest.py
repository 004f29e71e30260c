"""Fixtures for the metrics tests: tenants, an SDK-like HTTP client, eager Celery."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from metrics.models import App, Organization


@pytest.fixture
def eager_celery():
    from owt.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield app
    app.conf.task_always_eager = previous


class Sdk:
    """Speaks like @peermetrics/sdk: text/plain JSON bodies, token in the body."""

    def __init__(self, client: Client | None = None, origin: str | None = "https://meet.example.com"):
        self.client = client or Client()
        self.origin = origin
        self.token: str | None = None
        self.last_detail: str | None = None

    def call(self, method: str, path: str, body: Any, *, token: bool = True) -> tuple[int, Any]:
        if isinstance(body, dict) and token and self.token and "token" not in body:
            body = {**body, "token": self.token}
        headers = {"HTTP_ORIGIN": self.origin} if self.origin else {}
        raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
        response = self.client.generic(method, f"/metrics/v1/{path}", raw, content_type="text/plain", **headers)
        parsed = json.loads(response.content) if response.content else None
        # The reference's exact {"error_code","message"}; our extra "detail" is kept aside.
        self.last_detail = parsed.pop("detail", None) if isinstance(parsed, dict) else None
        return response.status_code, parsed

    def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return self.call("POST", path, body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return self.call("PUT", path, body, **kwargs)

    def join(self, api_key: str, conference: str, user: str, name: str = "") -> None:
        """initialize + POST /sessions, as ``new PeerMetrics(...).initialize()`` does."""
        status, body = self.post(
            "initialize",
            {
                "apiKey": api_key,
                "conferenceId": conference,
                "conferenceName": "Standup",
                "userId": user,
                "userName": name or user,
            },
            token=False,
        )
        assert status == 200, body
        assert body["getStatsInterval"] == 10000 and body["batchConnectionEvents"] is False and "urls" not in body
        from metrics.testing import session_body

        status, session = self.post("sessions", session_body(body["token"]), token=False)
        assert status == 200, session
        self.token = session["token"]


@pytest.fixture
def organization(django_user_model):
    user = django_user_model.objects.create_user("owner", password="pw")
    organization = Organization.objects.create(name="Acme")
    organization.members.add(user)
    return organization


@pytest.fixture
def app(organization):
    return App.objects.create(organization=organization, name="Meet")


@pytest.fixture
def sdk():
    return Sdk()


@pytest.fixture
def sdk_factory():
    return Sdk
