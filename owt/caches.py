"""Django caches made once per process for the per-request checks (MAuth replay, rate limits),
and a Redis cache backend that keeps its client.

``django.core.cache.caches`` keeps its cache objects per async context. Under ASGI each request
runs in a context of its own, so each request made new ``RedisCache`` objects, each with its
own connection pool: every MAuth replay check and every throttle lookup opened a new TCP
connection to Redis (with its handshake), which cost more than the rest of a management
request. These objects are thread-safe (redis-py's pool, LocMemCache's lock), so one per alias
serves every thread; a change of ``CACHES`` (tests) makes them again.
"""

from __future__ import annotations

from typing import Any

from django.core.cache import BaseCache, caches
from django.core.cache.backends import redis
from django.core.signals import setting_changed
from django.dispatch import receiver

_shared: dict[str, BaseCache] = {}


def shared_cache(alias: str) -> BaseCache:
    cache = _shared.get(alias)
    if cache is None:
        cache = _shared.setdefault(alias, caches.create_connection(alias))
    return cache


@receiver(setting_changed)
def _forget_on_new_settings(*, setting: str, **kwargs: Any) -> None:
    if setting == "CACHES":
        _shared.clear()


class _RedisCacheClient(redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            client = self._clients.setdefault(index, self._client(connection_pool=self._get_connection_pool(write)))
        return client


class RedisCache(redis.RedisCache):
    """Django's Redis cache with one ``redis.Redis`` client per server, shared by every thread
    (redis-py's clients are), where Django's builds a new one for each command: redis-py's
    constructor registers all its response callbacks, a tenth of a management request's CPU."""

    def __init__(self, server: str, params: dict) -> None:
        super().__init__(server, params)
        self._class = _RedisCacheClient
