"""ICE configuration for every peer connection the engine (or its Python client) creates.

* ``iceServers`` is always an explicit list, empty unless :func:`use_ice_servers` set one
  (the media node passes ``settings.ICE_SERVERS_JSON``): aiortc falls back to a public STUN
  server when given ``None``, so we never do.
* aioice gathers host candidates from the machine's interfaces and skips ``127.0.0.1``.
  :func:`use_host_addresses` (the node: ``settings.MEDIA_HOST_ADDRESSES``; tests:
  ``127.0.0.1``) replaces that list: we swap aioice's module-level ``get_host_addresses``
  (process-wide; it is looked up at each gathering) for one that returns those addresses.

Plain Python, no Django: the Python client uses it outside the platform too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice
from aiortc import RTCConfiguration, RTCIceServer

_original_get_host_addresses = aioice.ice.get_host_addresses
_ice_servers: list[RTCIceServer] = []


def use_ice_servers(servers: Sequence[dict]) -> None:
    """The ICE servers (``{urls, username?, credential?}``) of every peer connection made after this."""
    _ice_servers[:] = [
        RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential")) for s in servers
    ]


def rtc_configuration() -> RTCConfiguration:
    return RTCConfiguration(iceServers=list(_ice_servers))


def use_host_addresses(addresses: Sequence[str]) -> None:
    """Make aioice offer exactly ``addresses`` (empty: the machine's interfaces)."""
    addresses = list(addresses)
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
