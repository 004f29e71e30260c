"""The identity algorithm: frames out as they came in, so the job only re-encodes them.

With the job's ``media.video.parameters`` (resolution, framerate) and ``format`` this is the
stream-engine's transcoding processor: one decode and one encode per transcoded stream, which
any number of subscribers then receive forwarded.
"""

from __future__ import annotations

from typing import ClassVar

import av


class Transcode:
    id: ClassVar[str] = "7d3f5a2c9e1b4f608a4c2e9d1b7f3a65"
    aliases: ClassVar[tuple[str, ...]] = ("transcode",)
    description: ClassVar[str] = "no analysis: the stream re-encoded (format, resolution, frame rate)"

    def process(self, frame: av.VideoFrame) -> tuple[av.VideoFrame, list[dict]]:
        return frame, []
