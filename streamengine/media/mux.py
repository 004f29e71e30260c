"""Write the encoded frames the SFU forwards into a file, without re-encoding (PyAV muxers).

:class:`EncodedMuxer` takes ``(kind, codec, data, rtp_timestamp)`` as a subscription
delivers them and muxes them as they are: VP8/VP9/H.264 video and Opus audio into
Matroska (WebM-like), H.264 into MP4/MPEG-TS. What a container cannot hold as is (Opus in
MP4/TS) goes through :class:`AudioTranscoder` (Opus → AAC), the only decode on this path.

Timestamps come from RTP: each track's clock is unwrapped from its first frame and placed
on a common timeline by its first frame's arrival, so audio and video stay in sync across
packet loss and pauses (a gap in RTP time stays a gap in the file). Matroska clusters and
fragmented MP4 fragments are closed about every second and flushed to disk, so a file
killed mid-write (kill -9) plays up to its last second.
"""

from __future__ import annotations

import fractions
import time
from dataclasses import dataclass, field
from pathlib import Path

import av

from streamengine.media.passthrough import (
    CLOCK_RATES,
    H264_PPS,
    H264_SPS,
    h264_nal_types,
    is_keyframe,
    vp8_resolution,
)

# OWT container name → (PyAV format, file extension, muxer options).
CONTAINERS = {
    "mkv": ("matroska", "mkv", {"cluster_time_limit": "1000", "flush_packets": "1"}),
    "mp4": ("mp4", "mp4", {"movflags": "frag_keyframe+empty_moov+delay_moov+default_base_moof", "flush_packets": "1"}),
    "ts": ("mpegts", "ts", {"flush_packets": "1"}),
}
# What each container holds as is, per kind (others: transcoded where we can, else refused).
HOLDS = {
    "mkv": {"video": {"vp8", "vp9", "h264"}, "audio": {"opus", "pcmu", "pcma", "aac"}},
    "mp4": {"video": {"h264"}, "audio": {"aac"}},
    "ts": {"video": {"h264"}, "audio": {"aac"}},
}
# How long the muxer waits for the tracks it expects before writing the header without them.
HEADER_WAIT_SECONDS = 5.0


class AudioTranscoder:
    """Opus frames → AAC packets, for containers that cannot hold Opus."""

    def __init__(self) -> None:
        self.decoder = av.CodecContext.create("opus", "r")
        self.encoder = av.CodecContext.create("aac", "w")
        self.encoder.sample_rate = 48000
        self.encoder.layout = "stereo"
        self.encoder.format = "fltp"
        self.encoder.time_base = fractions.Fraction(1, 48000)
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
        self.next_pts: int | None = None

    def packets(self, data: bytes, pts: int) -> list[av.Packet]:
        out = []
        packet = av.Packet(data)
        packet.pts, packet.time_base = pts, fractions.Fraction(1, 48000)
        for frame in self.decoder.decode(packet):
            for resampled in self.resampler.resample(frame):
                if self.next_pts is None:
                    self.next_pts = pts
                resampled.pts, self.next_pts = self.next_pts, self.next_pts + resampled.samples
                out += self.encoder.encode(resampled)
        return out


@dataclass
class _Track:
    kind: str
    codec: str
    stream: object = None
    first_timestamp: int | None = None
    last_timestamp: int = 0
    wraps: int = 0
    offset: float = 0.0  # seconds from the file's start to this track's first frame
    frames: int = 0
    transcoder: AudioTranscoder | None = None
    pending: list = field(default_factory=list)
    restarting: bool = False  # a new source: video resumes at its first keyframe


def starts_video(codec: str, data: bytes) -> bool:
    """A frame a video track can start on: a keyframe, for H.264 with its parameter sets
    (the MP4 muxer builds its avcC from that first frame; one whose SPS/PPS were lost would
    make the whole file unreadable)."""
    if codec == "h264":
        return is_keyframe(codec, data) and {H264_SPS, H264_PPS} <= h264_nal_types(data)
    return is_keyframe(codec, data)


