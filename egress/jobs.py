"""The egress media jobs, on the engine's media-job runtime (``streamengine.jobs.runtime``).

``egress-room`` joins the task's room like a browser (the runtime does, with an internal
token named after ``workerUid``) and records its users: ``flat``/``spotlight`` composite
them on the original's adaptive grid (:func:`grid`) with their audio mixed, ``individual``
writes one file set per user. ``egress-web`` renders a page in Chromium
(:mod:`egress.webcapture`) and records what it shows and plays: the request's ``url``, or
without one the platform's join page for the task's room in its viewer layout. Both encode once per file
set to H.264 + AAC (``LiveOutput``: the requested size, frame rate and bitrates) into the
requested HLS and/or MP4, in the task's own folder (:mod:`egress.outputs`).

A job ends by itself when its room has had no user stream for ``max_idle_s`` (SUCCESS) or
at ``max_duration_s`` (TIMEOUT: the limit is recorded in ``result.limit``); a stop request
ends it within a heartbeat (STOPPED). Either way the playlists are closed, and the files are
handed to the ``recordings`` storage and listed in ``result.files``.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import math
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import av
from channels.db import database_sync_to_async as sync_to_async
from django.conf import settings

from egress.outputs import Encoding, base_name, file_kind, storage_prefix, targets, task_folder
from egress.webcapture import WebCaptureFailed, WebPageCapture
from streamengine import selectors as engine_selectors
from streamengine import services as engine
from streamengine.jobs.mixing import RoomInputsJob
from streamengine.jobs.recording import keep_file
from streamengine.jobs.runtime import JobFailed, JobRunner
from streamengine.media.live_output import LiveOutput
from streamengine.media.mixer import AudioClock, Placement, VideoCompositor, audio_frame

COMPOSITE = "composite"
# The original's layout stability: a layout changes at most this often (a user whose frames
# stop is dropped from the grid only after it).
LAYOUT_HOLD_SECONDS = 3.0


def grid(count: int, width: int, height: int) -> tuple[int, int]:
    """(columns, rows) of the ``flat`` layout for ``count`` users (the original's rule).

    1 → 1x1, 2 → 2x1 on a wide canvas (aspect ≥ 1.5) else 1x2, 3 → 3x1 wide else 2x2,
    4 → 2x2; from 5 on, the column count whose cells are closest to 16:9, empty cells
    costing 0.1 each.
    """
    wide = width / height >= 1.5
    if count <= 1:
        return 1, 1
    if count == 2:
        return (2, 1) if wide else (1, 2)
    if count == 3:
        return (3, 1) if wide else (2, 2)
    if count == 4:
        return 2, 2

    def score(columns: int) -> float:
        rows = math.ceil(count / columns)
        return abs((width / columns) / (height / rows) - 16 / 9) + 0.1 * (columns * rows - count)

    columns = min(range(1, count + 1), key=score)
    return columns, math.ceil(count / columns)


def grid_placements(streams: list[str], width: int, height: int) -> list[Placement]:
    """The cells of ``streams`` in order, row by row (even pixel sizes for 4:2:0)."""
    columns, rows = grid(len(streams), width, height)
    cell_width, cell_height = width // columns // 2 * 2, height // rows // 2 * 2
    return [
        Placement(stream, (index % columns) * cell_width, (index // columns) * cell_height, cell_width, cell_height)
        for index, stream in enumerate(streams)
    ]


@dataclass
class FileSet:
    """One recorded picture and sound (the composite, or one user's): its canvas, its
    audio inputs, and one encoder+muxer per requested format."""

    user: str
    compositor: VideoCompositor
    outputs: list[LiveOutput]
    video: list[str] = field(default_factory=list)  # streams on the canvas, in arrival order
    audio: set[str] = field(default_factory=set)
    laid_out_at: float = 0.0

    def push(self, kind: str, frame: av.frame.Frame) -> None:
        for output in self.outputs:
            output.push(kind, frame)

    def close(self) -> None:
        for output in self.outputs:
            output.close()

    def failure(self) -> str:
        return next((output.failure for output in self.outputs if output.failure), "")


class EgressOutputs(JobRunner):
    """What every egress job shares: its file sets, limits and the files it leaves."""

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        spec = self.spec
        self.encoding = Encoding.of(spec["payload"])
        self.folder = task_folder(spec["app_id"], spec["task_id"])
        self.started_at = datetime.now(UTC)
        self.file_sets: dict[str, FileSet] = {}
        self.closed = False

    def _file_set(self, key: str, user: str = "") -> FileSet:
        """The file set ``key``, created (files opened) on first use."""
        file_set = self.file_sets.get(key)
        if file_set is None:
            payload = self.spec["payload"]
            name = base_name(
                payload["filename_pattern"],
                task_id=self.spec["task_id"],
                channel=payload.get("channel", ""),
                started=self.started_at,
                user=user,
            )
            if self.job.attempt > 1:  # restarted after its worker died: the first part stays
                name = f"{name}_part{self.job.attempt}"
            encoding = self.encoding
            outputs = [
                LiveOutput(target, {"audio", "video"}, encoding.video, encoding.audio)
                for target in targets(self.folder, name, payload["format"], payload["segment_duration"])
            ]
            compositor = VideoCompositor(encoding.width, encoding.height)
            file_set = self.file_sets[key] = FileSet(user, compositor, outputs)
            # Wall-clock times of what the files hold (the status shows them next to the files).
            self.result.setdefault("recording", {"started": time.time()})
        return file_set

    def _limits(self, elapsed: float) -> None:
        """The maximum duration ends the job (TIMEOUT); an output that cannot be written fails it."""
        failure = next((f for f in (s.failure() for s in self.file_sets.values()) if f), "")
        if failure:
            self.end(failure)
        elif elapsed >= self.spec["payload"]["max_duration_s"]:
            self.result["limit"] = f"maximum duration of {self.spec['payload']['max_duration_s']} s reached"
            self.end()

    def _files(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_file())

    def _output_progress(self) -> dict:
        frames = {key: file_set.outputs[0].progress() for key, file_set in self.file_sets.items() if file_set.outputs}
        return {"files": self._files(), "outputs": frames}

    async def _close_outputs(self) -> None:
        if self.closed:
            return
        self.closed = True
        if "recording" in self.result:
            self.result["recording"]["ended"] = time.time()
        await asyncio.gather(*(asyncio.to_thread(s.close) for s in self.file_sets.values()))
        self.result["files"] = await asyncio.to_thread(self._keep_files)

    def _keep_files(self) -> list[dict]:
        """Hand every file to the ``recordings`` storage; what was written, where it is kept."""
        users = {name: s.user for s in self.file_sets.values() for name in self._names_of(s)}
        prefix = storage_prefix(self.spec["app_id"], self.spec["task_id"])
        kept = []
        for name in self._files():
            local = self.folder / name
            size = local.stat().st_size
            owner = next((user for stem, user in users.items() if name.startswith(stem)), "")
            kept.append(
                {
                    "name": name,
                    "kind": file_kind(name),
                    "size": size,
                    "user": owner,
                    "location": keep_file(local, f"{prefix}/{name}")[0],
                }
            )
        return kept

    @staticmethod
    def _names_of(file_set: FileSet) -> list[str]:
        return [Path(output.target.url).stem for output in file_set.outputs]


class EgressRoomJob(EgressOutputs, RoomInputsJob):
    """Record a room's users: composited (``flat``) or one file set each (``individual``)."""

    kind = "egress-room"
    cost = 1.0  # replaced per task by egress.services.task_cost (what the request costs to encode)

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.stream_users: dict[str, str] = {}
        self.idle_since: float | None = time.monotonic()
        self.renderers: list[asyncio.Task] = []

    async def start(self) -> None:
        payload = self.spec["payload"]
        self.individual = payload["layout"] == "individual"
        self.users = set(payload["users"]) or None
        self.result["folder"] = str(self.folder)
        if not self.individual:
            self._file_set(COMPOSITE)
        self.renderers = [asyncio.create_task(self._render_video()), asyncio.create_task(self._render_audio())]
        for renderer in self.renderers:
            renderer.add_done_callback(self._renderer_ended)
        self._follow_room()

    def _renderer_ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.end(f"rendering failed: {task.exception()!r}")

    async def _inputs(self) -> dict[str, tuple[bool, bool]] | None:
        streams = await sync_to_async(engine_selectors.user_streams)(domain_id=self.job.domain_id, users=self.users)
        self.stream_users = {stream.id: stream.user for stream in streams}
        now = time.monotonic()
        if streams:
            self.idle_since = None
        elif self.idle_since is None:
            self.idle_since = now
        elif now - self.idle_since >= self.spec["payload"]["max_idle_s"]:
            self.result["ended"] = f"no user published for {self.spec['payload']['max_idle_s']} s"
            self.end()
        self._limits(now - self.started)
        return {stream.id: (stream.audio, stream.video) for stream in streams}

    def _key(self, stream: str) -> str:
        return self.stream_users.get(stream, "") if self.individual else COMPOSITE

    def _video_frame(self, stream: str, frame: av.VideoFrame) -> None:
        file_set = self.file_sets.get(self._key(stream))
        if file_set is not None:
            file_set.compositor.update(stream, frame)

    def _forget(self, stream: str) -> None:
        super()._forget(stream)
        for file_set in self.file_sets.values():
            file_set.compositor.forget(stream)
            file_set.audio.discard(stream)

    async def _followed_inputs(self) -> None:
        """Each file set's audio inputs and picture: the users' streams that deliver frames."""
        now = time.monotonic()
        for stream, session in self.inputs.items():
            user = self.stream_users.get(stream, "")
            file_set = self._file_set(user if self.individual else COMPOSITE, user if self.individual else "")
            if "audio" in session.tracks:
                file_set.audio.add(stream)
        for file_set in self.file_sets.values():
            delivering = [s for s in self.inputs if s in file_set.compositor.latest and self._belongs(s, file_set)]
            placed = [s for s in file_set.video if s in delivering] + [s for s in delivering if s not in file_set.video]
            # Newcomers join at once; a change that only drops someone waits for the hold.
            grows = any(s not in file_set.video for s in placed)
            if placed != file_set.video and (grows or now - file_set.laid_out_at >= LAYOUT_HOLD_SECONDS):
                file_set.video = placed
                file_set.laid_out_at = now
                file_set.compositor.set_layout(grid_placements(placed, self.encoding.width, self.encoding.height))

    def _belongs(self, stream: str, file_set: FileSet) -> bool:
        return not self.individual or self.stream_users.get(stream) == file_set.user

    async def _render_video(self) -> None:
        """Every file set's picture at the requested frame rate (a late tick is skipped)."""
        period = 1 / self.encoding.framerate
        started, tick = time.monotonic(), 0
        time_base = fractions.Fraction(1, self.encoding.framerate)
        while True:
            due = started + tick * period
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            elif now - due > period:
                tick += int((now - due) / period)
            for file_set in list(self.file_sets.values()):
                frame = await asyncio.to_thread(file_set.compositor.compose)
                frame.pts, frame.time_base = tick, time_base
                file_set.push("video", frame)
            tick += 1

    async def _render_audio(self) -> None:
        """Every file set's audio: its users' 20 ms blocks summed (silence while nobody speaks)."""
        clock = AudioClock()
        while True:
            pts = await clock.tick()
            for file_set in list(self.file_sets.values()):
                file_set.push("audio", audio_frame(self.mixer.mix(file_set.audio), pts))

    def progress(self) -> dict:
        return {**super().progress(), **self._output_progress()}

    async def stop(self) -> None:
        for renderer in self.renderers:
            renderer.cancel()
        await super().stop()
        await self._close_outputs()


class EgressWebJob(EgressOutputs):
    """Record a web page (``freestyle``): Chromium renders it, its picture and sound are encoded."""

    kind = "egress-web"
    cost = 1.0

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        self.capture: WebPageCapture | None = None
        self.pump: asyncio.Task | None = None

    async def start(self) -> None:
        payload = self.spec["payload"]
        url = payload.get("url") or await sync_to_async(self._room_viewer_url)()
        self.capture = WebPageCapture(
            url,
            width=self.encoding.width,
            height=self.encoding.height,
            framerate=self.encoding.framerate,
            webgl=payload["webGL"],
        )
        try:
            await self.capture.start()
        except WebCaptureFailed as exc:
            raise JobFailed(str(exc)) from exc
        self.result["folder"] = str(self.folder)
        self.file_set = self._file_set(COMPOSITE)
        self.pump = asyncio.create_task(self._pump())

    def _room_viewer_url(self) -> str:
        """The platform's own join page for the task's room, joined as this job (an internal,
        one-time credential), watching every participant's stream and publishing nothing, in
        its viewer layout (the videos alone, filling the page)."""
        token = engine.token_create(
            domain_id=self.spec["room_id"],
            user=self.spec.get("participant") or f"egress-{self.spec['task_id']}",
            role="admin",
            job_id=self.job.id,
        )
        signaling = urlsplit(settings.OWT_INTERNAL_SIGNALING_URL)
        scheme = "https" if signaling.scheme == "wss" else "http"
        query = urlencode({"token": token, "autojoin": "1", "publish": "0", "view": "1", "watch": "participants"})
        return f"{scheme}://{signaling.netloc}/demo/?{query}"

    async def _pump(self) -> None:
        try:
            async for kind, frame in self.capture.frames():
                self.file_set.push(kind, frame)
        except Exception as exc:
            self.end(f"capturing the page failed: {exc}")
            return
        self.result["ended"] = "the page capture ended"
        self.end()

    def progress(self) -> dict:
        self._limits(time.monotonic() - self.started)
        capture = self.capture.progress() if self.capture is not None else {}
        return {**super().progress(), **self._output_progress(), "capture": capture}

    async def stop(self) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(BaseException):
                await self.pump
        if self.capture is not None:
            await self.capture.stop()
        await self._close_outputs()
