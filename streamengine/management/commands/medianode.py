"""``python manage.py medianode``: run a media node as its own process.

Portals reach it over the Channels layer, so the layer must be shared (``CHANNEL_LAYER=redis``);
the in-memory layer only reaches its own process (use the embedded node then).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streamengine.node import MediaNode


class Command(BaseCommand):
    help = "Run a media node (SFU) that registers as a Node and serves rooms placed on it."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--node-id", help="Node id (default: host-pid-random)")
        parser.add_argument(
            "--transcode-all",
            action="store_true",
            help="Serve every subscriber by decode + re-encode (MediaRelay baseline for benchmarks)",
        )

    def handle(self, *args, node_id: str | None = None, transcode_all: bool = False, **options) -> None:
        if settings.CHANNEL_LAYER != "redis":
            raise CommandError(
                "A separate media node needs a shared channel layer: set CHANNEL_LAYER=redis and REDIS_URL."
            )
        asyncio.run(self._run(node_id, transcode_all))

    async def _run(self, node_id: str | None, transcode_all: bool) -> None:
        node = MediaNode(node_id=node_id, embedded=False, transcode_all=transcode_all)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        await node.start()
        self.stdout.write(f"media node {node.id} on channel {node.channel_name}", ending="\n")
        self.stdout.flush()
        await stop.wait()
        await node.stop()
