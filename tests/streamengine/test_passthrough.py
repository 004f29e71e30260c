"""The aiortc internals the passthrough relies on, and its frame helpers."""

import asyncio

import pytest
from aiortc import RTCRtpSender

from streamengine.media.passthrough import (
    AiortcInternalsChanged,
    ForwardedTrack,
    check_aiortc_internals,
    is_keyframe,
    vp8_resolution,
)


def test_pinned_aiortc_has_the_private_api():
    check_aiortc_internals()


def test_missing_private_api_fails_loudly(monkeypatch):
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(AiortcInternalsChanged, match="RTCRtpSender._send_keyframe"):
        check_aiortc_internals()


def test_keyframe_detection():
    vp8_key = bytes([0x10, 0x02, 0x00, 0x9D, 0x01, 0x2A, 0x80, 0x02, 0xE0, 0x01])
    assert is_keyframe("vp8", vp8_key) and vp8_resolution(vp8_key) == (640, 480)
    assert not is_keyframe("vp8", b"\x11\x00\x00") and vp8_resolution(b"\x11" * 10) is None
    assert is_keyframe("h264", b"\x00\x00\x00\x01\x67xx\x00\x00\x00\x01\x68y\x00\x00\x01\x65zz")
    assert not is_keyframe("h264", b"\x00\x00\x00\x01\x41zz")
    assert is_keyframe("opus", b"\x00")


async def test_slow_subscriber_is_cut_back_to_next_keyframe():
    requests = []
    track = ForwardedTrack("video", "vp8", lambda: requests.append(1))
    key, delta = b"\x10rest", b"\x11rest"
    track.push(delta, 0)
    assert track.queue.empty() and track.dropped == 1  # waits for a keyframe first
    track.push(key, 1)
    for ts in range(2, 2 + track.queue.maxsize):
        track.push(delta, ts)
    # Overflow: queue emptied, deltas dropped until the next keyframe, one is requested.
    assert track.queue.empty() and track.waiting_keyframe and requests == [1]
    track.push(delta, 100)
    assert track.queue.empty()
    track.push(key, 101)
    packet = await asyncio.wait_for(track.recv(), 1)
    assert bytes(packet) == key and packet.pts == 101 and packet.time_base.denominator == 90000
