"""Keys derived from ``SECRET_KEY``, one per purpose.

HKDF-SHA256 (RFC 5869) with the purpose as ``info``: a key of one purpose (``owt-room-token``,
``owt-service-key-encryption``, ``peermetrics-session-jwt`` …) tells nothing about another one,
and none of them tells ``SECRET_KEY``. The current ``SECRET_KEY`` signs and encrypts; the keys
derived from ``SECRET_KEY_FALLBACKS`` only verify and decrypt, so a rotated key keeps what was
signed or encrypted before readable until it expires or is re-encrypted (docs/security.md).
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings

# Fixed, public: HKDF's salt only has to be independent of the input key (RFC 5869, 3.1).
SALT = b"owt-media-platform/v1"
KEY_BYTES = 32


@lru_cache(maxsize=64)
def derive(secret: str, purpose: str) -> bytes:
    """The 32-byte key of ``purpose`` derived from ``secret`` (cached: MAuth and tokens ask on every request)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=SALT, info=purpose.encode()).derive(secret.encode())


def configured_secrets() -> tuple[str, ...]:
    """``SECRET_KEY`` first, then ``SECRET_KEY_FALLBACKS`` (old keys, newest first)."""
    return (settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", ()))


def signing_key(purpose: str) -> bytes:
    """The key that signs or encrypts for ``purpose`` now."""
    return derive(settings.SECRET_KEY, purpose)


def verifying_keys(purpose: str) -> list[bytes]:
    """Every key that still verifies or decrypts for ``purpose``: the current one first."""
    return [derive(secret, purpose) for secret in configured_secrets()]
