"""Who may call the portal: client keys for trackers and readers, staff for operators.

* A **write key** (``vbw_…``) lets a client's trackers and players register that client's streams
  and qualities and post its viewer reports; a **read key** (``vbr_…``) lets its dashboards read
  its time series. Sent as ``Authorization: Bearer <key>``, or as ``?key=<key>`` for players that
  cannot set headers (``navigator.sendBeacon``, a configured beacon URL). A key is bound to its
  client: naming any other client is 403.
* An **operator** is a Django staff user, by admin session or DRF token
  (``Authorization: Token <token>``): registers clients and reads or writes for any client.
* ``PORTAL_STATS_OPEN=1`` turns all checks off (a local demo).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from owt.errors import Forbidden
from portal_stats import conf, selectors
from portal_stats.errors import WrongKeyKind
from portal_stats.models import ClientKey

KEY_QUERY_PARAM = "key"


class ClientKeyAuthentication(BaseAuthentication):
    """``request.auth`` = the key's :class:`~portal_stats.selectors.KeyGrant`; one query per request."""

    def authenticate(self, request: Request) -> tuple[None, selectors.KeyGrant] | None:
        header = get_authorization_header(request).split()
        if header and header[0].lower() == b"bearer":
            if len(header) != 2:
                raise AuthenticationFailed("Authorization: Bearer takes exactly one portal key")
            key = header[1].decode(errors="replace")
        else:
            key = request.query_params.get(KEY_QUERY_PARAM)
            if key is None:
                return None
        grant = selectors.client_key_find(key=key)
        if grant is None:
            raise AuthenticationFailed("Unknown or revoked portal key")
        return None, grant

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="portal"'


def is_operator(request: Request) -> bool:
    return bool(getattr(request.user, "is_staff", False))


def client_scope(request: Request) -> int | None:
    """The one client this request may act for, or None for any (open mode, an operator)."""
    if conf.get("OPEN") or is_operator(request):
        return None
    return request.auth.client_id


class _KeyOrOperator(BasePermission):
    """Open mode, an operator, or a client key of :attr:`kind`."""

    kind: str

    def has_permission(self, request: Request, view: Any) -> bool:
        if conf.get("OPEN") or is_operator(request):
            return True
        grant = request.auth
        if isinstance(grant, selectors.KeyGrant):
            if grant.kind != self.kind:
                raise WrongKeyKind(f"This route needs the client's {self.kind} key, not a {grant.kind} key")
            return True
        if request.user is not None:
            raise Forbidden("Only staff users are portal operators; trackers and readers use client keys")
        raise NotAuthenticated(f"Portal credentials required: Authorization: Bearer <the client's {self.kind} key>")


class WriteKeyOrOperator(_KeyOrOperator):
    kind = ClientKey.WRITE


class ReadKeyOrOperator(_KeyOrOperator):
    kind = ClientKey.READ


class ClientKeyScheme(OpenApiAuthenticationExtension):
    """Documents client keys in the OpenAPI schema (``/api/schema/``)."""

    target_class = "portal_stats.authentication.ClientKeyAuthentication"
    name = "PortalClientKey"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": (
                "A client key: vbw_… (write: tracker-api streams, qualities, reports) or vbr_… (read: time "
                "series). Players that cannot set headers may send ?key=<key> instead."
            ),
        }
