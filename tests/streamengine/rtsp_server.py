"""An RTSP server for the streaming-in tests: GStreamer's gst-rtsp-server serving a media file.

FFmpeg cannot serve RTSP to a client that pulls (its ``-rtsp_flags listen`` is for receiving
a stream), so the tests start this module with the system Python (PyGObject and
``gir1.2-gst-rtsp-server-1.0`` come from Debian, ``bin/setup --test``). The file is only
demuxed and payloaded, paced by the pipeline clock like a camera; every client gets it from
the start (H.264 + AAC in Matroska, made by ffmpeg in :func:`rtsp_source`).

    python3 tests/streamengine/rtsp_server.py FILE PORT PATH
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

SYSTEM_PYTHON = "/usr/bin/python3"


def pattern_file(path: Path, *, seconds: int = 60, rate: int = 30) -> Path:
    """A 640x480 test pattern (H.264, a keyframe a second) with a 1 kHz tone (AAC)."""
    subprocess.run(
        ["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc=size=640x480:rate={rate}"]
        + ["-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000", "-t", str(seconds)]
        + ["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", str(rate), "-pix_fmt", "yuv420p"]
        + ["-c:a", "aac", str(path)],
        check=True,
        timeout=120,
    )
    return path


def wait_listening(port: int, timeout: float = 10.0) -> None:
    """Until a socket listens on ``port``, seen in /proc/net/tcp: connecting to find out would
    use up a server that serves one client (ffmpeg's ``-listen 1``)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
        if any(row.split()[1].endswith(f":{port:04X}") and row.split()[3] == "0A" for row in rows):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port}")
        time.sleep(0.1)


@contextlib.contextmanager
def rtsp_source(media: Path, port: int, path: str = "/live") -> Iterator[subprocess.Popen]:
    """Serve ``media`` (Matroska, H.264 + AAC) at ``rtsp://127.0.0.1:<port><path>``."""
    server = subprocess.Popen([SYSTEM_PYTHON, __file__, str(media), str(port), path])
    try:
        wait_listening(port)
        yield server
    finally:
        server.terminate()
        server.wait(timeout=10)


def serve(media: str, port: str, path: str) -> None:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(
        f'( filesrc location="{media}" ! matroskademux name=d '
        "d.video_0 ! queue ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 "
        "d.audio_0 ! queue ! aacparse ! rtpmp4gpay name=pay1 pt=97 )"
    )
    server.get_mount_points().add_factory(path, factory)
    server.attach(None)
    GLib.MainLoop().run()


if __name__ == "__main__":
    serve(*sys.argv[1:4])
