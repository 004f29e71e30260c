"""Encryption at rest for secrets the server must read back (service keys, SIP passwords).

Fernet under the HKDF key of purpose ``owt-service-key-encryption`` (``owt.keys``) of
``SECRET_KEY``; decryption also tries the keys of ``SECRET_KEY_FALLBACKS`` (MultiFernet), so a
rotated ``SECRET_KEY`` keeps old ciphertexts readable until ``manage.py owt_reencrypt_secrets``
rewrites them under the current key.
"""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from owt import keys

PURPOSE = "owt-service-key-encryption"
# Before HKDF the Fernet key was sha256(LEGACY_PURPOSE + secret): still read, never written,
# so data stored by earlier versions decrypts until owt_reencrypt_secrets moves it.
LEGACY_PURPOSE = b"owt.conference.secrets"


class UndecryptableSecret(Exception):
    """No configured key (``SECRET_KEY``, ``SECRET_KEY_FALLBACKS``) decrypts a stored secret."""

    def __init__(self, holders: str = "") -> None:
        what = f"the stored secrets of {holders}" if holders else "this secret"
        super().__init__(f"no key of SECRET_KEY or SECRET_KEY_FALLBACKS decrypts {what}")


def _legacy_fernet(secret: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(LEGACY_PURPOSE + secret.encode()).digest()))


@lru_cache(maxsize=4)
def _cipher(secrets: tuple[str, ...]) -> MultiFernet:
    current = [Fernet(base64.urlsafe_b64encode(keys.derive(secret, PURPOSE))) for secret in secrets]
    # MultiFernet encrypts with the first key only: the current SECRET_KEY's HKDF key.
    return MultiFernet([*current, *(_legacy_fernet(secret) for secret in secrets)])


def cipher() -> MultiFernet:
    return _cipher(keys.configured_secrets())


def encrypt(text: str) -> str:
    return cipher().encrypt(text.encode()).decode()


@lru_cache(maxsize=1024)
def _decrypt(token: str, secrets: tuple[str, ...]) -> str:
    return _cipher(secrets).decrypt(token.encode()).decode()


def decrypt(token: str) -> str:
    """Plain text of ``token``; cached because MAuth decrypts the same key on every request."""
    try:
        return _decrypt(token, keys.configured_secrets())
    except InvalidToken as exc:
        raise UndecryptableSecret() from exc


def reencrypt(token: str) -> str:
    """``token``'s secret encrypted again under the current ``SECRET_KEY`` (key rotation)."""
    try:
        return cipher().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise UndecryptableSecret() from exc
