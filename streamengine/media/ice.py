"""ICE configuration for every peer connection the engine (or its Python client) creates.

* ``iceServers`` is always an explicit list, empty unless :func:`use_ice_servers` set one
  (the media node passes ``settings.ICE_SERVERS_JSON``): aiortc falls back to a public STUN
  server when given ``None``, so we never do.
* aioice gathers host candidates from the machine's interfaces and skips ``127.0.0.1``.
  :func:`use_host_addresses` (the node: ``settings.MEDIA_HOST_ADDRESSES``; tests:
  ``127.0.0.1``) replaces that list: we swap aioice's module-level ``get_host_addresses``
  (process-wide; it is looked up at each gathering) for one that returns those addresses.
* :func:`use_receive_buffer` (the node: ``settings.MEDIA_UDP_RECEIVE_BUFFER_BYTES``) sizes
  the receive buffer of every ICE socket made after it (process-wide).

Plain Python, no Django: the Python client uses it outside the platform too.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

import aioice.ice
import aioice.turn
from aiortc import RTCConfiguration, RTCIceServer

_original_get_host_addresses = aioice.ice.get_host_addresses
_default_receive_buffer = aioice.turn.UDP_SOCKET_BUFFER_SIZE
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


def use_receive_buffer(size: int) -> None:
    """Give every ICE socket made after this a ``size``-byte receive buffer (0: aioice's 256 KiB).

    A node that fans a keyframe out to many subscribers, or takes many DTLS handshakes at
    once, leaves its sockets unread meanwhile: the publishers' packets must wait, not be
    dropped. aioice sizes its sockets from ``aioice.turn.UDP_SOCKET_BUFFER_SIZE`` (read at
    each gathering); the kernel caps the size at ``net.core.rmem_max``.
    """
    aioice.turn.UDP_SOCKET_BUFFER_SIZE = size or _default_receive_buffer
