"""Encode decoded frames once to H.264 + AAC and mux them live to one output (PyAV).

:class:`LiveOutput` is a sink: ``push(kind, frame)`` from the event loop, a writer thread
does the CPU work (scale, encode, mux), so the loop that receives RTP never waits for the
encoder. What the output is — FLV to an RTMP server, RTSP, an HLS or DASH folder or HTTP
PUT target — is the caller's ``av.open`` arguments (:class:`Target`).

Timing: each kind's frames are placed on the output's timeline by their own media clock
(``frame.time``, unwrapped) from their first frame's arrival, so audio and video stay in
sync however late each starts. Video is retimed to the output frame rate: a frame whose
slot is taken is dropped, a missing slot repeats the last frame (up to a second), so the
output holds its rate whatever the source sends.

The video encoder is not the container's: each encoder repeats SPS/PPS in every keyframe,
so a new encoder (other resolution, frame rate, bitrate, GOP: :meth:`set_video`) continues
the same output — the RTMP connection or the HLS playlist stays as it is. A write error
(the RTMP server went away) closes the output and reopens it with backoff; frames that
arrive meanwhile are dropped and the next output starts at a keyframe.
"""

from __future__ import annotations

import contextlib
import fractions
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field

import av

logger = logging.getLogger(__name__)

AUDIO_RATE = 48000  # the default output rate
VIDEO_TIME_BASE = fractions.Fraction(1, 90000)
MAX_REPEATED_SECONDS = 1.0  # a longer video gap stays a gap instead of a frozen frame
BACKOFF_SECONDS = (0.5, 1.0, 2.0, 4.0, 8.0)
DRIFT_SECONDS = 0.2  # audio this far off the timeline is resynchronised
QUEUE_FRAMES = 120  # ~1.5 s of audio + video: more means the encoder cannot keep up


@dataclass(frozen=True)
class Target:
    """What ``av.open`` writes to."""

    url: str
    format: str
    options: dict[str, str] = field(default_factory=dict)
    network: bool = False  # write errors are the server's: reconnect instead of failing


@dataclass(frozen=True)
class VideoSettings:
    """The encoder's parameters; ``None`` width/height: the source's size."""

    width: int | None = None
    height: int | None = None
    framerate: int = 30
    bitrate: int = 0  # bits/s; 0: picked from the output size
    keyframe_seconds: float = 2.0
    # Hold the bitrate (x264 CBR with HRD filler) instead of spending less on easy pictures:
    # what a recording asked at a bitrate (egress) is expected to carry.
    constant_bitrate: bool = False


@dataclass(frozen=True)
class AudioSettings:
    """The AAC encoder's parameters; bitrate 0: the encoder's default."""

    rate: int = AUDIO_RATE
    channels: int = 2
    bitrate: int = 0  # bits/s


def default_bitrate(width: int, height: int, framerate: int) -> int:
    """About 0.1 bit per pixel (1 Mbit/s at 640x480 30 fps), what OWT's tables give for H.264."""
    return max(100_000, int(width * height * framerate * 0.11))


def _silence(samples: int, audio: AudioSettings) -> av.AudioFrame:
    frame = av.AudioFrame(format="fltp", layout=_layout(audio), samples=samples)
    for plane in frame.planes:
        plane.update(bytes(plane.buffer_size))
    frame.sample_rate = audio.rate
    return frame


def _layout(audio: AudioSettings) -> str:
    return "mono" if audio.channels == 1 else "stereo"


class _Clock:
    """A track's media time (unwrapped 32-bit RTP timestamps) on the output's timeline."""

    def __init__(self, offset: float) -> None:
        self.offset = offset  # output seconds of the first frame
        self.first: int | None = None
        self.last = 0
        self.wraps = 0

    def seconds(self, frame: av.frame.Frame) -> float:
        pts = frame.pts or 0
        if self.first is None:
            self.first = self.last = pts
        if pts < self.last and self.last - pts > 2**31:
            self.wraps += 1
        self.last = pts
        return self.offset + float((pts + self.wraps * 2**32 - self.first) * frame.time_base)


