"""Audio quality: ITU-T G.107 E-model (simplified, as used for WebRTC), and a video score.

Differences from the reference server, which we must not copy: packet loss is in
**percent** (``Bpl`` is calibrated for percent), loss is measured over the last interval
rather than since the call started, ``R0 = 93.2`` (G.107 default with ``Is = 0``), and the
delay impairment uses G.107's ``Id = 0.024·d + 0.11·(d − 177.3)·H(d − 177.3)``.
"""

from __future__ import annotations

import math

R0 = 93.2


def codec_impairment(bitrate_bps: float | None) -> float:
    """``Ie`` for Opus by bitrate (≈ 7 at 32 kbit/s, 0 at high rates); 6 when unknown."""
    if not bitrate_bps or bitrate_bps <= 0:
        return 6.0
    return min(max(55.0 - 4.6 * math.log(bitrate_bps), 0.0), 30.0)


def r_factor(
    *, loss_percent: float, one_way_delay_ms: float, bitrate_bps: float | None = None, fec: bool = False
) -> float:
    ie = codec_impairment(bitrate_bps)
    bpl = 20.0 if fec else 10.0  # packet-loss robustness; FEC makes Opus more robust
    ppl = max(loss_percent, 0.0)
    ie_eff = ie + (95.0 - ie) * ppl / (ppl + bpl)
    d = max(one_way_delay_ms, 0.0)
    i_d = 0.024 * d + (0.11 * (d - 177.3) if d > 177.3 else 0.0)
    return min(max(R0 - ie_eff - i_d, 0.0), 100.0)


def mos_from_r(r: float) -> float:
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return round(min(max(1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r), 1.0), 4.5), 2)


def audio_mos(
    *,
    loss_percent: float,
    rtt_ms: float = 0.0,
    jitter_buffer_ms: float = 0.0,
    bitrate_bps: float | None = None,
    fec: bool = False,
) -> float:
    """eMOS of received audio: one-way delay = 20 ms packetisation + jitter buffer + RTT/2."""
    delay = 20.0 + jitter_buffer_ms + rtt_ms / 2.0
    return mos_from_r(r_factor(loss_percent=loss_percent, one_way_delay_ms=delay, bitrate_bps=bitrate_bps, fec=fec))


def video_score(*, loss_percent: float, fps: float | None, height: float | None, rtt_ms: float = 0.0) -> float:
    """A 1–5 video score: frame rate and resolution set the ceiling, loss and delay pull it down.

    Not a standard (no E-model exists for video); documented in docs/peermetrics.md.
    """
    if not fps:
        return 1.0
    motion = min(fps / 30.0, 1.0)
    detail = min((height or 360) / 720.0, 1.0)
    base = 1.0 + 4.0 * (0.6 * motion + 0.4 * detail)
    penalty = min(loss_percent / 2.0, 2.5) + min(max(rtt_ms - 300.0, 0.0) / 400.0, 1.0)
    return round(min(max(base - penalty, 1.0), 5.0), 2)
