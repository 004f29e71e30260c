"""Decoded video frames as numpy planes, and the few drawing primitives the algorithms' overlays need.

Frames are handled as planar YUV 4:2:0 (what the WebRTC decoders give), so drawing is
writing into the planes: no RGB round trip per frame. Colours are BT.601 limited-range
(Y, U, V) triples.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np

Colour = tuple[int, int, int]
GREEN: Colour = (145, 54, 34)
RED: Colour = (81, 90, 240)
WHITE: Colour = (235, 128, 128)
BLACK: Colour = (16, 128, 128)


@dataclass
class YuvImage:
    """A frame's three planes (writable copies): ``y`` is height × width, ``u``/``v`` half that."""

    y: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @property
    def width(self) -> int:
        return self.y.shape[1]

    @property
    def height(self) -> int:
        return self.y.shape[0]

    @classmethod
    def from_frame(cls, frame: av.VideoFrame) -> YuvImage:
        if frame.format.name != "yuv420p" or frame.width % 2 or frame.height % 2:
            # 4:2:0 needs even sizes; an odd row or column is dropped.
            frame = frame.reformat(width=frame.width // 2 * 2, height=frame.height // 2 * 2, format="yuv420p")
        planes = frame.to_ndarray(format="yuv420p")
        height, width = frame.height, frame.width
        chroma = planes[height:].reshape(2, height // 2, width // 2)
        return cls(planes[:height], chroma[0], chroma[1])

    @classmethod
    def filled(cls, width: int, height: int, colour: Colour = BLACK) -> YuvImage:
        def plane(w: int, h: int, value: int) -> np.ndarray:
            return np.full((h, w), value, dtype=np.uint8)

        return cls(
            plane(width, height, colour[0]),
            plane(width // 2, height // 2, colour[1]),
            plane(width // 2, height // 2, colour[2]),
        )

    def to_frame(self, like: av.VideoFrame | None = None) -> av.VideoFrame:
        """A new frame of these planes, with ``like``'s timestamp."""
        stacked = np.concatenate([self.y.ravel(), self.u.ravel(), self.v.ravel()])
        frame = av.VideoFrame.from_ndarray(stacked.reshape(self.height * 3 // 2, self.width), format="yuv420p")
        if like is not None:
            frame.pts = like.pts
            if like.time_base is not None:
                frame.time_base = like.time_base
        return frame

    def fill(self, box: list[int], colour: Colour) -> None:
        """Paint the rectangle ``[x, y, w, h]`` (clipped to the image)."""
        x0, y0 = max(0, box[0]), max(0, box[1])
        x1, y1 = min(self.width, box[0] + box[2]), min(self.height, box[1] + box[3])
        if x1 <= x0 or y1 <= y0:
            return
        self.y[y0:y1, x0:x1] = colour[0]
        # Chroma covers 2×2 luma pixels: round outwards so a thin line keeps its colour.
        cx0, cy0, cx1, cy1 = x0 // 2, y0 // 2, (x1 + 1) // 2, (y1 + 1) // 2
        self.u[cy0:cy1, cx0:cx1] = colour[1]
        self.v[cy0:cy1, cx0:cx1] = colour[2]

    def outline(self, box: list[int], colour: Colour, thickness: int) -> None:
        """Draw the rectangle ``[x, y, w, h]``'s border, ``thickness`` pixels inside it."""
        x, y, w, h = box
        t = max(1, min(thickness, w // 2 or 1, h // 2 or 1))
        for edge in ([x, y, w, t], [x, y + h - t, w, t], [x, y, t, h], [x + w - t, y, t, h]):
            self.fill(edge, colour)


def downscaled(luma: np.ndarray, step: int) -> np.ndarray:
    """Each ``step`` × ``step`` block's mean (float32): cheap, and averages coding noise away."""
    if step <= 1:
        return luma.astype(np.float32)
    rows, cols = luma.shape[0] // step, luma.shape[1] // step
    blocks = luma[: rows * step, : cols * step].reshape(rows, step, cols, step)
    return blocks.mean(axis=(1, 3), dtype=np.float32)
