"""The mixer of one view (MCU): a media job that publishes the view's mixed stream.

The room's engine starts it when the first user joins a room with views
(``services._mixers_start``; spec ``{"view": label}``) and it ends itself when the room has
been empty for ``MIXER_IDLE_SECONDS``. It joins like any media job and publishes
``<roomId>-<label>`` (type ``mixed``); then it follows the room's state, which the engine keeps
on the mixed stream (layout, inputs; ``selectors.mixer_inputs``, read every
``FOLLOW_SECONDS``): it subscribes to each input once (decoded: video for the layout, audio for
the mix), unsubscribes from streams that left the view, and tells the engine who speaks
(``services.mixed_set_active_input``). Encoding happens once per view, in the job
(``media/mixer.py``); the SFU forwards the encoded mix to every subscriber.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from channels.db import database_sync_to_async as sync_to_async
from django.conf import settings

from streamengine import selectors
from streamengine import services as engine
from streamengine.client import ConferenceClient, Session
from streamengine.jobs.runtime import JobFailed, JobRunner
from streamengine.jobs.services import MIXING_JOB_COST
from streamengine.media.encoding import VideoEncoder, default_bitrate
from streamengine.media.mixer import (
    ActiveSpeaker,
    AudioMixer,
    MixedAudioTrack,
    MixedVideoTrack,
    VideoCompositor,
    placements,
)
from streamengine.media.passthrough import route_keyframe_requests
from streamengine.models import MediaJob

FOLLOW_SECONDS = 0.25
# OWT's defaults for a view's video (roomconfig fills them in for rooms made through REST).
DEFAULT_RESOLUTION = {"width": 640, "height": 480}
DEFAULT_FRAMERATE = 24
DEFAULT_KEYFRAME_SECONDS = 100


class MixingJob(JobRunner):
    kind = "mixing"
    cost = MIXING_JOB_COST

    def __init__(self, job: MediaJob, client: ConferenceClient) -> None:
        super().__init__(job, client)
        self.inputs: dict[str, Session] = {}  # stream id → its subscription
        self.pumps: dict[str, list[asyncio.Task]] = {}
        self.session: Session | None = None
        self.video: MixedVideoTrack | None = None
        self.audio: MixedAudioTrack | None = None
        self.follower: asyncio.Task | None = None
        self.empty_since: float | None = None
        self.frames_in = 0

    async def start(self) -> None:
        self.label = self.spec["view"]
        self.stream_id = engine.mixed_stream_id(self.job.domain_id, self.label)
        state = await sync_to_async(selectors.mixer_inputs)(domain_id=self.job.domain_id, label=self.label)
        if state is None:
            raise JobFailed(f"the room has no view {self.label!r}")
        video = state.view.get("video") or {}
        parameters = video.get("parameters") or {}
        resolution = parameters.get("resolution") or DEFAULT_RESOLUTION
        width, height = int(resolution["width"]) // 2 * 2, int(resolution["height"]) // 2 * 2
        framerate = int(parameters.get("framerate") or DEFAULT_FRAMERATE)
        codec = ((video.get("format") or {}).get("codec") or "vp8").lower()
        colour = video.get("bgColor") or {}
        self.compositor = VideoCompositor(
            width,
            height,
            background=(colour.get("r", 0), colour.get("g", 0), colour.get("b", 0)),
            fit=(video.get("layout") or {}).get("fitPolicy", "letterbox"),
        )
        try:
            encoder = VideoEncoder(
                codec,
                width,
                height,
                framerate,
                float(parameters.get("bitrate") or default_bitrate(width, height, framerate)),
                int(parameters.get("keyFrameInterval") or DEFAULT_KEYFRAME_SECONDS),
            )
        except KeyError as exc:
            raise JobFailed(f"view {self.label!r}: cannot encode video as {codec}") from exc
        self.video = MixedVideoTrack(self.compositor, encoder, framerate)
        self.mixer = AudioMixer()
        self.audio = MixedAudioTrack(self.mixer)
        self.speaker = ActiveSpeaker()
        tracks = [self.video, self.audio] if state.view.get("audio") is not False else [self.video]
        try:
            self.session = await self.client.publish(tracks, video_codec=codec)
        except Exception as exc:
            raise JobFailed(f"cannot publish the mixed stream: {exc}") from exc
        for sender in self.session.pc.getSenders():
            if sender.track is self.video:
                route_keyframe_requests(sender, self.video.request_keyframe)
        self.result = {"stream": self.stream_id}
        self.follower = asyncio.create_task(self._follow())
        self.follower.add_done_callback(self._followed)

    def _followed(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.end(f"following the room failed: {task.exception()!r}")

    async def _follow(self) -> None:
        read = sync_to_async(selectors.mixer_inputs)
        while True:
            state = await read(domain_id=self.job.domain_id, label=self.label)
            if state is None:
                self.result["ended"] = "the view is gone"
                self.end()
                return
            if state.users:
                self.empty_since = None
            elif self.empty_since is None:
                self.empty_since = time.monotonic()
            elif time.monotonic() - self.empty_since > settings.MIXER_IDLE_SECONDS:
                self.result["ended"] = "the room is empty"
                self.end()
                return
            await self._apply(state.layout, state.audio)
            active = self.speaker.observe(
                {stream: level for stream, level in self.mixer.levels.items() if stream in self.audio.inputs},
                time.monotonic(),
            )
            if active is not None:
                await self.client.request("mixed-control", {"id": self.stream_id, "activeInput": active})
            await asyncio.sleep(FOLLOW_SECONDS)

    async def _apply(self, layout: list[dict], audio: list[str]) -> None:
        """Subscribe to what the view now shows and mixes; drop what it no longer does."""
        video = {entry["stream"] for entry in layout if entry.get("stream")}
        wanted = {stream: (stream in audio, stream in video) for stream in video | set(audio)}
        for stream in [s for s in self.inputs if s not in wanted]:
            await self._drop(stream)
        for stream, (with_audio, with_video) in wanted.items():
            session = self.inputs.get(stream)
            if session is not None and set(session.tracks) >= {
                k for k, on in (("audio", with_audio), ("video", with_video)) if on
            }:
                continue
            if session is not None:
                await self._drop(stream)
            with contextlib.suppress(Exception):  # gone meanwhile: the next read says so
                session = await self.client.subscribe(stream, audio=with_audio, video=with_video)
                self.inputs[stream] = session
                self.pumps[stream] = [asyncio.create_task(self._pump(stream, session, kind)) for kind in session.tracks]
        self.compositor.set_layout(placements(layout, self.compositor.width, self.compositor.height))
        self.audio.inputs = {stream for stream in audio if stream in self.inputs}

    async def _pump(self, stream: str, session: Session, kind: str) -> None:
        track = session.tracks[kind]
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                if kind == "video":
                    self.compositor.update(stream, frame)
                    self.frames_in += 1
                else:
                    self.mixer.push(stream, frame)

    async def _drop(self, stream: str) -> None:
        for pump in self.pumps.pop(stream, []):
            pump.cancel()
        session = self.inputs.pop(stream, None)
        self.compositor.forget(stream)
        self.mixer.forget(stream)
        if session is not None:
            with contextlib.suppress(Exception):
                await self.client.unsubscribe(session)

    def progress(self) -> dict:
        progress = {**super().progress(), "inputs": sorted(self.inputs), "framesIn": self.frames_in}
        if self.audio is not None:
            progress["levels"] = {stream: round(level, 1) for stream, level in self.mixer.levels.items()}
        if self.video is not None:
            progress["framesOut"] = self.video.encoded
            progress["encodeMs"] = round(1000 * self.video.encode_seconds / max(self.video.encoded, 1), 2)
        return progress

    async def stop(self) -> None:
        if self.follower is not None:
            self.follower.cancel()
            await asyncio.gather(self.follower, return_exceptions=True)
        for stream in list(self.inputs):
            await self._drop(stream)
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.client.unpublish(self.session)
