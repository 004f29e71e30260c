"""Streaming-in job: pull an external RTSP/RTMP/HLS source and publish it into the room.

The job's participant publishes one stream (OWT: ``info.owner "admin"``, ``info.type
"streaming"``) whose id is the job's id, so ``/streams/{id}`` and ``/streaming-ins/{id}``
name the same thing; ``result.stream`` says it is published. The media path is
``media/ingest.py``: the source's H.264/VP8/Opus go through without re-encoding when the
room's ``mediaIn`` accepts them, anything else (AAC audio, say) is decoded and aiortc encodes
it. A source that drops is reconnected with backoff on the same stream (``progress``:
``reconnects``, ``last_error``); one unreachable at the start fails the job at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from urllib.parse import urlsplit

from channels.db import database_sync_to_async as sync_to_async
from django.conf import settings

from streamengine.client import Session
from streamengine.exceptions import SourceRefused
from streamengine.jobs.runtime import JobFailed, JobRunner
from streamengine.media.ingest import (
    SourceError,
    SourceOptions,
    SourceReader,
    describe,
    open_source,
    plan_routes,
    publish_codec,
)
from streamengine.models import Domain
from streamengine.services import media_accept

DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322, "rtmp": 1935, "rtmps": 443, "http": 80, "https": 443}
# FFmpeg protocols a network source may use (its default also allows file and more, which an
# HLS playlist from the internet could point at).
NETWORK_PROTOCOLS = "tcp,udp,rtp,tls,http,https,httpproxy,crypto,rtmp,rtmps,rtmpt,rtmpts,hls"


def check_source_url(url: str) -> None:
    """Refuse (:class:`SourceRefused`) a URL outside the streaming-in policy (SSRF).

    Schemes: ``STREAMING_IN_SCHEMES``. Hosts are resolved here and every address they
    resolve to must be public unless ``STREAMING_IN_ALLOW_PRIVATE``. The job checks again
    right before connecting; FFmpeg resolves once more itself, and follows HTTP redirects
    and HLS playlists' URIs, which this check cannot see (docs/media-jobs.md).
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in settings.STREAMING_IN_SCHEMES:
        allowed = ", ".join(settings.STREAMING_IN_SCHEMES)
        raise SourceRefused(f"connection.url: scheme {scheme or '(none)'!r} is not allowed (allowed: {allowed})")
    if scheme == "file":
        return
    host = parts.hostname
    if not host:
        raise SourceRefused("connection.url: no host")
    try:
        port = parts.port or DEFAULT_PORTS.get(scheme, 0)
        addresses = {info[4][0] for info in socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)}
    except (OSError, ValueError) as exc:
        raise SourceRefused(f"connection.url: cannot resolve host {host!r} ({exc})") from exc
    if settings.STREAMING_IN_ALLOW_PRIVATE:
        return
    for address in sorted(addresses):
        ip = ipaddress.ip_address(address.split("%")[0])
        ip = getattr(ip, "ipv4_mapped", None) or ip
        if not ip.is_global or ip.is_multicast:
            raise SourceRefused(
                f"connection.url: host {host!r} resolves to a non-public address ({address}); "
                "set STREAMING_IN_ALLOW_PRIVATE=1 to allow it"
            )


def source_options(connection: dict) -> SourceOptions:
    url = connection["url"]
    file = urlsplit(url).scheme.lower() == "file"
    return SourceOptions(
        url=url,
        transport=connection.get("transportProtocol", "tcp"),
        buffer_size=connection.get("bufferSize", 8192),
        open_timeout=settings.STREAMING_IN_TIMEOUT_SECONDS,
        read_timeout=settings.STREAMING_IN_TIMEOUT_SECONDS,
        protocols="file" if file else NETWORK_PROTOCOLS,
        give_up_seconds=settings.STREAMING_IN_RECONNECT_SECONDS,
    )


def _room_accept(domain_id: str) -> dict[str, list[str]]:
    domain = Domain.objects.filter(id=domain_id).first()
    return media_accept(domain.config if domain else {})


class StreamingInJob(JobRunner):
    kind = "streaming-in"
    # Measured on the 640x480 30 fps H.264 + AAC test pattern (worker process, 10 s): 0.08 core
    # with video passed through (AAC → Opus), 0.15 with it re-encoded to VP8. The source is only
    # known once the job runs, and camera content costs more to encode than a test pattern.
    cost = 0.25

    async def start(self) -> None:
        self.reader: SourceReader | None = None
        self.session: Session | None = None
        options = source_options(self.spec["connection"])
        try:
            await asyncio.to_thread(check_source_url, options.url)
        except SourceRefused as exc:
            raise JobFailed(exc.message) from exc
        accept = await sync_to_async(_room_accept)(self.job.domain_id)
        try:
            container = await asyncio.to_thread(open_source, options)
        except Exception as exc:
            raise JobFailed(f"cannot open the source {options.url}: {describe(exc)}") from exc
        try:
            routes = plan_routes(container, self.spec["media"], accept)
        except SourceError as exc:
            container.close()
            raise JobFailed(str(exc)) from exc
        self.reader = SourceReader(options, container, routes, on_end=self.end)
        self.reader.start()
        try:
            self.session = await self.client.publish(
                [route.track for route in routes],
                attributes=self.spec.get("attributes") or {},
                video_codec=publish_codec(routes, accept),
            )
        except Exception as exc:
            raise JobFailed(f"cannot publish the stream: {exc}") from exc
        self.result = {
            "stream": self.session.id,
            "source": {route.kind: {"codec": route.codec, "passthrough": route.passthrough} for route in routes},
        }

    def progress(self) -> dict:
        if self.session is not None and self.session.pc.connectionState in ("failed", "closed"):
            # Unpublished from outside (DELETE /streams/{id}): nothing left to feed.
            self.result["ended"] = "the stream was unpublished"
            self.end()
        return {**super().progress(), **(self.reader.progress() if self.reader else {})}

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.stop()
        if self.session is not None:
            with contextlib.suppress(Exception):
                await self.client.unpublish(self.session)
        if self.reader is not None:
            # A blocked read returns within the read timeout; the thread is a daemon, so a
            # worker never waits longer than this for it.
            await asyncio.to_thread(self.reader.join, 2.0)
