"""Encryption at rest for secrets the server must read back (service keys, SIP passwords).

Fernet with keys derived from ``SECRET_KEY`` and then ``SECRET_KEY_FALLBACKS``, so a key
rotation keeps old ciphertexts readable (re-encrypt them by saving again).
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

PURPOSE = b"owt.conference.secrets"


def _fernet_for(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(PURPOSE + secret.encode()).digest()))


@lru_cache(maxsize=4)
def _cipher(secret: str, fallbacks: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([_fernet_for(secret), *(_fernet_for(item) for item in fallbacks)])


def cipher() -> MultiFernet:
    return _cipher(settings.SECRET_KEY, tuple(getattr(settings, "SECRET_KEY_FALLBACKS", ())))


def encrypt(text: str) -> str:
    return cipher().encrypt(text.encode()).decode()


@lru_cache(maxsize=1024)
def _decrypt(token: str, secret: str) -> str:
    return cipher().decrypt(token.encode()).decode()


def decrypt(token: str) -> str:
    """Plain text of ``token``; cached because MAuth decrypts the same key on every request."""
    try:
        return _decrypt(token, settings.SECRET_KEY)
    except InvalidToken as exc:
        raise ValueError("secret cannot be decrypted with the current SECRET_KEY") from exc
