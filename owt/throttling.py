"""Rate limits and lockouts, all DRF throttles kept in one cache shared by every portal.

The cache is ``settings.OWT_THROTTLE_CACHE`` (Redis when ``REDIS_URL`` is set, so a limit holds
across portals; per-process memory otherwise). Rates are ``REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]``
by scope, read from the environment (README, configuration); ``None`` turns a scope off.
Client addresses come from DRF's ``get_ident``, which trusts ``X-Forwarded-For`` only as far as
``NUM_PROXIES`` says (0 by default: the socket's peer address).

- :class:`ServiceThrottle`: every MAuth-authenticated request, per calling service.
- :class:`ClientScopedThrottle`: a view's ``throttle_scope``, per client address (peermetrics
  SDK ``initialize``).
- :class:`FailureThrottle` subclasses: only failures count, and a client with too many is
  refused before it is checked again (failed MAuth, admin login).
- :func:`signaling_login_allowed`: the signaling consumer's logins, per client address.
"""

from __future__ import annotations

import math
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import BaseCache
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle

from owt.caches import shared_cache


def retry_after(wait: float) -> str:
    """A ``Retry-After`` value: whole seconds, at least one (0 would invite an instant retry)."""
    return str(max(1, math.ceil(wait)))


class CacheThrottle(SimpleRateThrottle):
    """A DRF rate throttle on the shared throttle cache, keyed by client address.

    Cache and rates are looked up on each use (DRF binds both at import), so a settings
    change, e.g. a test's, takes effect.
    """

    @property
    def cache(self) -> BaseCache:
        return shared_cache(settings.OWT_THROTTLE_CACHE)

    @property
    def THROTTLE_RATES(self) -> dict[str, str | None]:  # noqa: N802 (DRF's attribute name)
        return api_settings.DEFAULT_THROTTLE_RATES

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class ServiceThrottle(CacheThrottle):
    """Per calling service: one tenant cannot use up the portals for the others."""

    scope = "owt_service"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        service_id = getattr(request.user, "id", None)
        return None if service_id is None else self.cache_format % {"scope": self.scope, "ident": service_id}


class ClientScopedThrottle(CacheThrottle, ScopedRateThrottle):
    """The view's ``throttle_scope`` (its rate), per client address whoever the caller is
    (CacheThrottle's key comes first in the MRO)."""


class FailureThrottle(CacheThrottle):
    """Counts failures only: :meth:`allow_request` checks, :meth:`record_failure` counts.

    A client refused here is locked out until its oldest failure in the window ages out
    (:meth:`wait`). The check and the count are two cache operations, so concurrent failures
    may slip a few over the limit; the limit bounds guessing, it need not be exact.
    """

    def throttle_success(self) -> bool:
        return True

    def record_failure(self) -> None:
        """Count a failure of the request last passed to :meth:`allow_request`."""
        if getattr(self, "key", None) is None:  # the scope is off
            return
        self.history.insert(0, self.now)
        self.cache.set(self.key, self.history, self.duration)


class MAuthFailureThrottle(FailureThrottle):
    scope = "owt_mauth_failure"


class AdminLoginFailureThrottle(FailureThrottle):
    scope = "admin_login_failure"


class AddressThrottle(CacheThrottle):
    """A rate per client address for callers that are not DRF views."""

    def __init__(self, scope: str, address: str):
        self.scope, self.address = scope, address
        super().__init__()

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.address}


@sync_to_async
def signaling_login_allowed(scope: dict) -> bool:
    """Whether this WebSocket connection's client address may try another signaling login."""
    client = scope.get("client") or ("unknown",)
    return AddressThrottle("signaling_login", client[0]).allow_request(None, None)
