"""ICE configuration for every peer connection the engine (or its Python client) creates.

* ``iceServers`` always comes from ``settings.ICE_SERVERS_JSON``: aiortc falls back to a
  public STUN server when given ``None``, so we never do.
* aioice gathers host candidates from the machine's interfaces and skips ``127.0.0.1``.
  ``settings.MEDIA_HOST_ADDRESSES`` (tests: ``127.0.0.1``) replaces that list: we swap
  aioice's module-level ``get_host_addresses`` (process-wide; it is looked up at each
  gathering) for one that returns the configured addresses.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer
from django.conf import settings

_original_get_host_addresses = aioice.ice.get_host_addresses


def ice_servers() -> list[RTCIceServer]:
    servers = json.loads(settings.ICE_SERVERS_JSON or "[]")
    return [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential")) for s in servers]


def rtc_configuration() -> RTCConfiguration:
    return RTCConfiguration(iceServers=ice_servers())


def use_host_addresses(addresses: Sequence[str] | None = None) -> None:
    """Make aioice offer exactly ``addresses`` (default: the setting; empty = the interfaces)."""
    addresses = list(settings.MEDIA_HOST_ADDRESSES if addresses is None else addresses)
    if not addresses:
        aioice.ice.get_host_addresses = _original_get_host_addresses
        return

    def configured(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        return [
            a
            for a in addresses
            if (use_ipv4 and ipaddress.ip_address(a).version == 4)
            or (use_ipv6 and ipaddress.ip_address(a).version == 6)
        ]

    aioice.ice.get_host_addresses = configured
