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

import av
from channels.db import database_sync_to_async as sync_to_async
from django.conf import settings

from streamengine import selectors
from streamengine.client import ConferenceClient, Session
from streamengine.jobs.runtime import JobFailed, JobRunner
from streamengine.jobs.services import MIXING_JOB_COST
from streamengine.media.encoding import VideoEncoder, default_bitrate
from streamengine.media.mixer import (
    ActiveSpeaker,
    AudioMixer,
    AudioSelector,
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


class RoomInputsJob(JobRunner):
    """A job whose inputs are many of the room's streams (decoded), followed as they come and go.

    ``_inputs`` reads which streams it wants (stream id → (audio, video)), or None to end;
    every ``FOLLOW_SECONDS`` the job subscribes to new ones, drops the ones no longer wanted
    and calls ``_followed_inputs``. Audio frames go to ``self.mixer`` (levels, 20 ms blocks),
    video frames to ``_video_frame``.
    """

    def __init__(self, job: MediaJob, client: ConferenceClient) -> None:
        super().__init__(job, client)
        self.inputs: dict[str, Session] = {}  # stream id → its subscription
        self.pumps: dict[str, list[asyncio.Task]] = {}
        self.session: Session | None = None  # what the job publishes
        self.follower: asyncio.Task | None = None
        self.mixer = AudioMixer()

    async def _inputs(self) -> dict[str, tuple[bool, bool]] | None:
        raise NotImplementedError

    async def _followed_inputs(self) -> None:
        """After each follow step (the inputs are subscribed)."""

    def _video_frame(self, stream: str, frame: av.VideoFrame) -> None:
        """A decoded video frame of input ``stream``."""

    def _forget(self, stream: str) -> None:
        self.mixer.forget(stream)

    def _follow_room(self) -> None:
        self.follower = asyncio.create_task(self._follow())
        self.follower.add_done_callback(self._followed)

    def _followed(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self.end(f"following the room failed: {task.exception()!r}")

    async def _follow(self) -> None:
        while True:
            wanted = await self._inputs()
            if wanted is None:
                return
            await self._apply(wanted)
            await self._followed_inputs()
            await asyncio.sleep(FOLLOW_SECONDS)

    async def _apply(self, wanted: dict[str, tuple[bool, bool]]) -> None:
        """Subscribe to the streams wanted (with the kinds wanted); drop the others."""
        for stream in [s for s in self.inputs if s not in wanted]:
            await self._drop(stream)
        for stream, (with_audio, with_video) in wanted.items():
            session = self.inputs.get(stream)
            kinds = {kind for kind, on in (("audio", with_audio), ("video", with_video)) if on}
            if session is not None and set(session.tracks) >= kinds:
                continue
            if session is not None:
                await self._drop(stream)
            with contextlib.suppress(Exception):  # gone meanwhile: the next read says so
                session = await self.client.subscribe(stream, audio=with_audio, video=with_video)
                self.inputs[stream] = session
                self.pumps[stream] = [asyncio.create_task(self._pump(stream, session, kind)) for kind in session.tracks]

    async def _pump(self, stream: str, session: Session, kind: str) -> None:
        track = session.tracks[kind]
        with contextlib.suppress(Exception):
            while True:
                frame = await track.recv()
                if kind == "video":
                    self._video_frame(stream, frame)
                else:
                    self.mixer.push(stream, frame)

    async def _drop(self, stream: str) -> None:
        for pump in self.pumps.pop(stream, []):
            pump.cancel()
        session = self.inputs.pop(stream, None)
        self._forget(stream)
        if session is not None:
            with contextlib.suppress(Exception):
                await self.client.unsubscribe(session)

    def progress(self) -> dict:
        levels = {stream: round(level, 1) for stream, level in self.mixer.levels.items()}
        return {**super().progress(), "inputs": sorted(self.inputs), "levels": levels}

    async def stop(self) -> None:
        if self.follower is not None:
            self.follower.cancel()
            await asyncio.gather(self.follower, return_exceptions=True)
        for stream in list(self.inputs):
            await self._drop(stream)
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.client.unpublish(self.session)


class MixingJob(RoomInputsJob):
    kind = "mixing"
    cost = MIXING_JOB_COST

    def __init__(self, job: MediaJob, client: ConferenceClient) -> None:
        super().__init__(job, client)
        self.video: MixedVideoTrack | None = None
        self.audio: MixedAudioTrack | None = None
        self.empty_since: float | None = None
        self.frames_in = 0
        self.layout: list[dict] = []
        self.audio_inputs: list[str] = []

    async def start(self) -> None:
        self.label = self.spec["view"]
        self.stream_id = selectors.mixed_stream_id(self.job.domain_id, self.label)
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
        self._follow_room()

    async def _inputs(self) -> dict[str, tuple[bool, bool]] | None:
        state = await sync_to_async(selectors.mixer_inputs)(domain_id=self.job.domain_id, label=self.label)
        if state is None:
            self.result["ended"] = "the view is gone"
            self.end()
            return None
        if state.users:
            self.empty_since = None
        elif self.empty_since is None:
            self.empty_since = time.monotonic()
        elif time.monotonic() - self.empty_since > settings.MIXER_IDLE_SECONDS:
            self.result["ended"] = "the room is empty"
            self.end()
            return None
        self.layout, self.audio_inputs = state.layout, state.audio
        video = {entry["stream"] for entry in state.layout if entry.get("stream")}
        return {stream: (stream in state.audio, stream in video) for stream in video | set(state.audio)}

    async def _followed_inputs(self) -> None:
        self.compositor.set_layout(placements(self.layout, self.compositor.width, self.compositor.height))
        self.audio.inputs = {stream for stream in self.audio_inputs if stream in self.inputs}
        active = self.speaker.observe(
            {stream: level for stream, level in self.mixer.levels.items() if stream in self.audio.inputs},
            time.monotonic(),
        )
        if active is not None:
            await self.client.request("mixed-control", {"id": self.stream_id, "activeInput": active})

    def _video_frame(self, stream: str, frame: av.VideoFrame) -> None:
        self.compositor.update(stream, frame)
        self.frames_in += 1

    def _forget(self, stream: str) -> None:
        super()._forget(stream)
        self.compositor.forget(stream)

    def progress(self) -> dict:
        progress = {**super().progress(), "framesIn": self.frames_in}
        if self.video is not None:
            progress["framesOut"] = self.video.encoded
            progress["encodeMs"] = round(1000 * self.video.encode_seconds / max(self.video.encoded, 1), 2)
        return progress


class AudioSelectingJob(RoomInputsJob):
    """OWT's audio selecting processor: ``count`` published audio streams (slots) that carry the
    room's loudest speaking streams, a slot kept while its speaker goes on (``progress.selected``:
    the stream in each slot). Subscribers take N voices instead of every stream's."""

    kind = "audio-selecting"
    # Per input one Opus decode, per slot one Opus encode: small next to any video job.
    cost = 0.3

    def __init__(self, job: MediaJob, client: ConferenceClient) -> None:
        super().__init__(job, client)
        self.selector = AudioSelector(self.mixer, int(self.spec.get("count") or 3))
        self.ticker: asyncio.Task | None = None
        self.slots: list[Session] = []

    async def start(self) -> None:
        try:
            for index, output in enumerate(self.selector.outputs):
                self.slots.append(await self.client.publish([output], attributes={"selecting": "audio", "slot": index}))
        except Exception as exc:
            raise JobFailed(f"cannot publish the selected audio: {exc}") from exc
        self.ticker = asyncio.create_task(self.selector.run())
        self.result = {"streams": [slot.id for slot in self.slots]}
        self._follow_room()

    async def _inputs(self) -> dict[str, tuple[bool, bool]] | None:
        streams = await sync_to_async(selectors.room_voices)(domain_id=self.job.domain_id)
        return dict.fromkeys(streams, (True, False))

    async def _followed_inputs(self) -> None:
        self.selector.inputs = set(self.inputs)

    def progress(self) -> dict:
        return {**super().progress(), "selected": list(self.selector.assigned)}

    async def stop(self) -> None:
        if self.ticker is not None:
            self.ticker.cancel()
        await super().stop()
        for slot in self.slots:
            with contextlib.suppress(Exception):
                await self.client.unpublish(slot)
