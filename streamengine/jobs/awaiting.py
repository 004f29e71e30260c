"""REST answers that are a media job's stream (POST /streaming-ins, stream-engine publications).

The stream exists only once a media worker has pulled the source and published it, a few
seconds after the request. Waiting in the view would hold the portal's one thread for sync
code (where signaling's database calls run too, the job's own login among them), so the
DRF view only creates the job and returns a :class:`StreamPending`; :func:`awaiting_stream`
wraps the view's ``as_view()`` in an async view that polls the job row on the event loop
(one query each ``POLL_SECONDS``) and fills the response in before Django renders it.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from rest_framework.response import Response

from streamengine.exceptions import StreamingInFailed
from streamengine.jobs import services
from streamengine.models import MediaJob, Publication

POLL_SECONDS = 0.2


class StreamPending(Response):
    """The job's stream, rendered by ``present`` once published (or its failure)."""

    def __init__(self, job_id: str, present: Callable[[Publication], Any]) -> None:
        super().__init__(status=200)
        self.job_id = job_id
        self.present = present

    def outcome(self) -> tuple[Any, str] | None:
        """(rendered stream, "") once published, (None, reason) once ended, None meanwhile."""
        job = MediaJob.objects.filter(id=self.job_id).first()
        if job is None:
            return None, "the job was deleted"
        stream = job.result.get("stream")
        publication = stream and Publication.objects.filter(id=stream, ready=True).select_related("domain").first()
        if publication:
            return self.present(publication), ""
        if job.state in (MediaJob.State.FAILED, MediaJob.State.FINISHED):
            return None, job.reason or "the job ended before publishing"
        return None

    def give_up(self) -> tuple[None, str]:
        job = services.job_stop(job_id=self.job_id)
        waited = f"{settings.STREAMING_IN_WAIT_SECONDS:g} s"
        if job.worker:
            return None, f"the stream was not published within {waited}"
        return None, f"no media worker took the job within {waited}"

    async def fill(self) -> None:
        deadline = time.monotonic() + settings.STREAMING_IN_WAIT_SECONDS
        while (outcome := await sync_to_async(self.outcome)()) is None:
            if time.monotonic() > deadline:
                outcome = await sync_to_async(self.give_up)()
                break
            await asyncio.sleep(POLL_SECONDS)
        rendered, failure = outcome
        if failure:
            view = self.renderer_context["view"]
            error = view.error_format.exception_handler(StreamingInFailed(f"Streaming-in failed: {failure}"), {})
            self.data, self.status_code = error.data, error.status_code
        else:
            self.data = rendered


def awaiting_stream(view: Callable[..., HttpResponse]) -> Callable[..., Any]:
    """An async view around a DRF view that may return a :class:`StreamPending`."""

    @functools.wraps(view)  # keeps csrf_exempt, and cls/initkwargs for the OpenAPI schema
    async def awaiting(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = await sync_to_async(view)(request, *args, **kwargs)
        if isinstance(response, StreamPending):
            await response.fill()
        return response

    return awaiting
