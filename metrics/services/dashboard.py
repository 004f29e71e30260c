"""Dashboard writes: organizations and apps of the signed-in user (selectors check membership)."""

from __future__ import annotations

import secrets
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F

from metrics.errors import PeermetricsError
from metrics.ingest import forget_app
from metrics.models import App, DashboardToken, Organization, new_api_key, token_digest


@transaction.atomic
def dashboard_token_create(*, user: Any) -> str:
    """A new dashboard API token of ``user``; the key is returned once and only its digest stored."""
    key = secrets.token_hex(20)
    DashboardToken.objects.create(digest=token_digest(key), user=user)
    return key


@transaction.atomic
def organization_create(*, user: Any, name: str) -> Organization:
    organization = Organization.objects.create(name=name[:64])
    organization.members.add(user)
    return organization


@transaction.atomic
def organization_update(*, organization: Organization, name: str) -> Organization:
    organization.name = name[:64]
    organization.save(update_fields=["name"])
    return organization


@transaction.atomic
def organization_delete(*, organization: Organization) -> None:
    organization.is_active = False
    organization.save(update_fields=["is_active"])
    organization.apps.update(is_active=False)


@transaction.atomic
def app_create(
    *, organization: Organization, name: str, domain: str = "", recording: bool = True, interval: int = 10000
) -> App:
    return App.objects.create(
        organization=organization, name=name[:64], domain=domain, recording=recording, interval=interval
    )


@transaction.atomic
def app_update(*, app: App, **fields: Any) -> App:
    for key, value in fields.items():
        setattr(app, key, value)
    app.save(update_fields=list(fields))
    return app


@transaction.atomic
def app_delete(*, app: App) -> None:
    app.is_active = False
    app.save(update_fields=["is_active"])


def app_reset_key(*, app: App) -> App:
    """A fresh 32-char key (the reference produced 36 chars and always failed validation).

    The key generation moves on with it, so every SDK token issued under the old key is
    refused from now on (:func:`metrics.tokens.verify_generation`).
    """
    for _ in range(3):
        try:
            with transaction.atomic():
                app.api_key = new_api_key()
                app.key_generation = F("key_generation") + 1
                app.save(update_fields=["api_key", "key_generation"])
            app.refresh_from_db(fields=["key_generation"])
            forget_app(app.pk)
            return app
        except IntegrityError:  # a collision of 128 random bits: try again
            continue
    raise PeermetricsError("unknown_error", "could not generate a unique key")
