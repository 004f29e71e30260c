"""Dashboard API tokens, stored hashed: ``Authorization: Token <key>`` as with DRF's authtoken.

DRF's ``authtoken`` keeps the key itself in the database, so a leaked dump or backup is a
set of working credentials; here only the SHA-256 of the key is kept
(:class:`metrics.models.DashboardToken`) and the key is shown once, when it is made.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from metrics.models import DashboardToken, token_digest


class DashboardTokenAuthentication(TokenAuthentication):
    model = DashboardToken

    def authenticate_credentials(self, key: str) -> tuple[Any, DashboardToken]:
        token = DashboardToken.objects.select_related("user").filter(digest=token_digest(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        return token.user, token