class LiveOutput:
    def __init__(
        self, target: Target, kinds: set[str], video: VideoSettings, audio: AudioSettings | None = None
    ) -> None:
        self.target = target
        self.kinds = kinds
        self.video = video
        self.audio = audio or AudioSettings()
        self.started = time.monotonic()
        self.clocks: dict[str, _Clock] = {}
        self.frames = dict.fromkeys(kinds, 0)
        self.dropped = 0
        self.reconnects = 0
        self.last_error = ""
        self.failure = ""  # the output cannot be written (not a network one): the job fails
        self.queue: queue.Queue = queue.Queue(maxsize=QUEUE_FRAMES)
        self.output: av.container.OutputContainer | None = None
        self.streams: dict[str, av.stream.Stream] = {}
        self.encoder: av.VideoCodecContext | None = None
        self.encoder_key: tuple | None = None
        self.resampler: av.AudioResampler | None = None
        self.resampled_from: tuple | None = None  # the input format the resampler was made for
        self.audio_pts: int | None = None
        self.video_seconds: float | None = None  # output time of the last video frame written
        self.last_frame: av.VideoFrame | None = None
        self.retry_at = 0.0
        self.failures = 0
        # Until the first packet is written, a network output that cannot be opened is a
        # mistake in the request (wrong host, port, path): the job fails instead of retrying.
        # (No separate reachability probe: a server that takes one client would spend it.)
        self.written = False
        self.thread = threading.Thread(target=self._write_loop, name="live-output", daemon=True)
        self.thread.start()

    # The event loop's side.

    def push(self, kind: str, frame: av.frame.Frame) -> None:
        clock = self.clocks.get(kind)
        if clock is None:
            clock = self.clocks[kind] = _Clock(time.monotonic() - self.started)
        try:
            self.queue.put_nowait((kind, frame, clock.seconds(frame)))
        except queue.Full:
            self.dropped += 1

    def restart_track(self, kind: str) -> None:
        """A new source for ``kind``: its clock continues the timeline from now."""
        self.clocks.pop(kind, None)

    def set_video(self, video: VideoSettings) -> None:
        """New encoder parameters, applied from the next video frame (a new encoder)."""
        self.video = video

    def close(self) -> None:
        """Flush what is queued and encoded, write the trailer (HLS: ``#EXT-X-ENDLIST``)."""
        self.queue.put(None)
        self.thread.join()

    def progress(self) -> dict:
        progress = {"frames": dict(self.frames), "dropped": self.dropped, "reconnects": self.reconnects}
        if self.last_error:
            progress["last_error"] = self.last_error
        return progress

    # The writer thread's side.

    def _write_loop(self) -> None:
        while (item := self.queue.get()) is not None:
            try:
                self._write(*item)
            except (av.FFmpegError, OSError) as exc:
                self._lost(exc)
        self._finish()

    def _write(self, kind: str, frame: av.frame.Frame, seconds: float) -> None:
        if self.output is None:
            if time.monotonic() < self.retry_at:
                self.dropped += 1
                return
            self._open()
        if kind == "video":
            self._write_video(frame, seconds)
        else:
            self._write_audio(frame, seconds)

    def _open(self) -> None:
        self.output = av.open(self.target.url, "w", format=self.target.format, options=self.target.options)
        if "video" in self.kinds:
            width, height = self._size(self.last_frame)
            stream = self.output.add_mux_stream("h264", width=width, height=height)
            stream.time_base = VIDEO_TIME_BASE
            self.streams["video"] = stream
            self.encoder_key = None  # the new output starts with a keyframe of a new encoder
        if "audio" in self.kinds:
            stream = self.output.add_stream("aac", rate=self.audio.rate, layout=_layout(self.audio))
            if self.audio.bitrate:
                stream.codec_context.bit_rate = self.audio.bitrate
            self.streams["audio"] = stream
            self.audio_pts = None

    def _size(self, frame: av.VideoFrame | None) -> tuple[int, int]:
        if self.video.width and self.video.height:
            return self.video.width, self.video.height
        if frame is not None:
            return frame.width // 2 * 2, frame.height // 2 * 2  # yuv420p needs even sizes
        return 640, 480

    def _video_encoder(self, frame: av.VideoFrame) -> av.VideoCodecContext:
        settings = self.video
        width, height = self._size(frame)
        key = (width, height, settings)
        if key != self.encoder_key:
            self._flush_video()
            encoder = av.CodecContext.create("libx264", "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuv420p"
            encoder.time_base = fractions.Fraction(1, settings.framerate)
            encoder.framerate = settings.framerate
            encoder.bit_rate = settings.bitrate or default_bitrate(width, height, settings.framerate)
            encoder.gop_size = max(1, round(settings.keyframe_seconds * settings.framerate))
            # veryfast + zerolatency: no lookahead, no B-frames (a live output cannot wait);
            # no global header, so SPS/PPS precede every keyframe and a later encoder may
            # change the size mid-stream.
            encoder.options = {"preset": "veryfast", "tune": "zerolatency"}
            if settings.constant_bitrate:
                rate = str(encoder.bit_rate)
                encoder.options |= {"nal-hrd": "cbr", "maxrate": rate, "minrate": rate, "bufsize": rate}
            self.encoder, self.encoder_key = encoder, key
        return self.encoder

    def _write_video(self, frame: av.VideoFrame, seconds: float) -> None:
        encoder = self._video_encoder(frame)
        rate = self.video.framerate
        slot = round(seconds * rate)
        last = None if self.video_seconds is None else round(self.video_seconds * rate)
        if last is not None and slot <= last:
            return  # the source is faster than the output frame rate
        width, height = encoder.width, encoder.height
        if (frame.width, frame.height, frame.format.name) != (width, height, "yuv420p"):
            frame = frame.reformat(width=width, height=height, format="yuv420p")
        repeat = self.last_frame is not None and last is not None and slot - last <= MAX_REPEATED_SECONDS * rate
        if repeat and (self.last_frame.width, self.last_frame.height) == (width, height):
            for missing in range(last + 1, slot):
                self._encode_video(self.last_frame, missing)
        self._encode_video(frame, slot)
        self.last_frame = frame

    def _encode_video(self, frame: av.VideoFrame, slot: int) -> None:
        frame.pts, frame.time_base = slot, self.encoder.time_base
        self._mux("video", self.encoder.encode(frame))
        self.video_seconds = slot / self.video.framerate
        self.frames["video"] += 1

    def _write_audio(self, frame: av.AudioFrame, seconds: float) -> None:
        # The encoder wants gapless samples, the timeline wants the media time: a source that
        # falls behind (a new source, lost packets) is padded with silence, one that runs
        # ahead loses frames until the timeline catches up.
        rate = self.audio.rate
        wanted = round(seconds * rate)
        if self.audio_pts is None:
            self.audio_pts = wanted
        elif wanted - self.audio_pts > DRIFT_SECONDS * rate:
            self._encode_audio(_silence(wanted - self.audio_pts, self.audio))
        elif self.audio_pts - wanted > DRIFT_SECONDS * rate:
            return
        source = (frame.format.name, frame.layout.name, frame.sample_rate)
        if source != self.resampled_from:
            self.resampler = av.AudioResampler(format="fltp", layout=_layout(self.audio), rate=rate)
            self.resampled_from = source
        frame.pts = None
        for resampled in self.resampler.resample(frame):
            self._encode_audio(resampled)
        self.frames["audio"] += 1

    def _encode_audio(self, frame: av.AudioFrame) -> None:
        frame.pts, frame.time_base = self.audio_pts, fractions.Fraction(1, self.audio.rate)
        self.audio_pts += frame.samples
        self._mux("audio", self.streams["audio"].encode(frame))

    def _mux(self, kind: str, packets: list[av.Packet]) -> None:
        for packet in packets:
            packet.stream = self.streams[kind]
            self.output.mux(packet)
        if packets:
            self.failures = 0
            self.written = True

    def _flush_video(self) -> None:
        if self.encoder is not None and self.output is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                self._mux("video", self.encoder.encode(None))

    def _lost(self, exc: Exception) -> None:
        self.last_error = f"{self.target.url}: {exc}"
        logger.warning("live output %s", self.last_error)
        self._close_output()
        if not self.target.network or not self.written:
            # FFmpeg's message repeats the URL; its errno says why ("Connection refused").
            why = os.strerror(exc.errno) if getattr(exc, "errno", None) else str(exc)
            self.failure = f"cannot connect to {self.target.url}: {why}" if self.target.network else self.last_error
            self.retry_at = float("inf")
            return
        self.reconnects += 1
        self.retry_at = time.monotonic() + BACKOFF_SECONDS[min(self.failures, len(BACKOFF_SECONDS) - 1)]
        self.failures += 1

    def _close_output(self) -> None:
        output, self.output, self.encoder, self.encoder_key = self.output, None, None, None
        self.streams = {}
        if output is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                output.close()

    def _finish(self) -> None:
        if self.output is None:
            return
        self._flush_video()
        if "audio" in self.streams:
            with contextlib.suppress(av.FFmpegError, OSError):
                self._mux("audio", self.streams["audio"].encode(None))
        self._close_output()
