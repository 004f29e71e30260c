"""Streaming-out job: subscribe (decoded), encode once to H.264 + AAC, push it live.

``rtmp`` is FLV to the RTMP URL, ``rtsp`` an RTSP ANNOUNCE/RECORD over TCP; ``hls`` and
``dash`` write a live playlist with a sliding window of segments (old ones deleted) — into
``MEDIA_ROOT/streaming/<room>/<job>/`` when the request gives no URL (the portal serves
that folder at ``/media/streaming/...``), or with HTTP ``PUT``/``POST`` to the request's
http(s) URL. Encoding and muxing: ``streamengine.media.live_output``.

An RTMP/RTSP server that cannot be reached when the job starts fails it at once; one
that goes away later is retried with backoff while the job keeps running
(``progress.reconnects``, ``progress.last_error``). A PATCH switches a source (the output
stays open) or changes the video parameters (a new encoder continues the same output).
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from aiortc.mediastreams import MediaStreamError
from django.conf import settings

from streamengine.client import Session
from streamengine.jobs.subscriptions import SubscribingJob
from streamengine.media.live_output import LiveOutput, Target, VideoSettings, default_bitrate

PLAYLISTS = {"hls": "index.m3u8", "dash": "index.mpd"}
DEFAULT_FRAMERATE = 30
DEFAULT_KEYFRAME_SECONDS = 2.0


def local_folder(domain_id: str, job_id: str) -> Path:
    """Where an hls/dash streaming-out without a URL writes (served by the portal)."""
    return Path(settings.MEDIA_ROOT) / "streaming" / domain_id / job_id


def local_playlist_path(domain_id: str, job_id: str, protocol: str) -> str:
    """The portal path of a local playlist (``MEDIA_URL`` + its place under ``MEDIA_ROOT``)."""
    return f"{settings.MEDIA_URL}streaming/{domain_id}/{job_id}/{PLAYLISTS[protocol]}"


def video_settings(video: dict | bool) -> VideoSettings:
    """The encoder's settings from ``media.video.parameters`` (all optional)."""
    parameters = (video or {}).get("parameters") or {}
    resolution = parameters.get("resolution") or {}
    width, height = resolution.get("width"), resolution.get("height")
    framerate = int(parameters.get("framerate") or DEFAULT_FRAMERATE)
    bitrate = parameters.get("bitrate") or 0
    if isinstance(bitrate, str):
        # "x0.8": of what the source is expected to carry at the output size; the decoded
        # frames do not say what bitrate they came at.
        bitrate = float(bitrate[1:]) * default_bitrate(width or 640, height or 480, framerate)
    else:
        bitrate *= 1000  # kbps
    return VideoSettings(
        width=width and width // 2 * 2,
        height=height and height // 2 * 2,
        framerate=framerate,
        bitrate=int(bitrate),
        keyframe_seconds=float(parameters.get("keyFrameInterval") or DEFAULT_KEYFRAME_SECONDS),
    )


def output_target(spec: dict, folder: Path) -> Target:
    protocol, url, parameters = spec["protocol"], spec.get("url") or "", spec.get("parameters") or {}
    if protocol == "rtmp":
        return Target(url, "flv", network=True)
    if protocol == "rtsp":
        return Target(url, "rtsp", {"rtsp_transport": "tcp"}, network=True)
    if protocol == "hls":
        options = {
            "hls_time": str(parameters.get("hlsTime", 2)),
            "hls_list_size": str(parameters.get("hlsListSize", 5)),
            # Old segments are deleted (OWT leaves them to fill the disk).
            "hls_flags": "delete_segments+independent_segments",
        }
    else:
        options = {
            "seg_duration": str(parameters.get("dashSegDuration", 2)),
            "window_size": str(parameters.get("dashWindowSize", 5)),
            "extra_window_size": "2",  # segments kept past the window for slow players, then removed
            "remove_at_exit": "0",
        }
    if url:
        options["method"] = parameters.get("method", "PUT")
        return Target(url, protocol, options, network=True)
    folder.mkdir(parents=True, exist_ok=True)
    return Target(str(folder / PLAYLISTS[protocol]), protocol, options)


class StreamingOutJob(SubscribingJob):
    kind = "streaming-out"
    # One decode + one libx264 encode: 0.25 core measured at 640x480 30 fps on synthetic video
    # (docs/media-jobs.md); camera content and 720p cost more, so a core is budgeted.
    cost = 1.0
    encoded = False

    async def start(self) -> None:
        media = self.spec["media"]
        folder = local_folder(self.job.domain_id, self.job.id)
        target = output_target(self.spec, folder)
        kinds = {kind for kind in ("audio", "video") if media.get(kind)}
        self.output = LiveOutput(target, kinds, video_settings(media.get("video")))
        self._init_sources()
        await self._subscribe(media)
        self.result = {"output": target.url if target.network else str(folder)}

    async def _pump(self, session: Session, kinds: list[str]) -> None:
        await asyncio.gather(*(self._pump_track(session, kind) for kind in kinds))

    async def _pump_track(self, session: Session, kind: str) -> None:
        track = session.tracks[kind]
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return  # unsubscribed (a source switch) or the source ended (_check_sources)
            paused = (self.spec["media"].get(kind) or {}).get("status") == "inactive"
            if self.sessions.get(kind) is session and not paused:
                self.output.push(kind, frame)

    def _restart_track(self, kind: str) -> None:
        self.output.restart_track(kind)

    async def reconfigure(self, spec: dict) -> None:
        settings_now = video_settings(spec["media"].get("video"))
        await self._switch_sources(spec)
        if settings_now != self.output.video:
            self.output.set_video(settings_now)

    def progress(self) -> dict:
        self._check_sources()
        if self.output.failure:
            self.end(self.output.failure)
        return {**super().progress(), **self.output.progress(), "host": socket.gethostname()}

    async def stop(self) -> None:
        await self._stop_pumps()
        await asyncio.to_thread(self.output.close)
