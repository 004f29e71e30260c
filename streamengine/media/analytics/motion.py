"""Motion detection by frame differencing: where did the picture change since the last frame?

Luma is averaged over blocks (about 160 columns whatever the size: cheap, and the block
mean hides coding noise), compared with the previous frame's, and the blocks whose mean
moved by more than ``threshold`` count as changed. Enough changed blocks (``min_area`` of
the frame) is motion; its box is the bounding box of the changed blocks, drawn green on
the output while the motion lasts (and ``hold_frames`` after, so a duplicated frame does
not blink it). Events: ``motion`` with the box when motion starts or the box has moved
(overlaps the last announced one by less than ``move_iou``; at most once per ``move_frames``
frames, so something crossing the picture is a few events, not one per frame), and
``motion-end`` once it has stopped.
"""

from __future__ import annotations

from typing import ClassVar

import av
import numpy as np

from streamengine.media.analytics.frames import GREEN, YuvImage, downscaled

ANALYSED_COLUMNS = 160


def overlap(a: list[int], b: list[int]) -> float:
    """Intersection over union of two ``[x, y, w, h]`` boxes."""
    w = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    h = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    shared = w * h
    return shared / (a[2] * a[3] + b[2] * b[3] - shared)


class MotionDetector:
    id: ClassVar[str] = "a06d94b748e5436f809cc9be3759675e"
    aliases: ClassVar[tuple[str, ...]] = ("motion",)
    description: ClassVar[str] = "motion detection: a green box around what moved; events motion, motion-end"

    def __init__(
        self,
        *,
        threshold: float = 25.0,
        min_area: float = 0.002,
        move_iou: float = 0.5,
        move_frames: int = 15,
        hold_frames: int = 15,
    ) -> None:
        self.threshold, self.min_area, self.hold_frames = threshold, min_area, hold_frames
        self.move_iou, self.move_frames = move_iou, move_frames
        self.since_announced = 0  # frames since the last motion event
        self.previous: np.ndarray | None = None
        self.box: list[int] | None = None  # the box drawn
        self.announced: list[int] | None = None  # the last box an event carried
        self.still = 0  # frames without motion since the last with it

    def changed_box(self, image: YuvImage) -> list[int] | None:
        """The bounding box ``[x, y, w, h]`` (full-size pixels) of what changed since the last frame."""
        step = max(1, image.width // ANALYSED_COLUMNS)
        small = downscaled(image.y, step)
        previous, self.previous = self.previous, small
        if previous is None or previous.shape != small.shape:
            return None
        changed = np.abs(small - previous) > self.threshold
        if changed.mean() < self.min_area:
            return None
        rows, cols = np.flatnonzero(changed.any(axis=1)), np.flatnonzero(changed.any(axis=0))
        x, y = int(cols[0]) * step, int(rows[0]) * step
        right = image.width if cols[-1] == changed.shape[1] - 1 else (int(cols[-1]) + 1) * step
        bottom = image.height if rows[-1] == changed.shape[0] - 1 else (int(rows[-1]) + 1) * step
        return [x, y, right - x, bottom - y]

    def process(self, frame: av.VideoFrame) -> tuple[av.VideoFrame, list[dict]]:
        image = YuvImage.from_frame(frame)
        box = self.changed_box(image)
        events: list[dict] = []
        self.since_announced += 1
        if box is not None:
            self.box, self.still = box, 0
            moved = self.announced is not None and overlap(box, self.announced) < self.move_iou
            if self.announced is None or (moved and self.since_announced >= self.move_frames):
                self.announced, self.since_announced = box, 0
                events.append({"type": "motion", "box": box})
        elif self.box is not None:
            self.still += 1
            if self.still > self.hold_frames:
                self.box = self.announced = None
                events.append({"type": "motion-end"})
        if self.box is not None:
            image.outline(self.box, GREEN, thickness=max(4, image.width // 80 // 2 * 2))
        return image.to_frame(frame), events
