"""What every server-side subscription (recordings, streaming-outs) does with its sources.

The job subscribes to the streams of ``spec.media.<kind>.from`` (one subscription per
stream, whatever kinds it takes from it), switches a kind's source on PATCH without
stopping (subscribe to the new one, then drop the old), and ends cleanly when a source
ends (OWT's "Source stream loss"). What is done with the frames is the subclass's pump.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar

from streamengine.client import Session
from streamengine.jobs.runtime import JobFailed, JobRunner


def sources(media: dict) -> dict[str, list[str]]:
    """Stream id → the kinds taken from it."""
    by_stream: dict[str, list[str]] = {}
    for kind in ("audio", "video"):
        if media.get(kind):
            by_stream.setdefault(str(media[kind]["from"]), []).append(kind)
    return by_stream


class SubscribingJob(JobRunner):
    encoded: ClassVar[bool]  # encoded frames (Session.frames) or decoded tracks (Session.tracks)

    def _init_sources(self) -> None:
        self.sessions: dict[str, Session] = {}
        self.pumps: list[asyncio.Task] = []
        self.source_ended = ""

    async def _pump(self, session: Session, kinds: list[str]) -> None:
        raise NotImplementedError

    def _restart_track(self, kind: str) -> None:
        """``kind`` gets a new source: its timeline continues from now."""
        raise NotImplementedError

    async def _subscribe(self, media: dict, only: set[str] | None = None) -> None:
        for stream, kinds in sources(media).items():
            kinds = [k for k in kinds if only is None or k in only]
            if not kinds:
                continue
            try:
                session = await self.client.subscribe(
                    stream, audio="audio" in kinds, video="video" in kinds, encoded=self.encoded
                )
            except Exception as exc:
                raise JobFailed(f"cannot subscribe to stream {stream}: {exc}") from exc
            for kind in kinds:
                self.sessions[kind] = session
            self.pumps.append(asyncio.create_task(self._pump(session, kinds)))

    async def reconfigure(self, spec: dict) -> None:
        await self._switch_sources(spec)

    async def _switch_sources(self, spec: dict) -> None:
        """``media.<kind>.from`` changed: subscribe to the new source, then drop the old one."""
        changed = {
            kind
            for kind in ("audio", "video")
            if (spec["media"].get(kind) or {}).get("from") != (self.spec["media"].get(kind) or {}).get("from")
        }
        old = {kind: self.sessions.get(kind) for kind in changed}
        self.spec = spec
        for kind in changed:
            self._restart_track(kind)
        await self._subscribe(spec["media"], only=changed)
        # Sessions compare by value (dataclasses, unhashable): identity says which one is dropped.
        current = {id(s) for s in self.sessions.values()}
        dropped = {id(s): s for s in old.values() if s is not None and id(s) not in current}
        for session in dropped.values():
            with contextlib.suppress(Exception):
                await self.client.unsubscribe(session)

    def _check_sources(self) -> None:
        """A source ended (OWT: "Source stream loss"): the job is complete."""
        if not self.source_ended and any(s.error for s in self.sessions.values()):
            self.source_ended = next(s.error for s in self.sessions.values() if s.error)
            self.result["ended"] = f"source stream ended ({self.source_ended})"
            self.end()

    async def _stop_pumps(self) -> None:
        for pump in self.pumps:
            pump.cancel()
        await asyncio.gather(*self.pumps, return_exceptions=True)
