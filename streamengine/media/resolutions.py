"""The named video resolutions of the OWT APIs, as OWT defines them: one table for all.

Room configurations (``mediaOut`` resolution lists), the live streams' ``optional`` lists
(:func:`track_optional`) and the transcoder (:func:`target_size`) all read it. Plain Python (no Django, no Channels), so the media engine
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

# What the transcoding path can encode (aiortc's encoders), in OWT's codec names.
ENCODABLE = {"audio": {"opus", "pcmu", "pcma"}, "video": {"vp8", "h264"}}


def target_size(resolution: dict | str | None, width: int, height: int) -> tuple[int, int] | None:
    """``{"width","height"}``, a named size, or a ``"x3/4"`` multiplier → even output size."""
    if not resolution:
        return None
    if isinstance(resolution, dict):
        size = (int(resolution["width"]), int(resolution["height"]))
    elif resolution in NAMED_RESOLUTIONS:
        size = NAMED_RESOLUTIONS[resolution]
    elif isinstance(resolution, str) and resolution.startswith("x") and "/" in resolution:
        num, den = (int(x) for x in resolution[1:].split("/"))
        size = (width * num // den, height * num // den)
    else:
        return None
    return size[0] // 2 * 2, size[1] // 2 * 2


def track_optional(media_out: dict, track: dict) -> dict:
    """A live track's ``optional``: the other formats and parameters a subscriber may ask for.

    From the room's ``mediaOut``, limited to what the transcoding path can encode, and for
    video to resolutions below and frame rates under the track's own (once measured), as
    OWT offers them; the OWT JS SDK reads these as ``stream.extraCapabilities``.
    """
    kind = track["type"]
    out = (media_out or {}).get(kind) or {}
    formats = out if kind == "audio" else out.get("format", [])
    optional: dict = {
        "format": [
            f for f in formats if isinstance(f, dict) and f.get("codec") in ENCODABLE[kind] and f != track.get("format")
        ]
    }
    if kind == "video":
        offered = out.get("parameters") or {}
        own = track.get("parameters") or {}
        size = own.get("resolution") or {}
        resolutions: list[dict] = []
        if size.get("width") and size.get("height"):
            for name in offered.get("resolution", []):
                scaled = target_size(name, size["width"], size["height"])
                entry = {"width": scaled[0], "height": scaled[1]} if scaled else None
                smaller = scaled and scaled[0] <= size["width"] and scaled[1] <= size["height"]
                if entry and smaller and scaled != (size["width"], size["height"]) and entry not in resolutions:
                    resolutions.append(entry)
        framerate = own.get("framerate")
        optional["parameters"] = {
            "resolution": resolutions,
            "framerate": [f for f in offered.get("framerate", []) if not framerate or f < framerate],
            "bitrate": list(offered.get("bitrate", [])),
            "keyFrameInterval": list(offered.get("keyFrameInterval", [])),
        }
    return optional
