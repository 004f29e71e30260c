"""Dashboard API tokens, stored hashed: ``Authorization: Token <key>`` as with DRF's authtoken.

DRF's ``authtoken`` keeps the key itself in the database, so a leaked dump or backup is a
set of working credentials; here only the SHA-256 of the key is kept
(:class:`metrics.models.DashboardToken`) and the key is shown once, when it is made.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
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


class DashboardTokenScheme(OpenApiAuthenticationExtension):
    """Documents dashboard tokens under their own name: DRF's plain ``tokenAuth`` (the Viblast
    portal's operators) is another credential, and one name for both made the schema ambiguous."""

    target_class = "metrics.authentication.DashboardTokenAuthentication"
    name = "dashboardTokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'A dashboard token (`manage.py metrics_token USER`), sent as "Token <key>".',
        }
