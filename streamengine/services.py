"""Writes to the engine's state. Every caller (REST, signaling, admin, Celery) goes through here."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from streamengine.exceptions import DomainNotFound, InvalidTokenRequest, TokenAlreadyUsed, TokenExpired
from streamengine.models import Domain, Token
from streamengine.tokens import TokenString, sign


def domain_configure(*, domain_id: str, owner: str, config: dict) -> Domain:
    """Create or update the engine's copy of a room's settings."""
    domain, _ = Domain.objects.update_or_create(id=domain_id, defaults={"owner": owner, "config": config})
    return domain


def domain_delete(*, domain_id: str) -> None:
    Domain.objects.filter(id=domain_id).delete()


def token_create(
    *,
    domain_id: str,
    user: str,
    role: str,
    origin: dict | None = None,
    host: str | None = None,
    secure: bool | None = None,
) -> str:
    """Issue a one-time token for ``domain_id`` and return the token string clients send at login."""
    domain = Domain.objects.filter(id=domain_id).first()
    if domain is None:
        raise DomainNotFound()
    if not isinstance(user, str) or not user or not isinstance(role, str) or domain.role(role) is None:
        raise InvalidTokenRequest()
    host = host or settings.OWT_PORTAL_HOST
    token = Token.objects.create(
        domain=domain,
        user=user,
        role=role,
        origin=origin or {"isp": "isp", "region": "region"},
        host=host,
        secure=settings.OWT_PORTAL_SECURE if secure is None else secure,
        expires_at=timezone.now() + timedelta(seconds=settings.OWT_TOKEN_LIFETIME_SECONDS),
    )
    return TokenString(token.id, token.host, token.secure, sign(token.id, token.host)).encode()


def token_consume(*, token_string: str) -> Token:
    """Validate and burn a token. Of two concurrent logins with one token exactly one succeeds.

    Returns the (now deleted) token's data: domain, user, role, origin.
    """
    parsed = TokenString.decode(token_string)
    parsed.verify()
    token = Token.objects.select_related("domain").filter(id=parsed.token_id).first()
    if token is None:
        raise TokenAlreadyUsed()
    with transaction.atomic():
        # The DELETE is the claim: the database lets only one statement remove the row.
        deleted, _ = Token.objects.filter(id=token.id).delete()
    if deleted != 1:
        raise TokenAlreadyUsed()
    if token.expires_at <= timezone.now():
        raise TokenExpired()
    return token


def token_purge_expired() -> int:
    """Remove tokens past their lifetime; returns how many (run by the beat schedule)."""
    deleted, _ = Token.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted
