"""The OWT token string: base64 of ``{"tokenId","host","secure","signature"}``.

Clients decode it to find the portal (``host``, ``secure``), so the shape and key order
are the reference server's. The signature is ours: base64(hex(HMAC-SHA256(key,
"tokenId,host"))) with the HKDF key of purpose ``owt-room-token`` (``owt.keys``), so it
survives restarts and every portal process verifies it (the reference signs the literal text
``undefined`` and regenerates its key at each start; we fix both). Tokens signed before a
``SECRET_KEY`` rotation verify under ``SECRET_KEY_FALLBACKS`` until they expire.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from owt import keys
from streamengine.exceptions import InvalidToken

PURPOSE = "owt-room-token"


def sign(token_id: str, host: str, key: bytes | None = None) -> str:
    """The signature under ``key``, by default the current ``SECRET_KEY``'s."""
    digest = hmac.new(key or keys.signing_key(PURPOSE), f"{token_id},{host}".encode(), hashlib.sha256).hexdigest()
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
        signature = self.signature.encode()
        candidates = (sign(self.token_id, self.host, key).encode() for key in keys.verifying_keys(PURPOSE))
        if not any(hmac.compare_digest(signature, candidate) for candidate in candidates):
            raise InvalidToken()
