"""WhiteNoise that stays on the event loop for every request that is not a static file.

WhiteNoise's middleware is sync-only. In the middle of an async (ASGI) chain it made Django
hop every request to a thread and, below it, back to a new event loop in yet another thread
(asgiref's ``async_to_sync``): about 5 ms of a management API request was spent crossing
those bridges. Here the lookup of a static file is a dict lookup on the loop (files are
indexed at start-up unless ``autorefresh``, i.e. DEBUG); only serving a file, or looking it up
on disk in autorefresh mode, runs in a thread.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.http import HttpRequest, HttpResponse
from whitenoise.middleware import WhiteNoiseMiddleware as SyncWhiteNoiseMiddleware


class WhiteNoiseMiddleware(SyncWhiteNoiseMiddleware):
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        super().__init__(get_response)
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.async_mode:
            return self.__acall__(request)
        return super().__call__(request)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        path = request.path_info
        if self.autorefresh:
            static_file = await sync_to_async(self.find_file)(path)
        else:
            static_file = self.files.get(path)
        if static_file is None:
            return await self.get_response(request)
        return await sync_to_async(self.serve)(static_file, request)
