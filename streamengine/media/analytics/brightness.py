"""Brightness meter and scene-change detector.

Per frame: the mean luma (0–255, sampled every 4th pixel of every 4th row) and a 32-bin
luma histogram. A scene change is a jump from the previous frame: the mean by more than
``mean_jump`` or the histogram by more than ``histogram_jump`` (half the L1 distance of the
normalised histograms: 0 same, 1 disjoint), so a cut between two equally bright scenes
is seen too while a slow fade is not. The output carries a bar along the bottom whose
filled length is the brightness, red for ``flash_frames`` after a scene change.
Event: ``scene-change`` with ``brightness`` (the new mean), ``previous`` and ``distance``.
"""

from __future__ import annotations

from typing import ClassVar

import av
import numpy as np

from streamengine.media.analytics.frames import BLACK, RED, WHITE, YuvImage

BINS = 32
SAMPLE_STEP = 4


class BrightnessMeter:
    id: ClassVar[str] = "2c42cf09afdb4b12a53a2c12342f5648"
    aliases: ClassVar[tuple[str, ...]] = ("brightness", "scene-change")
    description: ClassVar[str] = "brightness bar and scene-change detection; event scene-change"

    def __init__(self, *, mean_jump: float = 30.0, histogram_jump: float = 0.5, flash_frames: int = 10) -> None:
        self.mean_jump, self.histogram_jump, self.flash_frames = mean_jump, histogram_jump, flash_frames
        self.previous: tuple[float, np.ndarray] | None = None
        self.flash = 0

    def measure(self, image: YuvImage) -> tuple[float, np.ndarray]:
        """(mean luma, normalised histogram) of the frame."""
        sample = image.y[::SAMPLE_STEP, ::SAMPLE_STEP]
        histogram = np.bincount(sample.ravel() >> 3, minlength=BINS) / sample.size  # 256 / 8 = 32 bins
        return float(sample.mean()), histogram

    def process(self, frame: av.VideoFrame) -> tuple[av.VideoFrame, list[dict]]:
        image = YuvImage.from_frame(frame)
        brightness, histogram = self.measure(image)
        events: list[dict] = []
        if self.previous is not None:
            before, previous_histogram = self.previous
            distance = float(np.abs(histogram - previous_histogram).sum()) / 2
            if abs(brightness - before) > self.mean_jump or distance > self.histogram_jump:
                self.flash = self.flash_frames
                events.append(
                    {
                        "type": "scene-change",
                        "brightness": round(brightness, 1),
                        "previous": round(before, 1),
                        "distance": round(distance, 3),
                    }
                )
            elif self.flash:
                self.flash -= 1
        self.previous = brightness, histogram
        bar_height = max(8, image.height // 24 // 2 * 2)
        top = image.height - bar_height
        image.fill([0, top, image.width, bar_height], BLACK)
        image.fill([0, top, round(image.width * brightness / 255), bar_height], RED if self.flash else WHITE)
        return image.to_frame(frame), events