class EncodedMuxer:
    def __init__(self, path: Path, container: str, kinds: set[str]) -> None:
        self.path = path
        self.container = container
        self.format, _, self.options = CONTAINERS[container]
        self.kinds = kinds  # what to expect before the header is written
        self.tracks: dict[str, _Track] = {}
        self.output: av.container.OutputContainer | None = None
        self.started = time.monotonic()
        self.video_size: tuple[int, int] | None = None
        self.bytes = 0
        self.origin = 0.0  # seconds after ``started`` at which the file's timeline begins

    def _unwrapped(self, track: _Track, timestamp: int) -> int:
        if track.first_timestamp is None:
            track.first_timestamp = track.last_timestamp = timestamp
        if timestamp < track.last_timestamp and track.last_timestamp - timestamp > 2**31:
            track.wraps += 1
        track.last_timestamp = timestamp
        return timestamp + track.wraps * 2**32 - track.first_timestamp

    def write(self, kind: str, codec: str, data: bytes, timestamp: int) -> None:
        track = self.tracks.get(kind)
        if track is None:
            if kind == "video" and not starts_video(codec, data):
                return  # a file starts at a keyframe
            track = self.tracks[kind] = _Track(kind, codec, offset=time.monotonic() - self.started)
            if kind == "audio" and codec not in HOLDS[self.container]["audio"]:
                track.transcoder = AudioTranscoder()
        if track.restarting:
            if kind == "video" and not starts_video(codec, data):
                return
            track.restarting = False
        if kind == "video" and codec == "vp8" and self.video_size is None:
            self.video_size = vp8_resolution(data)
        ticks = self._unwrapped(track, timestamp) + round(track.offset * CLOCK_RATES[kind])
        if self.output is None:
            track.pending.append((data, ticks))
            waited = time.monotonic() - self.started
            if set(self.tracks) >= self.kinds or waited > HEADER_WAIT_SECONDS:
                self._open()
            return
        self._mux(track, data, ticks)

    def restart_track(self, kind: str) -> None:
        """The track's source changes: its new RTP clock continues the file's timeline from now."""
        track = self.tracks.get(kind)
        if track is not None:
            track.first_timestamp, track.wraps = None, 0
            track.offset = time.monotonic() - self.started
            track.restarting = True

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.output = av.open(str(self.path), "w", format=self.format, options=self.options)
        for track in self.tracks.values():
            if track.kind == "video":
                width, height = self.video_size or (640, 480)
                track.stream = self.output.add_mux_stream(track.codec, width=width, height=height)
                track.stream.time_base = fractions.Fraction(1, CLOCK_RATES["video"])
            elif track.transcoder is not None:
                track.stream = self.output.add_stream("aac", rate=48000, layout="stereo")
            else:
                track.stream = self.output.add_mux_stream(track.codec, rate=48000)
                track.stream.time_base = fractions.Fraction(1, CLOCK_RATES["audio"])
        # The file starts at the video's first keyframe (video cannot start anywhere else):
        # audio from before it is dropped, so the tracks start together.
        video = self.tracks.get("video")
        self.origin = video.offset if video is not None else min(t.offset for t in self.tracks.values())
        for track in self.tracks.values():
            start = round(self.origin * CLOCK_RATES[track.kind])
            for data, ticks in track.pending:
                if ticks >= start:
                    self._mux(track, data, ticks)
            track.pending.clear()

    def _mux(self, track: _Track, data: bytes, ticks: int) -> None:
        if track.stream is None:
            return  # a track that appeared after the header was written
        ticks -= round(self.origin * CLOCK_RATES[track.kind])
        if ticks < 0:
            return
        if track.transcoder is not None:
            for packet in track.transcoder.packets(data, ticks):
                packet.stream = track.stream
                self.output.mux(packet)
        else:
            packet = av.Packet(data)
            packet.stream = track.stream
            packet.pts = packet.dts = ticks
            packet.time_base = fractions.Fraction(1, CLOCK_RATES[track.kind])
            if track.kind == "video" and is_keyframe(track.codec, data):
                packet.is_keyframe = True
            self.output.mux(packet)
        track.frames += 1
        self.bytes += len(data)

    def close(self) -> None:
        if self.output is None and any(t.pending for t in self.tracks.values()):
            self._open()
        if self.output is not None:
            for track in self.tracks.values():
                if track.transcoder is not None:
                    for packet in track.transcoder.encoder.encode(None):
                        packet.stream = track.stream
                        self.output.mux(packet)
            self.output.close()
            self.output = None

    def progress(self) -> dict:
        return {"bytes": self.bytes, "frames": {kind: t.frames for kind, t in self.tracks.items()}}
