"""MAuth: the OWT management API's request authentication, as real OWT clients send it.

Header (one line, comma-separated, no spaces; field order free)::

    MAuth realm=http://marte3.dit.upm.es,mauth_signature_method=HMAC_SHA256,mauth_serviceid=<id>,
    mauth_cnonce=<cnonce>,mauth_timestamp=<ms>,mauth_signature=<sig>[,mauth_username=<b64 user>,mauth_role=<role>]

``sig = base64(hex(HMAC-SHA256(service key, "ts,cnonce[,username,role]")))``. The parser
reproduces the reference server's (split on ``,`` then ``=``, drop the first six characters
of the name, empty pieces become ``=`` so base64 padding survives), so every header a real
client builds is accepted byte for byte. Unlike the reference we refuse replays: the
timestamp must be within ``OWT_MAUTH_WINDOW_SECONDS`` of our clock and a
(service, timestamp, cnonce) triple is accepted once, remembered in a cache
(``OWT_MAUTH_REPLAY_CACHE``) with an atomic ``add`` — no lock, so concurrent requests do not
serialise. Signatures are compared in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from owt.caches import shared_cache
from owt.errors import OWT_ERRORS, Unauthenticated
from owt.renderers import JSONRenderer
from owt.throttling import MAuthFailureThrottle, ServiceThrottle

REALM = "http://marte3.dit.upm.es"
SIGNATURE_METHOD = "HMAC_SHA256"
OBJECT_ID = re.compile(r"^[0-9a-f]{24}$")
# Real clients send 16 hex chars or a number below 1e5; anything printable up to 64 is fine.
CNONCE = re.compile(r"^[!-~]{1,64}$")
TIMESTAMP = re.compile(r"^\d{1,16}$")


class MAuthFailed(Unauthenticated):
    code = 1101


@dataclass(frozen=True)
class MAuthCredentials:
    """``request.auth`` after MAuth: the calling service and the optional user/role of the header."""

    service: Any  # whatever OWT_MAUTH_CREDENTIALS returns (owt is below the apps)
    user: str | None = None
    role: str | None = None


def parse_header(value: str) -> dict[str, str]:
    """Split an MAuth header into fields exactly as the reference server does."""
    fields: dict[str, str] = {}
    for part in value.split(","):
        pieces = part.split("=")
        fields[pieces[0][6:]] = "".join(piece or "=" for piece in pieces[1:])
    return fields


def string_to_sign(timestamp: str, cnonce: str, username: str | None = None, role: str | None = None) -> str:
    text = f"{timestamp},{cnonce}"
    if username is not None and role is not None:
        text += f",{username},{role}"
    return text


def signature(key: str, text: str) -> str:
    digest = hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode()).decode()


def build_header(
    *,
    service_id: str,
    key: str,
    user: str | None = None,
    role: str | None = None,
    timestamp: int | None = None,
    cnonce: str | None = None,
) -> str:
    """The ``Authorization`` value an official client sends (used by owt.client and the tests)."""
    timestamp = int(time.time() * 1000) if timestamp is None else timestamp
    cnonce = secrets.token_hex(8) if cnonce is None else cnonce
    username = base64.b64encode(user.encode()).decode() if user is not None and role is not None else None
    parts = [f"MAuth realm={REALM}", f"mauth_signature_method={SIGNATURE_METHOD}"]
    if username is not None:
        parts += [f"mauth_username={username}", f"mauth_role={role}"]
    sig = signature(key, string_to_sign(str(timestamp), cnonce, username, role))
    parts += [
        f"mauth_serviceid={service_id}",
        f"mauth_cnonce={cnonce}",
        f"mauth_timestamp={timestamp}",
        f"mauth_signature={sig}",
    ]
    return ",".join(parts)


def window_seconds() -> float:
    return float(getattr(settings, "OWT_MAUTH_WINDOW_SECONDS", 300))


def _remember_once(service_id: str, timestamp: str, cnonce: str) -> bool:
    """True the first time this (service, timestamp, cnonce) is seen within the window."""
    cache = shared_cache(getattr(settings, "OWT_MAUTH_REPLAY_CACHE", "default"))
    # A header older than the window is refused anyway, so twice the window is enough memory.
    return cache.add(f"owt:mauth:{service_id}:{timestamp}:{cnonce}", 1, timeout=2 * window_seconds() + 1)


@lru_cache(maxsize=4)
def _credentials_lookup(path: str) -> Callable[[str], tuple[Any, str] | None]:
    return import_string(path)


def _lookup_service(service_id: str) -> tuple[Any, str] | None:
    """(service, plain key) or None, from the callable named by ``OWT_MAUTH_CREDENTIALS``.

    The services (tenants) live in an app above owt, so that app plugs its lookup in here.
    """
    path = getattr(settings, "OWT_MAUTH_CREDENTIALS", None)
    if not path:
        raise ImproperlyConfigured("OWT_MAUTH_CREDENTIALS must name a callable (service_id) -> (service, key) | None")
    return _credentials_lookup(path)(service_id)


def verify(header: str | None, *, now: float | None = None) -> MAuthCredentials:
    """Check an ``Authorization`` value; raises :class:`MAuthFailed` (401/1101) with the reason."""
    if not header:
        raise MAuthFailed("MAuth: missing Authorization header")
    if header[:6].lower() != "mauth ":  # the spec's own example writes "Mauth realm=..."
        raise MAuthFailed("MAuth: Authorization header is not MAuth")
    fields = parse_header(header)
    if fields.get("signature_method") != SIGNATURE_METHOD:
        raise MAuthFailed("MAuth: signature method must be HMAC_SHA256")
    service_id, cnonce, timestamp, sig = (
        fields.get(name) for name in ("serviceid", "cnonce", "timestamp", "signature")
    )
    if not service_id or not OBJECT_ID.match(service_id):
        raise MAuthFailed("MAuth: missing or malformed service id")
    if not cnonce or not CNONCE.match(cnonce):
        raise MAuthFailed("MAuth: missing or malformed cnonce")
    if not timestamp or not TIMESTAMP.match(timestamp):
        raise MAuthFailed("MAuth: missing or malformed timestamp")
    if not sig:
        raise MAuthFailed("MAuth: missing signature")
    now_ms = (time.time() if now is None else now) * 1000
    if abs(now_ms - int(timestamp)) > window_seconds() * 1000:
        raise MAuthFailed("MAuth: timestamp outside the accepted window (check the client clock)")
    found = _lookup_service(service_id)
    if found is None:
        raise MAuthFailed("MAuth: unknown service")
    service, key = found
    username, role = fields.get("username"), fields.get("role")
    signed_with_user = username is not None and role is not None
    expected = signature(key, string_to_sign(timestamp, cnonce, *((username, role) if signed_with_user else ())))
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise MAuthFailed("MAuth: signature mismatch")
    if not _remember_once(service.id, timestamp, cnonce):
        raise MAuthFailed("MAuth: replayed request (timestamp and cnonce already used)")
    if not signed_with_user:
        return MAuthCredentials(service=service)
    return MAuthCredentials(service=service, user=decode_username(username) or None, role=role or None)


def decode_username(value: str) -> str:
    """The header carries base64(user); legacy clients sent the name raw, which we keep as is
    (the reference decodes it to garbage). A raw name that is valid base64 is decoded."""
    try:
        return base64.b64decode(value, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


class MAuthAuthentication(BaseAuthentication):
    """DRF authentication: ``request.user`` = the calling Service, ``request.auth`` = MAuthCredentials."""

    def authenticate(self, request: Request) -> tuple[Any, MAuthCredentials]:
        credentials = verify(request.META.get("HTTP_AUTHORIZATION"))
        return credentials.service, credentials

    def authenticate_header(self, request: Request) -> str:
        return f'MAuth realm="{REALM}"'


# What the reference server adds to every management response, so browser apps on another
# origin can call the API (MAuth carries no cookies, so "*" exposes nothing); PUT included.
CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET, OPTIONS, DELETE, PATCH, PUT",
    "Access-Control-Allow-Headers": "origin, authorization, content-type",
}


class MAuthAPIView(APIView):
    """Base for every MAuth-protected OWT route: MAuth required (except CORS preflight
    ``OPTIONS``, answered 200 like the reference), OWT error envelope, CORS headers.

    Throttled per calling service; a client address with too many failed MAuth checks is
    refused (429) before its header is checked again, so keys cannot be guessed quickly.
    """

    authentication_classes = [MAuthAuthentication]
    permission_classes: list = []
    renderer_classes = [JSONRenderer]
    throttle_classes = [ServiceThrottle]
    error_format = OWT_ERRORS

    def perform_authentication(self, request: Request) -> None:
        if request.method == "OPTIONS":  # browsers send preflights without credentials
            return
        failures = MAuthFailureThrottle()
        if not failures.allow_request(request, self):
            self.throttled(request, failures.wait())
        try:
            super().perform_authentication(request)
        except MAuthFailed:
            failures.record_failure()
            raise

    def get_throttles(self) -> list:
        # A preflight carries no credentials, so it has no service to count against.
        return [] if self.request.method == "OPTIONS" else super().get_throttles()

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(status=200)

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        for name, value in CORS_HEADERS.items():
            response[name] = value
        return response


class MAuthScheme(OpenApiAuthenticationExtension):
    """Documents MAuth in the OpenAPI schema (``/api/schema/``)."""

    target_class = "owt.mauth.MAuthAuthentication"
    name = "MAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": (
                "MAuth realm=http://marte3.dit.upm.es,mauth_signature_method=HMAC_SHA256,mauth_serviceid=<id>,"
                "mauth_cnonce=<random>,mauth_timestamp=<ms>,mauth_signature=<base64(hex(HMAC-SHA256(key, "
                '"timestamp,cnonce")))> (optional mauth_username=<base64 user>,mauth_role=<role>, then signed as '
                '"timestamp,cnonce,username,role"). Each timestamp/cnonce pair is accepted once, within '
                "OWT_MAUTH_WINDOW_SECONDS of the server clock. owt.client.ManagementClient builds it for you."
            ),
        }
