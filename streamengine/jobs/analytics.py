"""Analytics job (spec 5.8): run an algorithm on a stream's video, publish what it draws as a new stream.

The job subscribes to ``media.video.from`` (decoded), hands each frame to the algorithm
(``streamengine.media.analytics``) in a worker thread and publishes the frames it returns
as one video track, encoded as ``media.video.format`` (VP8 unless H.264 is asked). The
stream's id is the job's (OWT: the analytics id), ``info.type "analytics"``, owner
``admin``. The algorithm's events are kept in ``progress`` (count, the last, the recent
ones) and announced to the room by the portal (notification ``analytics``: ``{id, event}``),
which the job asks for with the signaling request ``analytics-event``.

Frames are never queued behind a slow algorithm or encoder: the newest decoded frame
waits for the algorithm, the newest result for the encoder, older ones are dropped
(``progress.frames.dropped``). The job ends when its source does, or when its stream is
unpublished (``DELETE /streams/{id}``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import fractions
import logging
import time

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

from streamengine.client import Session, SignalingError
from streamengine.jobs.runtime import JobFailed
from streamengine.jobs.subscriptions import SubscribingJob
from streamengine.media.analytics import Algorithm, UnknownAlgorithm, create
from streamengine.media.resolutions import target_size

logger = logging.getLogger(__name__)

RECENT_EVENTS = 10
ANNOUNCE_BACKLOG = 50  # events waiting for the portal beyond this are not announced (still counted)
VIDEO_CLOCK = fractions.Fraction(1, 90000)


def offer_newest(queue: asyncio.Queue, item: object) -> bool:
    """Put ``item``, dropping the oldest waiting one if the queue is full; True if one was dropped."""
    dropped = queue.full()
    if dropped:
        queue.get_nowait()
    queue.put_nowait(item)
    return dropped


class AnalysedVideoTrack(MediaStreamTrack):
    """The algorithm's output frames, as the published video track (newest first, never a backlog)."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.frames: asyncio.Queue[av.VideoFrame] = asyncio.Queue(maxsize=2)
        self.dropped = 0
        self.sent = 0
        self.started: float | None = None

    def offer(self, frame: av.VideoFrame) -> None:
        self.dropped += offer_newest(self.frames, frame)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        frame = await self.frames.get()
        # Stamped by this clock, not the source's: frames dropped on the way leave no gaps
        # in the timeline to the encoder, and a plugin's frames need no timestamps at all.
        now = time.monotonic()
        if self.started is None:
            self.started = now
        frame.pts, frame.time_base = int((now - self.started) * 90000), VIDEO_CLOCK
        self.sent += 1
        return frame


class AnalyticsJob(SubscribingJob):
    kind = "analytics"
    # One VP8 decode, the algorithm (motion: 6 ms a frame) and one VP8 encode at 640x480
    # 30 fps: 0.4 core measured (progress.cpu, docs/media-jobs.md); a plugin may cost more.
    cost = 0.5
    encoded = False

    async def start(self) -> None:
        try:
            self.algorithm: Algorithm = create(self.spec["algorithm"])
        except UnknownAlgorithm as exc:  # a plugin uninstalled on this worker since the request
            raise JobFailed(str(exc)) from exc
        self.output = AnalysedVideoTrack()
        self.inbox: asyncio.Queue[av.VideoFrame] = asyncio.Queue(maxsize=1)
        self.announcements: asyncio.Queue[dict] = asyncio.Queue(maxsize=ANNOUNCE_BACKLOG)
        self.frames_in = self.frames_analysed = self.dropped = self.events = 0
        self.recent: collections.deque[dict] = collections.deque(maxlen=RECENT_EVENTS)
        self.analysis_seconds = 0.0
        self.cpu_started = time.process_time()
        self.publication: Session | None = None
        self._init_sources()
        await self._subscribe(self.spec["media"])
        self.pumps += [asyncio.create_task(self._analyse()), asyncio.create_task(self._announce())]
        video = self.spec["media"]["video"]
        try:
            self.publication = await self.client.publish(
                [self.output],
                attributes={"algorithm": self.spec["algorithm"], "from": video["from"]},
                video_codec=video["format"]["codec"],
            )
        except Exception as exc:
            raise JobFailed(f"cannot publish the analysed stream: {exc}") from exc
        self.result = {"stream": self.publication.id, "algorithm": self.spec["algorithm"]}

    async def _pump(self, session: Session, kinds: list[str]) -> None:
        track = session.tracks["video"]
        parameters = self.spec["media"]["video"].get("parameters") or {}
        framerate = float(parameters.get("framerate") or 0)
        next_time: float | None = None
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return  # the source ended (_check_sources ends the job)
            self.frames_in += 1
            if framerate and frame.time is not None:  # a lower frame rate asked: skip frames early
                if next_time is not None and frame.time < next_time:
                    continue
                next_time = frame.time + 1 / framerate
            size = target_size(parameters.get("resolution"), frame.width, frame.height)
            if size and size != (frame.width, frame.height):
                frame = frame.reformat(width=size[0], height=size[1])
            self.dropped += offer_newest(self.inbox, frame)

    async def _analyse(self) -> None:
        while True:
            frame = await self.inbox.get()
            started = time.perf_counter()
            try:
                analysed, events = await asyncio.to_thread(self.algorithm.process, frame)
            except Exception as exc:
                logger.exception("analytics %s: the algorithm failed", self.job.id)
                self.end(f"the algorithm failed: {type(exc).__name__}: {exc}")
                return
            self.analysis_seconds += time.perf_counter() - started
            self.frames_analysed += 1
            self.output.offer(analysed)
            for event in events:
                self._record(event)

    def _record(self, event: dict) -> None:
        self.events += 1
        self.recent.append({**event, "at": round(time.time(), 3)})
        with contextlib.suppress(asyncio.QueueFull):
            self.announcements.put_nowait(event)

    async def _announce(self) -> None:
        while True:
            event = await self.announcements.get()
            try:
                await self.client.request("analytics-event", {"event": event})
            except (SignalingError, TimeoutError) as exc:
                logger.warning("analytics %s: event not announced: %s", self.job.id, exc)

    def progress(self) -> dict:
        self._check_sources()
        if self.publication is not None and self.publication.pc.connectionState in ("failed", "closed"):
            # Unpublished from outside (DELETE /streams/{id}): nobody can watch it any more.
            self.result["ended"] = "the stream was unpublished"
            self.end()
        duration = max(time.monotonic() - self.started, 1e-3)
        analysed = self.frames_analysed
        return {
            **super().progress(),
            "frames": {
                "in": self.frames_in,
                "analysed": analysed,
                "out": self.output.sent,
                "dropped": self.dropped + self.output.dropped,
            },
            "events": self.events,
            "last_event": self.recent[-1] if self.recent else None,
            "recent_events": list(self.recent),
            "analysis_ms": round(1000 * self.analysis_seconds / analysed, 2) if analysed else None,
            # The worker process's CPU per second of the job: a worker runs one job per process.
            "cpu": round((time.process_time() - self.cpu_started) / duration, 3),
        }

    async def stop(self) -> None:
        await self._stop_pumps()
        self.output.stop()
        if self.publication is not None:
            with contextlib.suppress(Exception):
                await self.client.unpublish(self.publication)
