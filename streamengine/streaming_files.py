"""The HLS/DASH folders of local streaming-outs, served by the portal to plain players.

``/media/streaming/<room>/<job>/<file>``: no MAuth and no token, because HLS/DASH players
(hls.js, Safari, VLC, dash.js) fetch playlists and segments with plain GETs. The path is
the capability: the job id is 18 random decimal digits, known to whoever created the
streaming-out (and whom they gave the URL). ``Access-Control-Allow-Origin: *`` lets a
player on another origin read them. Only the files the hls/dash muxers write are served,
only from inside that job's folder.
"""

from __future__ import annotations

import re
from pathlib import Path

from django.http import FileResponse, Http404, HttpRequest
from django.views.decorators.http import require_GET

from streamengine.jobs.streaming_out import local_folder

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".ts": "video/mp2t",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
}
NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*$")
ID = re.compile(r"^[A-Za-z0-9_-]+$")


@require_GET
def streaming_file(request: HttpRequest, room_id: str, job_id: str, name: str) -> FileResponse:
    suffix = Path(name).suffix
    if not (ID.match(room_id) and ID.match(job_id) and NAME.match(name)) or suffix not in CONTENT_TYPES:
        raise Http404("Not found")
    path = local_folder(room_id, job_id) / name
    try:
        response = FileResponse(path.open("rb"), content_type=CONTENT_TYPES[suffix])
    except FileNotFoundError as exc:
        raise Http404("Not found") from exc
    response["Access-Control-Allow-Origin"] = "*"
    # Playlists change with every segment; segments never change once written.
    response["Cache-Control"] = "no-cache" if suffix in (".m3u8", ".mpd") else "max-age=3600"
    return response
