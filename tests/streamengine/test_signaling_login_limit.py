"""Signaling logins are limited per client address (owt.throttling), over a real WebSocket."""

from __future__ import annotations

import pytest

from streamengine.client import ConferenceClient, SignalingError
from tests.security.helpers import set_rates


async def test_signaling_logins_are_limited_per_address(signaling_url, room, token, settings):
    set_rates(settings, signaling_login="2/m")
    domain = await room()
    for _ in range(2):
        async with ConferenceClient(signaling_url) as client:
            with pytest.raises(SignalingError, match="Invalid token"):
                await client.join("not-a-token")
    async with ConferenceClient(signaling_url) as client:
        with pytest.raises(SignalingError, match="Too many logins"):
            await client.join(await token(domain))
