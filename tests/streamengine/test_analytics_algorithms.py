"""The analytics algorithms on synthetic frames whose right answer is known, and the plugin registry."""

from __future__ import annotations

import textwrap

import av
import numpy as np
import pytest

from streamengine.media import analytics
from streamengine.media.analytics.brightness import BrightnessMeter
from streamengine.media.analytics.frames import GREEN, YuvImage
from streamengine.media.analytics.motion import MotionDetector, overlap

WIDTH, HEIGHT, SQUARE = 320, 240, 40


def frame_of(luma: np.ndarray) -> av.VideoFrame:
    """A yuv420p frame with this luma and neutral (grey) chroma."""
    chroma = np.full((luma.shape[0] // 2, luma.shape[1] // 2), 128, dtype=np.uint8)
    return YuvImage(luma.astype(np.uint8), chroma, chroma.copy()).to_frame()


def square_at(x: int, y: int) -> av.VideoFrame:
    luma = np.full((HEIGHT, WIDTH), 16, dtype=np.uint8)
    luma[y : y + SQUARE, x : x + SQUARE] = 235
    return frame_of(luma)


def inside(inner: list[int], outer: list[int]) -> bool:
    return (
        outer[0] <= inner[0]
        and outer[1] <= inner[1]
        and inner[0] + inner[2] <= outer[0] + outer[2]
        and inner[1] + inner[3] <= outer[1] + outer[3]
    )


def green_pixels(frame: av.VideoFrame) -> np.ndarray:
    """Chroma positions (2×2 luma pixels each) of the overlay's green."""
    image = YuvImage.from_frame(frame)
    return (np.abs(image.u.astype(int) - GREEN[1]) < 8) & (np.abs(image.v.astype(int) - GREEN[2]) < 8)


@pytest.mark.parametrize("move_frames", [1, 15])
def test_a_moving_white_square_is_boxed_where_it_is(move_frames):
    detector = MotionDetector(move_frames=move_frames)
    output, events = detector.process(square_at(20, 100))
    assert events == [] and not green_pixels(output).any()  # nothing to compare the first frame with
    announced = []
    for step in range(1, 11):
        x, y = 20 + 12 * step, 100 - 5 * step
        output, events = detector.process(square_at(x, y))
        # The box holds where the square is now (and where it was: what changed).
        assert inside([x, y, SQUARE, SQUARE], detector.box), (step, detector.box)
        assert detector.box[2] <= SQUARE + 12 + 8 and detector.box[3] <= SQUARE + 5 + 8
        assert green_pixels(output).any()
        box = detector.box
        edge = green_pixels(output)
        assert edge[box[1] // 2 + 1, (box[0] + box[2] // 2) // 2]  # the top edge, mid-way
        assert not edge[(box[1] + box[3] // 2) // 2, (box[0] + box[2] // 2) // 2]  # an outline, not a fill
        announced += events
    assert announced[0] == {"type": "motion", "box": announced[0]["box"]}
    # "motion" again only when the box has moved on, and not more often than every move_frames.
    assert all(e["type"] == "motion" for e in announced)
    assert 2 <= len(announced) < 10 if move_frames == 1 else len(announced) == 1
    assert all(overlap(a["box"], b["box"]) < 0.5 for a, b in zip(announced, announced[1:], strict=False))


def test_motion_ends_after_the_hold_and_a_still_picture_has_none():
    detector = MotionDetector(hold_frames=3)
    detector.process(square_at(20, 20))
    _, events = detector.process(square_at(60, 20))
    assert [e["type"] for e in events] == ["motion"]
    types = []
    for _ in range(5):
        output, events = detector.process(square_at(60, 20))
        types += [e["type"] for e in events]
    assert types == ["motion-end"] and detector.box is None and not green_pixels(output).any()


def test_noise_below_the_threshold_is_no_motion():
    rng = np.random.default_rng(1)
    detector = MotionDetector()
    for _ in range(5):
        _, events = detector.process(frame_of(128 + rng.integers(-10, 10, (HEIGHT, WIDTH))))
        assert events == []


def test_dark_then_bright_is_one_scene_change_at_the_jump():
    meter = BrightnessMeter()
    sequence = [20] * 5 + [200] * 5
    changes = []
    for index, level in enumerate(sequence):
        output, events = meter.process(frame_of(np.full((HEIGHT, WIDTH), level)))
        changes += [(index, e) for e in events]
        # The bar: filled to the brightness from the left (red after a change, else white), dark after it.
        bar = YuvImage.from_frame(output).y[HEIGHT - 4]
        filled = round(WIDTH * level / 255)
        assert (bar[: filled - 1] == (81 if index >= 5 else 235)).all() and (bar[filled + 1 :] == 16).all()
    assert changes == [(5, {"type": "scene-change", "brightness": 200.0, "previous": 20.0, "distance": 1.0})]


def test_a_cut_between_equally_bright_pictures_is_a_scene_change_a_fade_is_not():
    meter = BrightnessMeter()
    half = np.zeros((HEIGHT, WIDTH))
    half[:, : WIDTH // 2] = 255  # mean 127.5, two-peaked histogram
    events = [meter.process(frame_of(np.full((HEIGHT, WIDTH), 128)))[1], meter.process(frame_of(half))[1]]
    assert [e[0]["type"] for e in events if e] == ["scene-change"]
    assert events[1][0]["brightness"] == pytest.approx(127.5, abs=0.5)
    fading, gradient = BrightnessMeter(), np.tile(np.linspace(0, 50, WIDTH), (HEIGHT, 1))
    assert all(not fading.process(frame_of(gradient + level))[1] for level in range(20, 200, 4))


def test_odd_sizes_and_other_pixel_formats_are_accepted():
    rgb = av.VideoFrame.from_ndarray(np.zeros((101, 161, 3), dtype=np.uint8), format="rgb24")
    output, _ = MotionDetector().process(rgb)
    assert (output.width, output.height, output.format.name) == (160, 100, "yuv420p")


# --- the registry ---------------------------------------------------------------------------


def test_builtins_by_id_and_alias():
    assert analytics.resolve("motion") == MotionDetector.id == "a06d94b748e5436f809cc9be3759675e"
    assert analytics.resolve("Brightness") == analytics.resolve("scene-change") == BrightnessMeter.id
    assert analytics.resolve(MotionDetector.id.upper()) == MotionDetector.id
    assert isinstance(analytics.create("motion"), MotionDetector)
    with pytest.raises(analytics.UnknownAlgorithm) as refused:
        analytics.resolve("dc51138a8284436f873418a21ba8cfa9")
    assert f"{MotionDetector.id} (motion)" in str(refused.value)


@pytest.fixture
def installed_plugin(tmp_path, monkeypatch):
    """A distribution on sys.path that declares an ``owt.analytics`` entry point (found by importlib.metadata)."""
    (tmp_path / "owt_invert_plugin.py").write_text(
        textwrap.dedent(
            """
            from streamengine.media.analytics.frames import YuvImage

            class Inverter:
                aliases = ("invert",)

                def process(self, frame):
                    image = YuvImage.from_frame(frame)
                    image.y[:] = 255 - image.y
                    return image.to_frame(frame), [{"type": "inverted"}]

            class Broken:
                def __init__(self):
                    raise RuntimeError("never made")
            """
        )
    )
    info = tmp_path / "owt_invert_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: owt-invert-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[owt.analytics]\n"
        "0123456789abcdef0123456789abcdef = owt_invert_plugin:Inverter\n"
        f"{MotionDetector.id} = owt_invert_plugin:Broken\n"  # may not replace a built-in
        "fedcba9876543210fedcba9876543210 = owt_invert_plugin_missing:Nothing\n"  # does not import
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    import sys

    sys.modules.pop("owt_invert_plugin", None)


def test_an_entry_point_plugin_is_found_by_id_and_alias(installed_plugin):
    known = analytics.algorithms()
    assert list(known) == [*analytics.BUILTINS, "0123456789abcdef0123456789abcdef"]
    assert known[MotionDetector.id] is MotionDetector
    assert analytics.resolve("invert") == "0123456789abcdef0123456789abcdef"
    output, events = analytics.create("invert").process(frame_of(np.full((HEIGHT, WIDTH), 16)))
    assert events == [{"type": "inverted"}] and YuvImage.from_frame(output).y.min() == 239
