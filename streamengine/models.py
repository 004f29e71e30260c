"""The stream engine's persistent state.

A *domain* is the engine's scope for participants and streams; a conference room is
the domain with the room's id, and the conference app keeps the domain's copy of the
room settings the engine enforces (roles, limits, accepted media) in step with the
room. Tokens are issued for a domain and consumed once at signaling login.
"""

from __future__ import annotations

import secrets

from django.db import models


def object_id() -> str:
    """24 lowercase hex characters, the shape OWT clients know from MongoDB ObjectIds."""
    return secrets.token_hex(12)


class Domain(models.Model):
    id = models.CharField(primary_key=True, max_length=64)
    # The service that owns the domain (opaque to the engine; the conference app scopes by it).
    owner = models.CharField(max_length=64, blank=True, db_index=True)
    # The room settings the engine enforces: roles, participantLimit, inputLimit, mediaIn,
    # mediaOut, views, notifying, transcoding (the OWT Room object without name/_id).
    config = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.id

    def role(self, name: str) -> dict | None:
        return next((role for role in self.config.get("roles", []) if role.get("role") == name), None)


class Token(models.Model):
    """A one-time join token. Consuming it deletes the row, so exactly one login wins."""

    id = models.CharField(primary_key=True, max_length=24, default=object_id)
    domain = models.ForeignKey(Domain, on_delete=models.CASCADE, related_name="tokens")
    user = models.CharField(max_length=255)
    role = models.CharField(max_length=255)
    origin = models.JSONField(default=dict)
    host = models.CharField(max_length=255)
    secure = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.user}/{self.role}@{self.domain_id}"
