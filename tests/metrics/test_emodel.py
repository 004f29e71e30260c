"""The E-model against hand-computed ITU-T G.107 values (and the reference's defects)."""

import math

import pytest

from metrics.emodel import R0, audio_mos, codec_impairment, mos_from_r, r_factor, video_score


def test_mos_from_r_end_points_and_known_values():
    assert mos_from_r(0) == 1.0
    assert mos_from_r(100) == 4.5
    assert mos_from_r(93.2) == pytest.approx(4.41, abs=0.01)  # G.107 default R
    assert mos_from_r(50) == pytest.approx(2.58, abs=0.01)


def test_loss_is_in_percent():
    clean = r_factor(loss_percent=0, one_way_delay_ms=0, bitrate_bps=None)
    lossy = r_factor(loss_percent=5, one_way_delay_ms=0, bitrate_bps=None)
    # Ie=6, Bpl=10: Ie_eff = 6 + 89·5/15 ≈ 35.7 — about 30 R points for 5 % loss, not 0.5.
    assert clean - lossy == pytest.approx(89 * 5 / 15, abs=0.01)
    assert clean == pytest.approx(R0 - 6)


def test_delay_impairment():
    base = r_factor(loss_percent=0, one_way_delay_ms=0)
    assert base - r_factor(loss_percent=0, one_way_delay_ms=100) == pytest.approx(2.4)
    assert base - r_factor(loss_percent=0, one_way_delay_ms=300) == pytest.approx(0.024 * 300 + 0.11 * (300 - 177.3))


def test_audio_mos_and_codec():
    assert codec_impairment(32000) == pytest.approx(55 - 4.6 * math.log(32000))
    good = audio_mos(loss_percent=0, rtt_ms=40, jitter_buffer_ms=50, bitrate_bps=32000)
    assert 4.0 < good < 4.4
    assert audio_mos(loss_percent=8, rtt_ms=40, jitter_buffer_ms=50, bitrate_bps=32000) < 3
    assert audio_mos(loss_percent=8, rtt_ms=40, jitter_buffer_ms=50, bitrate_bps=32000, fec=True) > audio_mos(
        loss_percent=8, rtt_ms=40, jitter_buffer_ms=50, bitrate_bps=32000
    )


def test_video_score():
    assert video_score(loss_percent=0, fps=30, height=720) == 5.0
    assert video_score(loss_percent=0, fps=0, height=720) == 1.0
    assert video_score(loss_percent=4, fps=15, height=360) < video_score(loss_percent=0, fps=15, height=360)
