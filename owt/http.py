"""Django's HTTP side under ASGI, run the way a WSGI server runs it: one thread hop per request.

Every HTTP view of the platform is synchronous (DRF). Django's own ``ASGIHandler`` runs its
middleware chain on the event loop and hops to a thread for each sync piece: the
``request_started`` receivers, every ``MiddlewareMixin`` middleware's ``process_request`` and
``process_response``, the view, ``response.close()``; and it gives every request a fresh
thread (asgiref's per-request ``ThreadSensitiveContext``), so a database connection could never
outlive its request. Measured in process, those hops cost more than the management API's own
work (docs/performance.md).

:class:`ThreadedASGIHandler` reads the body on the loop, then runs the whole request
(signals, the sync middleware chain, the view, closing the response) in one call on a fixed
pool of long-lived threads, and sends the response from the loop. A pool thread keeps its
database connection between requests (``DB_CONN_MAX_AGE``), like a WSGI worker's thread.
``async_to_sync`` inside a view still reaches this loop (asgiref records it for the thread),
so the engine's notifications are delivered on the loop that owns the channel layer.
WebSockets, socket.io and the ``/metrics/v1/stats`` fast path never come here.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any, BinaryIO

from asgiref.sync import sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.http import FileResponse, HttpResponseBase
from django.urls import set_script_prefix


class ThreadedASGIHandler(ASGIHandler):
    def __init__(self, threads: int) -> None:
        BaseHandler.__init__(self)  # not ASGIHandler's: its middleware chain is the async one
        self.load_middleware(is_async=False)
        # Threads start when needed, up to ``threads``: requests beyond that wait for one.
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="owt-http")

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        try:
            response = await sync_to_async(self.respond, thread_sensitive=False, executor=self.executor)(
                scope, body_file
            )
            await self.send_response(response, send)
            if response.streaming:
                # Its content was produced while sending: closing (resources, request_finished) comes after.
                await sync_to_async(response.close, thread_sensitive=False, executor=self.executor)()
        finally:
            body_file.close()

    def respond(self, scope: dict, body_file: BinaryIO) -> HttpResponseBase:
        """The whole request in this pool thread: what ``WSGIHandler.__call__`` does."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the ASGI server does the low-level chunking
        if not response.streaming:
            # The body is already in memory: close now, in this thread, so request_finished
            # (which keeps or closes this thread's database connection) needs no second hop.
            response.close()
        return response
