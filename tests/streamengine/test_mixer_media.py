"""The MCU's media path without a room: compositing, fit policies, encoding, audio mix and VAD, layouts."""

from __future__ import annotations

import fractions
import math

import av
import numpy as np
import pytest

from streamengine.media import layouts
from streamengine.media.encoding import VideoEncoder
from streamengine.media.mixer import ActiveSpeaker, AudioMixer, VideoCompositor, bt601, placements
from streamengine.media.passthrough import is_keyframe

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def solid(width: int, height: int, rgb: tuple[int, int, int]) -> av.VideoFrame:
    y, u, v = bt601(*rgb)
    planes = [np.full(width * height, y, np.uint8), np.full(width * height // 4, u, np.uint8)]
    planes.append(np.full(width * height // 4, v, np.uint8))
    return av.VideoFrame.from_ndarray(np.concatenate(planes).reshape(height * 3 // 2, width), format="yuv420p")


def rgb_at(frame: av.VideoFrame, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(c) for c in frame.to_ndarray(format="rgb24")[y, x])


def near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(p - c) <= 24 for p, c in zip(pixel, colour, strict=True))


def grid(streams: list[str]) -> list[dict]:
    templates = layouts.expand("fluid", 4, rational=True)
    return layouts.assign(templates, streams, [])


def test_each_input_is_drawn_in_its_region_on_the_background():
    compositor = VideoCompositor(640, 480, background=(0, 0, 255))
    compositor.set_layout(placements(grid(["a", "b", "c"]), 640, 480))
    for stream, colour in zip("abc", (RED, GREEN, WHITE), strict=True):
        compositor.update(stream, solid(320, 240, colour))
    picture = compositor.compose()
    assert (picture.width, picture.height) == (640, 480)
    assert near(rgb_at(picture, 160, 120), RED) and near(rgb_at(picture, 480, 120), GREEN)
    assert near(rgb_at(picture, 160, 360), WHITE)
    assert near(rgb_at(picture, 480, 360), BLUE)  # the empty region shows bgColor


def test_letterbox_keeps_the_aspect_ratio_and_crop_fills_the_region():
    layout = placements(grid(["a"]), 640, 480)  # one input: the whole picture
    wide = solid(640, 240, RED)  # 8:3 into 4:3
    letterbox = VideoCompositor(640, 480, fit="letterbox")
    letterbox.set_layout(layout)
    letterbox.update("a", wide)
    picture = letterbox.compose()
    assert near(rgb_at(picture, 320, 240), RED)
    assert near(rgb_at(picture, 320, 10), (0, 0, 0)) and near(rgb_at(picture, 320, 470), (0, 0, 0))
    crop = VideoCompositor(640, 480, fit="crop")
    crop.set_layout(layout)
    crop.update("a", wide)
    picture = crop.compose()
    assert near(rgb_at(picture, 320, 10), RED) and near(rgb_at(picture, 5, 240), RED)


def test_a_changed_layout_clears_regions_nobody_has_any_more():
    compositor = VideoCompositor(640, 480)
    compositor.set_layout(placements(grid(["a", "b"]), 640, 480))
    compositor.update("a", solid(320, 240, RED))
    compositor.update("b", solid(320, 240, GREEN))
    assert near(rgb_at(compositor.compose(), 480, 120), GREEN)
    compositor.forget("b")
    compositor.set_layout(placements(grid(["a"]), 640, 480))
    picture = compositor.compose()
    assert near(rgb_at(picture, 480, 120), RED)  # "a" alone now fills the picture


@pytest.mark.parametrize("codec", ["vp8", "h264"])
def test_the_encoder_makes_a_keyframe_first_and_when_asked(codec):
    encoder = VideoEncoder(codec, 320, 240, 24, 300, 100)
    frames = [solid(320, 240, (i * 8 % 256, 0, 0)) for i in range(30)]
    packets = [bytes(p) for i, frame in enumerate(frames[:10]) for p in encoder.encode(frame, i * 3750)]
    assert is_keyframe(codec, packets[0]) and not any(is_keyframe(codec, p) for p in packets[1:])
    encoder.keyframe_wanted = True
    asked = [bytes(p) for i, frame in enumerate(frames[10:12]) for p in encoder.encode(frame, (10 + i) * 3750)]
    assert is_keyframe(codec, asked[0])
    assert frames[10].pict_type == av.video.frame.PictureType.NONE  # a shared frame is left as it was


def tone(amplitude: int, samples: int = 960) -> av.AudioFrame:
    wave = (amplitude * np.sin(2 * math.pi * 440 * np.arange(samples) / 48000)).astype(np.int16)
    frame = av.AudioFrame.from_ndarray(np.stack([wave, wave], axis=1).reshape(1, -1), format="s16", layout="stereo")
    frame.sample_rate, frame.pts, frame.time_base = 48000, 0, fractions.Fraction(1, 48000)
    return frame


def test_audio_is_summed_with_clipping_and_levels_say_who_speaks():
    mixer = AudioMixer()
    for _ in range(10):
        mixer.push("loud", tone(20000))
        mixer.push("quiet", tone(20000))
        mixer.push("silent", tone(0))
        mixed = mixer.mix({"loud", "quiet", "silent"})
    assert mixed.dtype == np.int16 and mixed.max() == 32767  # 20000 + 20000 clipped
    assert mixer.levels["loud"] > -10 and mixer.levels["silent"] < -100
    # An input with nothing queued adds silence: a slow input never holds the mix back.
    while mixer.queues["loud"]:
        mixer.mix({"loud"})
    assert not mixer.mix({"loud"}).any() and len(mixer.mix(set())) == 960
    assert mixer.levels["loud"] < -10  # and its level falls


def test_the_active_speaker_changes_only_after_leading_for_the_hold_time():
    speaker = ActiveSpeaker(hold=0.6)
    assert speaker.observe({"a": -10, "b": -80}, 0.0) is None  # a candidate
    assert speaker.observe({"a": -10, "b": -80}, 0.3) is None
    assert speaker.observe({"a": -10, "b": -80}, 0.7) == "a"
    assert speaker.observe({"a": -80, "b": -20}, 1.0) is None  # b leads, not yet long enough
    assert speaker.observe({"a": -10, "b": -80}, 1.2) is None  # a is back: nothing changes
    assert speaker.observe({"a": -70, "b": -20}, 1.5) is None
    assert speaker.observe({"a": -70, "b": -20}, 2.2) == "b"
    assert speaker.observe({"a": -90, "b": -90}, 3.0) is None  # silence keeps the last speaker


def test_layouts_keep_inputs_in_place_and_put_the_primary_first():
    templates = layouts.expand("lecture", 6, rational=True)
    layout = layouts.assign(templates, ["a", "b", "c"], [])
    assert [e["stream"] for e in layout] == ["a", "b", "c"] and len(layout) == 3
    assert layout[0]["region"]["area"]["width"] == {"numerator": 2, "denominator": 3}
    # b leaves, d joins: a and c keep their order, d comes after them.
    again = layouts.assign(templates, ["a", "c", "d"], layout)
    assert [e["stream"] for e in again] == ["a", "c", "d"]
    # The active speaker takes the big region.
    assert [e["stream"] for e in layouts.assign(templates, ["a", "c", "d"], again, primary="d")] == ["d", "a", "c"]


def test_a_pinned_layout_keeps_its_regions():
    whole = {"left": "0", "top": "0", "width": "1", "height": "1"}
    half = {"left": "1/2", "top": "0", "width": "1/2", "height": "1"}
    pinned = [
        {"stream": "a", "region": {"id": "1", "area": layouts.rational_area(whole)}},
        {"region": {"id": "2", "area": layouts.rational_area(half)}},
    ]
    assert [e.get("stream") for e in layouts.assign_pinned(pinned, ["a", "b", "c"])] == ["a", "b"]
    assert [e.get("stream") for e in layouts.assign_pinned(pinned, ["b"])] == ["b", None]
    swapped = layouts.assign_pinned(
        [{"stream": "a", "region": pinned[0]["region"]}, {"stream": "b", "region": pinned[1]["region"]}],
        ["a", "b"],
        primary="b",
    )
    assert [e["stream"] for e in swapped] == ["b", "a"]
    assert layouts.rational_area(half)["left"] == {"numerator": 1, "denominator": 2}
