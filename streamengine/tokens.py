"""The OWT token string: base64 of ``{"tokenId","host","secure","signature"}``.

Clients decode it to find the portal (``host``, ``secure``), so the shape and key order
are the reference server's. The signature is ours: base64(hex(HMAC-SHA256(key,
"tokenId,host"))) with a key derived from ``SECRET_KEY``, so it survives restarts and
every portal process verifies it (the reference signs the literal text ``undefined`` and
regenerates its key at each start; we fix both).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from django.conf import settings

from streamengine.exceptions import InvalidToken


def token_key() -> bytes:
    return hmac.new(settings.SECRET_KEY.encode(), b"owt.streamengine.token-key", hashlib.sha256).digest()


def sign(token_id: str, host: str, key: bytes | None = None) -> str:
    digest = hmac.new(key or token_key(), f"{token_id},{host}".encode(), hashlib.sha256).hexdigest()
    return base64.b64encode(digest.encode()).decode()


@dataclass(frozen=True)
class TokenString:
    token_id: str
    host: str
    secure: bool
    signature: str

    def encode(self) -> str:
        body = {"tokenId": self.token_id, "host": self.host, "secure": self.secure, "signature": self.signature}
        return base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()

    @classmethod
    def decode(cls, text: str) -> TokenString:
        try:
            body = json.loads(base64.b64decode(text, validate=True))
            parsed = cls(str(body["tokenId"]), str(body["host"]), bool(body.get("secure")), str(body["signature"]))
        except (binascii.Error, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise InvalidToken("Invalid token") from exc
        return parsed

    def verify(self) -> None:
        if not hmac.compare_digest(self.signature.encode(), sign(self.token_id, self.host).encode()):
            raise InvalidToken()
