"""Video encoding with PyAV, once per output, for the outputs several subscribers share.

The mixer encodes its picture with it (one encode per view, ``mixer.py``) and the SFU its
transcoded outputs (one encode per distinct format and parameters of a publication,
``transcode.SharedEncoding``); aiortc then only packetizes the packets for each subscriber.
"""

from __future__ import annotations

from fractions import Fraction

import av

VIDEO_CLOCK = 90000

# PyAV encoder names and real-time options per codec.
ENCODERS = {
    "vp8": ("libvpx", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "error-resilient": "1"}),
    "vp9": ("libvpx-vp9", {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0", "row-mt": "1"}),
    "h264": ("libx264", {"preset": "ultrafast", "tune": "zerolatency", "profile": "baseline"}),
}


class VideoEncoder:
    """One encoder for the mixed picture (PyAV): codec, bitrate (kbps), key-frame interval (s)."""

    def __init__(self, codec: str, width: int, height: int, framerate: int, bitrate_kbps: float, keyframe_seconds: int):
        name, options = ENCODERS[codec]
        self.codec = codec
        self.context = av.CodecContext.create(name, "w")
        self.context.width, self.context.height = width, height
        self.context.pix_fmt = "yuv420p"
        self.context.framerate = Fraction(framerate)
        self.context.time_base = Fraction(1, VIDEO_CLOCK)
        self.context.bit_rate = int(bitrate_kbps * 1000)
        self.context.gop_size = max(1, int(keyframe_seconds * framerate))
        self.context.thread_count = 1
        self.context.options = dict(options)
        self.context.open()
        self.keyframe_wanted = True

    def encode(self, frame: av.VideoFrame, pts: int) -> list[av.Packet]:
        frame.pts, frame.time_base = pts, Fraction(1, VIDEO_CLOCK)
        keyframe = self.keyframe_wanted
        if keyframe:
            frame.pict_type = av.video.frame.PictureType.I
            self.keyframe_wanted = False
        packets = list(self.context.encode(frame))
        if keyframe:  # the frame may be shared (MediaRelay): the next reader must not inherit it
            frame.pict_type = av.video.frame.PictureType.NONE
        return packets


def default_bitrate(width: int, height: int, framerate: int) -> float:
    """kbps for a view without ``parameters.bitrate``: 0.08 bit per pixel (640x480 at 24 fps: 590)."""
    return max(150.0, round(width * height * framerate * 0.08 / 1000, -1))
