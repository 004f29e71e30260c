"""Writes of services, rooms and tokens. Views, admin and commands all go through here."""

from __future__ import annotations

import base64
import hashlib
import secrets

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from conference import roomconfig, selectors
from conference.exceptions import EngineFailure, InvalidRequest, PermissionDenied, ServiceNotFound
from conference.models import Room, Service
from owt.crypto import UndecryptableSecret, decrypt, encrypt, reencrypt
from streamengine import services as engine

# --- services ------------------------------------------------------------------------


def service_key_generate() -> str:
    """A 172-character base64 key like the reference's (PBKDF2 output of 128 bytes)."""
    return base64.b64encode(
        hashlib.pbkdf2_hmac("sha256", secrets.token_bytes(32), secrets.token_bytes(16), 4000, dklen=128)
    ).decode()


def service_create(*, name: str, key: str, is_super: bool = False) -> Service:
    if not isinstance(name, str) or not name or not isinstance(key, str) or not key:
        raise InvalidRequest("Service name and key must be non-empty strings")
    try:
        with transaction.atomic():
            return Service.objects.create(name=name, key_encrypted=encrypt(key), is_super=is_super)
    except IntegrityError as exc:
        raise InvalidRequest(f"A service named {name!r} already exists") from exc


def service_bootstrap_super() -> tuple[Service, str]:
    """The super service and its plain key, created on first call (safe to run concurrently)."""
    existing = Service.objects.filter(is_super=True).first()
    if existing is not None:
        return existing, decrypt(existing.key_encrypted)
    name = getattr(settings, "OWT_SUPER_SERVICE_NAME", "superService")
    key = service_key_generate()
    try:
        with transaction.atomic():
            service = Service.objects.create(name=name, key_encrypted=encrypt(key), is_super=True)
    except IntegrityError:
        # Another process bootstrapped first (the one-super constraint), or the name is taken.
        existing = Service.objects.filter(is_super=True).first()
        if existing is None:
            raise
        return existing, decrypt(existing.key_encrypted)
    return service, key


def service_delete(*, caller: Service, service_id: str) -> None:
    """Delete a service with its rooms (and their engine domains); super only, never the super one."""
    if not caller.is_super:
        raise PermissionDenied()
    with transaction.atomic():
        service = Service.objects.select_for_update().filter(id=service_id).first()
        if service is None:
            raise ServiceNotFound()
        if service.is_super:
            raise PermissionDenied("Super service not permitted to be deleted")
        for room_id in service.rooms.values_list("id", flat=True):
            engine.domain_delete(domain_id=room_id)
        service.delete()
        # Forgotten now, not on commit: were it rolled back, the next request just looks again.
        selectors.credentials_forget(service_id=service_id)


# --- rooms ---------------------------------------------------------------------------


def _engine_configure(room: Room) -> None:
    try:
        engine.domain_configure(domain_id=room.id, owner=room.service_id, config=roomconfig.engine_config(room.config))
    except DatabaseError as exc:
        raise EngineFailure(f"Failed to configure the room in the stream engine: {exc}") from exc


def room_create(*, service: Service, name: object, options: object = None) -> Room:
    """Create a room from ``{name, options}``: defaults applied, validated, engine configured."""
    config = roomconfig.create_config(name=name, options=options)
    with transaction.atomic():
        room = Room.objects.create(service=service, name=config.pop("name"), config=config)
        _engine_configure(room)
    return room


def room_update(*, room: Room, body: object, merge: str) -> Room:
    """PUT (``merge="shallow"``: top-level keys replace, the reference's behaviour) or PATCH
    (``merge="deep"``: a JSON merge patch, or an RFC 6902 JSON Patch array) of the room's
    settings, validated like create."""
    config = roomconfig.update_config(current={"name": room.name, **room.config}, body=body, merge=merge)
    with transaction.atomic():
        room.name = config.pop("name")
        room.config = config
        room.save(update_fields=["name", "config", "updated_at"])
        _engine_configure(room)
    return room


def room_delete(*, room: Room) -> None:
    with transaction.atomic():
        engine.domain_delete(domain_id=room.id)
        room.delete()


# --- tokens --------------------------------------------------------------------------

PREFERENCE_MAX_KEYS = 8  # OWT's preference has two: isp, region


def token_create(*, service: Service, room_id: str, user: object, role: object, preference: object = None) -> str:
    """A one-time join token for the room ``room_id`` of ``service`` (text clients pass to
    ``ConferenceClient.join``); another service's room is not found (404/1003), like an unknown one."""
    if preference is None:
        preference = {"isp": "isp", "region": "region"}
    if not isinstance(preference, dict) or not all(isinstance(v, str) for v in preference.values()):
        raise InvalidRequest('preference must be an object of strings, e.g. {"isp": "isp", "region": "region"}')
    # Kept with every token: bounded like the room document (roomconfig's limits).
    if len(preference) > PREFERENCE_MAX_KEYS or any(
        len(key) > roomconfig.MAX_TOKEN_LENGTH or len(value) > roomconfig.MAX_NAME_LENGTH
        for key, value in preference.items()
    ):
        raise InvalidRequest(
            f"preference: at most {PREFERENCE_MAX_KEYS} keys of at most {roomconfig.MAX_TOKEN_LENGTH} characters, "
            f"values of at most {roomconfig.MAX_NAME_LENGTH}"
        )
    if not isinstance(user, str) or not user or not isinstance(role, str) or not role:
        raise InvalidRequest("Name or role not valid")
    # The engine's room (domain) is owned by the service: one query finds it, checks the owner and the role.
    return engine.token_create(domain_id=room_id, owner=service.id, user=user, role=role, origin=preference)


# --- key rotation ----------------------------------------------------------------------


def secrets_reencrypt() -> int:
    """Encrypt every stored secret (service keys, rooms' SIP passwords) again under the current
    ``SECRET_KEY``, so the old key can leave ``SECRET_KEY_FALLBACKS``; returns how many.

    All or nothing: if any secret decrypts under no configured key, nothing is written and
    :class:`UndecryptableSecret` names the services and rooms that hold one.
    """
    unreadable: list[str] = []
    count = 0
    with transaction.atomic():
        for service in Service.objects.select_for_update().order_by("id"):
            try:
                service.key_encrypted = reencrypt(service.key_encrypted)
            except UndecryptableSecret:
                unreadable.append(f"service {service.id}")
                continue
            service.save(update_fields=["key_encrypted"])
            count += 1
        rooms = Room.objects.select_for_update().filter(config__sip__password__has_key="encrypted").order_by("id")
        for room in rooms:
            password = room.config["sip"]["password"]
            try:
                password["encrypted"] = reencrypt(password["encrypted"])
            except UndecryptableSecret:
                unreadable.append(f"room {room.id}")
                continue
            room.save(update_fields=["config", "updated_at"])
            # The engine's copy carries the ciphertext to the SIP jobs: re-encrypted with it.
            engine.domain_configure(
                domain_id=room.id, owner=room.service_id, config=roomconfig.engine_config(room.config)
            )
            count += 1
        if unreadable:
            raise UndecryptableSecret(", ".join(unreadable))
    return count
