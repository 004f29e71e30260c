"""Services (the tenants of the management API) and their rooms.

A room's settings live in ``Room.config`` as the OWT ``object(Room)`` without ``_id`` and
``name``; the engine keeps its own copy in ``streamengine.Domain`` (same id), written by
``conference.services`` whenever the room changes.
"""

from __future__ import annotations

from django.db import models

from streamengine.models import object_id


class Service(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=object_id)
    name = models.CharField(max_length=255, unique=True)
    # Fernet token of the service key (see owt.crypto): MAuth verification needs
    # the key itself, so it cannot be hashed, only encrypted at rest.
    key_encrypted = models.TextField()
    is_super = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # At most one super service, so concurrent bootstraps cannot create two.
            models.UniqueConstraint(fields=["is_super"], condition=models.Q(is_super=True), name="one_super_service"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    # DRF sets request.user to the authenticated Service; permission checks ask these.
    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def is_anonymous(self) -> bool:
        return False


class Room(models.Model):
    id = models.CharField(primary_key=True, max_length=24, default=object_id)
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="rooms")
    name = models.CharField(max_length=255)
    # The validated OWT room settings (inputLimit, participantLimit, roles, views, mediaIn,
    # mediaOut, transcoding, notifying, sip, ...), key order as returned by the API.
    config = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["service", "created_at", "id"])]

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"
