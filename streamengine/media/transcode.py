"""The transcoding path: only for subscribers that ask for another format or parameters.

The publication's track is decoded once (its receiver's own decoder thread, enabled by
the tap's ``decode`` flag) and shared through aiortc's ``MediaRelay``; each such
subscriber's sender encodes its own output (codec negotiated with it), after scaling
and frame-rate reduction when its ``parameters`` ask for them. This costs a decoder per
publication and an encoder per subscriber, which is why forwarding is the default.
"""

from __future__ import annotations

import asyncio

from aiortc import RTCRtpReceiver
from aiortc.contrib.media import MediaRelay
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streamengine.media.resolutions import target_size

_relay = MediaRelay()


class TranscodedTrack(MediaStreamTrack):
    def __init__(self, receiver: RTCRtpReceiver, kind: str, parameters: dict) -> None:
        super().__init__()
        self.kind = kind
        self.source = _relay.subscribe(receiver.track, buffered=False)
        self.parameters = parameters
        self.framerate = float(parameters.get("framerate") or 0)
        self.next_pts: float | None = None
        self.paused = False
        self.forwarded = 0
        self.successor: MediaStreamTrack | None = None
        self.handed_over = asyncio.Event()

    def hand_over(self, successor: MediaStreamTrack) -> None:
        """As ``ForwardedTrack.hand_over``: a waiting ``recv`` returns ``successor``'s next frame."""
        self.successor = successor
        self.handed_over.set()
        self.stop()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    async def recv(self):
        while True:
            if self.successor is not None:
                return await self.successor.recv()
            if self.readyState != "live":
                raise MediaStreamError
            receiving = asyncio.ensure_future(self.source.recv())
            handed_over = asyncio.ensure_future(self.handed_over.wait())
            await asyncio.wait({receiving, handed_over}, return_when=asyncio.FIRST_COMPLETED)
            handed_over.cancel()
            if not receiving.done():
                receiving.cancel()
                continue
            frame = receiving.result()
            if self.paused:
                continue
            if self.kind == "video":
                if self.framerate and frame.time is not None:
                    if self.next_pts is not None and frame.time < self.next_pts:
                        continue
                    self.next_pts = frame.time + 1 / self.framerate
                size = target_size(self.parameters.get("resolution"), frame.width, frame.height)
                if size and size != (frame.width, frame.height):
                    scaled = frame.reformat(width=size[0], height=size[1])
                    scaled.pts, scaled.time_base = frame.pts, frame.time_base
                    frame = scaled
            self.forwarded += 1
            return frame

    def stop(self) -> None:
        super().stop()
        self.source.stop()
