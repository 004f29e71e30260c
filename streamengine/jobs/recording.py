"""Recording job: subscribe to a room's streams and mux their encoded frames into a file.

No re-encoding when the container holds the codecs (VP8/VP9/H.264 + Opus in Matroska,
H.264 in MP4/TS); Opus becomes AAC for MP4/TS (``media.mux``). The file is
``MEDIA_ROOT/recordings/<room>/<job>-<attempt>.<ext>``: a job restarted after its worker
died writes a new part, listed in ``result.files``. A PATCH of ``media.<kind>.from``
switches the source without breaking the file (the new track continues the timeline).
"""

from __future__ import annotations

import asyncio
import socket
import time
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, storages

from streamengine.client import Session
from streamengine.jobs.subscriptions import SubscribingJob
from streamengine.media.mux import CONTAINERS, HOLDS, EncodedMuxer

TRANSCODABLE_AUDIO = {"opus"}  # to AAC, for the containers that cannot hold it


def auto_container(media: dict) -> str:
    """OWT's rule: mp4 when the audio is AAC and the video absent or H.264/H.265, else mkv."""
    audio, video = media.get("audio") or {}, media.get("video") or {}
    audio_codec = (audio.get("format") or {}).get("codec") if audio else None
    video_codec = (video.get("format") or {}).get("codec") if video else None
    if audio_codec == "aac" and video_codec in (None, "h264", "h265"):
        return "mp4"
    return "mkv"


class RecordingJob(SubscribingJob):
    kind = "recording"
    cost = 0.05  # forwarding-priced: no decode, no encode (bench media_jobs)
    encoded = True

    async def start(self) -> None:
        media = self.spec["media"]
        container = self.spec.get("container") or "auto"
        self.container = auto_container(media) if container == "auto" else container
        _, extension, _ = CONTAINERS[self.container]
        kinds = {kind for kind in ("audio", "video") if media.get(kind)}
        path = (
            Path(settings.MEDIA_ROOT)
            / "recordings"
            / self.job.domain_id
            / f"{self.job.id}-{self.job.attempt}.{extension}"
        )
        self.muxer = EncodedMuxer(path, self.container, kinds)
        self._init_sources()
        await self._subscribe(media)
        files = [*self.job.result.get("files", []), str(path)]
        self.result = {
            "storage": {"host": socket.gethostname(), "file": str(path)},
            "files": files,
            "container": self.container,
        }

    async def _pump(self, session: Session, kinds: list[str]) -> None:
        while True:
            kind, data, timestamp = await session.frames.get()
            codec = session.codecs.get(kind, "")
            holds = HOLDS[self.container][kind]
            if codec not in holds and not (kind == "audio" and codec in TRANSCODABLE_AUDIO):
                self.end(f"{self.container} cannot hold {codec} {kind}: record it as mkv")
                return
            paused = (self.spec["media"].get(kind) or {}).get("status") == "inactive"  # PATCH …/status
            if self.sessions.get(kind) is session and not paused:
                self.muxer.write(kind, codec, data, timestamp)

    def _restart_track(self, kind: str) -> None:
        self.muxer.restart_track(kind)

    def progress(self) -> dict:
        self._check_sources()
        return {**super().progress(), **self.muxer.progress(), "written_at": time.time()}

    async def stop(self) -> None:
        await self._stop_pumps()
        await asyncio.to_thread(self.muxer.close)
        await asyncio.to_thread(self._store)

    def _store(self) -> None:
        local = self.muxer.path
        if not local.is_file():
            return
        saved, moved = keep_file(local, f"{self.job.domain_id}/{local.name}")
        if not moved:
            return  # the default: written in place
        self.result["storage"] = {"host": type(storages["recordings"]).__name__, "file": saved}
        self.result["stored"] = saved
        self.result["files"] = [saved if f == str(local) else f for f in self.result.get("files", [])]


def keep_file(local: Path, name: str) -> tuple[str, bool]:
    """Hand a closed file to the ``recordings`` storage as ``name`` unless it was written there
    (the default). Returns the name it is kept under, and whether it was moved there."""
    store = storages["recordings"]
    if isinstance(store, FileSystemStorage) and Path(store.path(name)).resolve() == local.resolve():
        return name, False
    with local.open("rb") as file:
        saved = store.save(name, File(file))
    local.unlink()
    return saved, True
