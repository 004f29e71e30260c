"""System checks of the secrets, and the same checks at server start.

``manage.py check`` (with or without ``--deploy``) and every management command that runs
checks (runplatform, medianode, migrate …) show them; daphne, a WSGI server and Celery run no
system checks, so their entry points call :func:`refuse_insecure_start`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured

from owt.secret_key import DEVELOPMENT_SECRET_KEY

logger = logging.getLogger(__name__)

ENVIRONMENTS = ("embedded", "production")
FIX = (
    "Set SECRET_KEY to a long random value (python -c 'import secrets; print(secrets.token_urlsafe(64))'), "
    "or start with bin/run, which keeps a generated key in var/secret_key."
)


@checks.register(checks.Tags.security)
def check_secret_key(app_configs: Iterable[Any] | None = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if settings.OWT_ENV not in ENVIRONMENTS:
        return [
            checks.Error(
                f"OWT_ENV is {settings.OWT_ENV!r}", hint=f"Use one of {', '.join(ENVIRONMENTS)}.", id="owt.E002"
            )
        ]
    if DEVELOPMENT_SECRET_KEY not in (settings.SECRET_KEY, *settings.SECRET_KEY_FALLBACKS):
        return []
    problem = (
        "SECRET_KEY (or one of SECRET_KEY_FALLBACKS) is the public development key: anyone can forge room "
        "tokens and peermetrics session JWTs and decrypt the stored service keys, the super service's included."
    )
    if settings.OWT_ENV == "production":
        return [checks.Error(problem, hint=FIX, id="owt.E001")]
    return [checks.Warning(problem, hint=FIX, id="owt.W001")]


def refuse_insecure_start() -> None:
    """Raise on a failed secret check (OWT_ENV=production), log a warning otherwise."""
    for message in check_secret_key():
        if message.is_serious():
            raise ImproperlyConfigured(f"{message.id}: {message.msg} {message.hint}")
        logger.warning("%s: %s %s", message.id, message.msg, message.hint)
