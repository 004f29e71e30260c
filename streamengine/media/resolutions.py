"""The named video resolutions of the OWT APIs, as OWT defines them: one table for all.

Room configurations (``mediaOut`` resolution lists), the live streams' ``optional`` lists
and the transcoder all read it. Plain Python (no Django, no Channels), so the media engine
and the apps above it can share it.
"""

from __future__ import annotations

NAMED_RESOLUTIONS: dict[str, tuple[int, int]] = {
    "cif": (352, 288),
    "vga": (640, 480),
    "svga": (800, 600),
    "xga": (1024, 768),
    "r640x360": (640, 360),
    "hd720p": (1280, 720),
    "sif": (320, 240),
    "hvga": (480, 320),
    "r480x360": (480, 360),
    "qcif": (176, 144),
    "r192x144": (192, 144),
    "hd1080p": (1920, 1080),
    "uhd_4k": (3840, 2160),
    "r360x360": (360, 360),
    "r480x480": (480, 480),
    "r720x720": (720, 720),
    "r720x1280": (720, 1280),
    "r1080x1920": (1080, 1920),
    "qvga": (320, 240),
}
