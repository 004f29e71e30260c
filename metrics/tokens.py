"""SDK tokens: HS256 JWTs carried in the request body.

Claims keep the reference's names (``p`` participant, ``c`` conference for the init token;
``s`` session for the session token; ``t`` issue time) so tokens survive a cut-over, and add
what the reference lacks: a real ``exp``, a pinned algorithm, a ``typ`` so one kind of
token can never be replayed as the other even if the two secrets were configured equal, and
``g``, the app's key generation when the token was issued: resetting the app's key bumps
the generation, which revokes every token issued before (tokens without ``g`` predate it and
count as generation 0, so they live only until the app's first reset).
"""

from __future__ import annotations

import time
from typing import Any

import jwt
from django.conf import settings

from metrics.errors import PeermetricsError
from owt import keys

ALGORITHM = "HS256"


def _secrets(kind: str) -> list[bytes]:
    """The signing key first, then the keys that still verify (SECRET_KEY_FALLBACKS)."""
    configured = getattr(settings, f"METRICS_{kind.upper()}_TOKEN_SECRET", "")
    if configured:
        return [configured.encode()]
    # HKDF keys of SECRET_KEY (purpose peermetrics-init-jwt / peermetrics-session-jwt), so
    # every worker agrees and a restart keeps tokens valid.
    return keys.verifying_keys(f"peermetrics-{kind}-jwt")


def issue(kind: str, claims: dict[str, str], *, lifetime: int | None = None) -> str:
    now = time.time()
    ttl = settings.METRICS_TOKEN_LIFETIME_SECONDS if lifetime is None else lifetime
    payload = {**claims, "typ": kind, "t": now, "iat": int(now), "exp": int(now + ttl)}
    return jwt.encode(payload, _secrets(kind)[0], algorithm=ALGORITHM)


def verify(kind: str, token: Any, required: tuple[str, ...]) -> dict[str, Any]:
    """Claims of a valid token of this kind, or the reference's 401 error codes."""
    if token in (None, ""):
        raise PeermetricsError("missing_token")
    if not isinstance(token, str):
        raise PeermetricsError("invalid_token")
    claims = _decode(token, _secrets(kind), required)
    if claims.get("typ") != kind:
        raise PeermetricsError("invalid_token")
    return claims


def verify_generation(claims: dict[str, Any], key_generation: int) -> None:
    """``invalid_token`` for a token issued before the app's key was last reset."""
    if claims.get("g", 0) != key_generation:
        raise PeermetricsError("invalid_token")


def _decode(token: str, secrets: list[bytes], required: tuple[str, ...]) -> dict[str, Any]:
    """Claims under the first key whose signature matches (tokens issued before a rotation
    verify under SECRET_KEY_FALLBACKS until they expire)."""
    for secret in secrets:
        try:
            return jwt.decode(token, secret, algorithms=[ALGORITHM], options={"require": ["exp", "typ", *required]})
        except jwt.InvalidSignatureError:
            continue
        except jwt.ExpiredSignatureError as exc:
            raise PeermetricsError("expired_token") from exc
        except jwt.PyJWTError as exc:
            raise PeermetricsError("invalid_token") from exc
    raise PeermetricsError("invalid_token")


def init_token(*, participant_id: str, conference_id: str, key_generation: int) -> str:
    return issue("init", {"p": participant_id, "c": conference_id, "g": key_generation})


def session_token(*, session_id: str, key_generation: int) -> str:
    return issue("session", {"s": session_id, "g": key_generation})
