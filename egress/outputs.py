"""What an egress task writes: file names, the HLS/MP4 targets, encoder settings.

Every task writes into its own folder, ``MEDIA_ROOT/recordings/egress/<app>/<task>/``
(the ``recordings`` storage's ``egress/<app>/<task>/``), so two tasks never write the same
name whatever their ``filename_pattern`` (the original's uploader put bare segment names
side by side). Inside it, the pattern's placeholders are filled once when the task starts:
``{date}`` (YYYYmmdd, UTC), ``{time}`` (HHMMSS), ``{region}`` (``EGRESS_REGION``),
``{task_id}``, ``{channel}``, and ``{user}`` for an individual recording (added as a
``_<user>`` suffix when the pattern lacks it, so users never share a name).

HLS is an event playlist ``<name>.m3u8`` with ``<name>_00001.ts`` … segments, closed
with ``#EXT-X-ENDLIST``; MP4 is fragmented at each keyframe, so a file cut short by a
killed worker still plays up to its last fragment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings

from streamengine.media.live_output import AudioSettings, Target, VideoSettings

PLACEHOLDERS = ("date", "time", "region", "task_id", "channel", "user")
PATTERN = re.compile(r"\{(\w+)\}")
UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
KEYFRAME_SECONDS = 2.0  # segments are cut at keyframes: a 6 s segment holds three GOPs


def task_folder(app_id: str, task_id: str) -> Path:
    return Path(settings.MEDIA_ROOT) / "recordings" / storage_prefix(app_id, task_id)


def storage_prefix(app_id: str, task_id: str) -> str:
    """The task's folder in the ``recordings`` storage."""
    return f"egress/{app_id}/{task_id}"


def base_name(pattern: str, *, task_id: str, channel: str, started: datetime, user: str = "") -> str:
    """The pattern with its placeholders filled, made safe as a file name."""
    values = {
        "date": started.strftime("%Y%m%d"),
        "time": started.strftime("%H%M%S"),
        "region": settings.EGRESS_REGION,
        "task_id": task_id,
        "channel": channel or "web",
        "user": user,
    }
    name = PATTERN.sub(lambda match: values.get(match.group(1), match.group(0)), pattern)
    if user and "{user}" not in pattern:
        name = f"{name}_{user}"
    return UNSAFE.sub("_", name).strip("._") or task_id


def targets(folder: Path, name: str, formats: list[str], segment_seconds: int) -> list[Target]:
    """One ``av.open`` target per requested format."""
    folder.mkdir(parents=True, exist_ok=True)
    found = []
    for output in formats:
        if output == "hls":
            options = {
                "hls_time": str(segment_seconds),
                "hls_list_size": "0",  # every segment stays listed: a recording, not a live window
                "hls_playlist_type": "event",
                "hls_segment_filename": str(folder / f"{name}_%05d.ts"),
                "start_number": "1",
                "hls_flags": "independent_segments",
            }
            found.append(Target(str(folder / f"{name}.m3u8"), "hls", options))
        else:
            options = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}
            found.append(Target(str(folder / f"{name}.mp4"), "mp4", options))
    return found


@dataclass(frozen=True)
class Encoding:
    """The task's ``video`` / ``audio`` request as the encoders take it."""

    width: int
    height: int
    framerate: int
    video: VideoSettings
    audio: AudioSettings

    @classmethod
    def of(cls, payload: dict) -> Encoding:
        video, audio = payload["video"], payload["audio"]
        width, height, framerate = video["width"], video["height"], video["frameRate"]
        return cls(
            width=width,
            height=height,
            framerate=framerate,
            video=VideoSettings(
                width=width,
                height=height,
                framerate=framerate,
                bitrate=video["bitrate"] * 1000,
                keyframe_seconds=KEYFRAME_SECONDS,
                constant_bitrate=True,
            ),
            audio=AudioSettings(rate=audio["sampleRate"], channels=audio["channels"], bitrate=audio["bitrate"] * 1000),
        )


def file_kind(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower()
