"""Wire formats of the live management resources: participants and streams of a room.

The engine keeps a stream in the protocol-1.2 track form (``media.tracks``); the REST API
renders it as the spec's v1.1 form (``/v1.1/...``: ``media.video.original[]``) or v1.0 form
(``/v1/...``: ``media.video.format``/``parameters``), with the ``optional`` lists (what a
subscriber may ask for beyond the original) derived from the room's ``mediaOut`` and
``transcoding`` settings as OWT does (docs/stream-engine-api.md spells the rules out).
"""

from __future__ import annotations

import copy
import math
import re
from fractions import Fraction
from typing import Any

from rest_framework import serializers

from conference.exceptions import InvalidRequest
from owt.errors import describe_validation_error
from streamengine.media.layouts import rational_area
from streamengine.media.resolutions import NAMED_RESOLUTIONS
from streamengine.models import Publication

# Source parameters assumed when the engine does not know them (OWT's defaults).
DEFAULT_RESOLUTION = {"width": 640, "height": 480}
DEFAULT_FRAMERATE = 30

EXPLICIT_RESOLUTION = re.compile(r"^r(\d+)x(\d+)$")
MULTIPLIER = re.compile(r"^x(\d+)/(\d+)$")


def resolve_resolution(name: str, base: dict) -> dict | None:
    """A mediaOut resolution (``"vga"``, ``"r640x360"``, ``"x3/4"``) as ``{width, height}``.

    Multipliers scale the stream's own resolution, rounded down to even sizes (encoders
    need even dimensions); names that mean nothing give None.
    """
    if name in NAMED_RESOLUTIONS:
        width, height = NAMED_RESOLUTIONS[name]
        return {"width": width, "height": height}
    if match := EXPLICIT_RESOLUTION.match(name):
        return {"width": int(match[1]), "height": int(match[2])}
    if (match := MULTIPLIER.match(name)) and int(match[2]) > 0:
        factor = Fraction(int(match[1]), int(match[2]))

        def even(size: int) -> int:
            value = math.floor(size * factor)
            return value - value % 2

        return {"width": even(base["width"]), "height": even(base["height"])}
    return None


def _transcoding(config: dict) -> tuple[bool, dict]:
    transcoding = config.get("transcoding") or {}
    video = transcoding.get("video") or {}
    return bool(transcoding.get("audio")), video if isinstance(video, dict) else {}


def audio_optional(config: dict, own_format: dict | None) -> dict | None:
    audio_on, _ = _transcoding(config)
    if not audio_on:
        return None
    formats = [fmt for fmt in (config.get("mediaOut") or {}).get("audio") or [] if fmt != own_format]
    return {"format": formats}


def video_optional(config: dict, own_format: dict | None, parameters: dict | None) -> dict | None:
    _, video = _transcoding(config)
    media_out = (config.get("mediaOut") or {}).get("video") or {}
    out_parameters = media_out.get("parameters") or {}
    switches = video.get("parameters") or {}
    optional: dict[str, Any] = {}
    if video.get("format"):
        optional["format"] = [fmt for fmt in media_out.get("format") or [] if fmt != own_format]
    wanted: dict[str, list] = {}
    base = (parameters or {}).get("resolution") or DEFAULT_RESOLUTION
    framerate = (parameters or {}).get("framerate") or DEFAULT_FRAMERATE
    if switches.get("resolution"):
        resolutions: list[dict] = []
        for name in out_parameters.get("resolution") or []:
            resolved = resolve_resolution(str(name), base)
            smaller = resolved and resolved["width"] < base["width"] and resolved["height"] < base["height"]
            if smaller and resolved not in resolutions:
                resolutions.append(resolved)
        wanted["resolution"] = resolutions
    if switches.get("framerate"):
        wanted["framerate"] = [rate for rate in out_parameters.get("framerate") or [] if rate < framerate]
    for copied in ("bitrate", "keyFrameInterval"):
        if switches.get(copied):
            wanted[copied] = list(out_parameters.get(copied) or [])
    if wanted:
        optional["parameters"] = wanted
    return optional or None


def _track_format(track: dict) -> dict | None:
    return copy.deepcopy(track.get("format")) if track.get("format") is not None else None


def stream_v11(publication: Publication, config: dict) -> dict:
    """The v1.1 StreamInfo of a publication (``/v1.1/rooms/{r}/streams``)."""
    tracks = (publication.media or {}).get("tracks") or []
    media: dict[str, Any] = {}
    audio = next((t for t in tracks if t.get("type") == "audio"), None)
    if audio is not None:
        media["audio"] = {"status": audio.get("status", "active"), "source": audio.get("source", "mic")}
        if audio.get("format") is not None:
            media["audio"]["format"] = _track_format(audio)
        if (optional := audio_optional(config, audio.get("format"))) is not None:
            media["audio"]["optional"] = optional
    videos = [t for t in tracks if t.get("type") == "video"]
    if videos:
        first = videos[0]
        original = []
        for track in videos:
            entry: dict[str, Any] = {"format": _track_format(track)}
            if track.get("parameters"):
                entry["parameters"] = copy.deepcopy(track["parameters"])
            if track.get("rid"):
                entry["simulcastRid"] = track["rid"]
            original.append(entry)
        media["video"] = {
            "status": first.get("status", "active"),
            "source": first.get("source", "camera"),
            "original": original,
        }
        # Simulcast streams have no optional list (spec 5.3): layers replace transcoding.
        simulcast = len(videos) > 1 or bool(first.get("rid"))
        if not simulcast and (optional := video_optional(config, first.get("format"), first.get("parameters"))):
            media["video"]["optional"] = optional
    return {
        "id": publication.id,
        "type": "mixed" if publication.kind == "mixed" else "forward",
        "media": media,
        "data": True if publication.data else None,
        "info": copy.deepcopy(publication.info),
    }


def stream_v10(publication: Publication, config: dict) -> dict:
    """The v1.0 form (``/v1/rooms/{r}/streams``): video ``format``/``parameters`` from ``original[0]``."""
    stream = stream_v11(publication, config)
    video = stream["media"].get("video")
    if video is not None:
        first = video.pop("original")[0]
        video["format"] = first["format"]
        if "parameters" in first:
            video["parameters"] = first["parameters"]
        # Keep the key order of the reference: status, source, format, parameters, optional.
        if "optional" in video:
            video["optional"] = video.pop("optional")
    return stream


class LiveParticipantSerializer(serializers.Serializer):
    """``object(ParticipantDetail)``."""

    id = serializers.CharField()
    user = serializers.CharField()
    role = serializers.CharField()
    permission = serializers.JSONField()


class StreamInfoSerializer(serializers.Serializer):
    """``object(StreamInfo)`` as the schema documents it; bodies are built by :func:`stream_v11`/:func:`stream_v10`."""

    id = serializers.CharField()
    type = serializers.ChoiceField(choices=["forward", "mixed"])
    media = serializers.JSONField(
        help_text="audio/video: status, source, format, original[] (v1.1) or format/parameters (v1), optional"
    )
    data = serializers.BooleanField(allow_null=True)
    info = serializers.JSONField(
        help_text="forward: owner, type, inViews, attributes; mixed: label, layout, activeInput"
    )


class PatchOperationSerializer(serializers.Serializer):
    """One JSON-patch-like operation of a PATCH body."""

    op = serializers.CharField()
    path = serializers.CharField()
    value = serializers.JSONField()


def _operations(body: object) -> list[dict]:
    if not isinstance(body, list) or not body:
        raise InvalidRequest("Body must be a non-empty JSON array of {op, path, value}")
    operations = []
    for index, item in enumerate(body):
        parsed = PatchOperationSerializer(data=item)
        if not parsed.is_valid():
            raise InvalidRequest(f"[{index}].{describe_validation_error(parsed.errors)}")
        operations.append(parsed.validated_data)
    return operations


PERMISSION_PATH = re.compile(r"^/permission/(publish|subscribe)(?:/(audio|video))?$")


def permission_changes(body: object) -> list[tuple[str, str | None, Any]]:
    """Parse ``[{op: "replace", path: "/permission/publish[/audio|video]", value}]`` (spec 5.2)."""
    changes = []
    for index, operation in enumerate(_operations(body)):
        where = f"[{index}]"
        if operation["op"] != "replace":
            raise InvalidRequest(f'{where}.op: must be "replace"')
        match = PERMISSION_PATH.match(operation["path"])
        if match is None:
            raise InvalidRequest(
                f"{where}.path: must be /permission/publish|subscribe[/audio|video], not {operation['path']!r}"
            )
        action, kind = match[1], match[2]
        value = operation["value"]
        if kind is not None:
            if not isinstance(value, bool):
                raise InvalidRequest(f"{where}.value: must be true or false")
        elif not (
            isinstance(value, dict)
            and set(value) == {"audio", "video"}
            and all(isinstance(flag, bool) for flag in value.values())
        ):
            raise InvalidRequest(f"{where}.value: must be {{audio: bool, video: bool}}")
        changes.append((action, kind, value))
    return changes


def permission_apply(permission: dict, changes: list[tuple[str, str | None, Any]]) -> dict:
    updated = copy.deepcopy(permission)
    for action, kind, value in changes:
        if kind is None:
            updated[action] = dict(value)
        else:
            # A permission of `false` (nothing allowed) becomes an object when one kind is set.
            current = updated.get(action)
            current = dict(current) if isinstance(current, dict) else {"audio": False, "video": False}
            current[kind] = value
            updated[action] = current
    return updated


STATUS_PATH = re.compile(r"^/media/(audio|video)/status$")


def stream_changes(body: object, *, view_labels: list[str]) -> list[tuple[str, str, Any]]:
    """Parse forward-stream updates (spec 5.3): ``/media/audio|video/status`` and ``/info/inViews``.

    Gives ``("status", kind, "active"|"inactive")`` and ``("view", label, add: bool)``; view
    labels must be the room's. Layout ops belong to mixed streams (:func:`mixed_stream_changes`).
    """
    changes = []
    for index, operation in enumerate(_operations(body)):
        where = f"[{index}]"
        op, path, value = operation["op"], operation["path"], operation["value"]
        if match := STATUS_PATH.match(path):
            if op != "replace":
                raise InvalidRequest(f'{where}.op: must be "replace" for {path}')
            if value not in ("active", "inactive"):
                raise InvalidRequest(f'{where}.value: must be "active" or "inactive"')
            changes.append(("status", match[1], value))
        elif path == "/info/inViews":
            if op not in ("add", "remove"):
                raise InvalidRequest(f'{where}.op: must be "add" or "remove" for /info/inViews')
            if not isinstance(value, str) or value not in view_labels:
                raise InvalidRequest(f"{where}.value: not a view of this room: {value!r}")
            changes.append(("view", value, op == "add"))
        else:
            raise InvalidRequest(
                f"{where}.path: unsupported {path!r} (use /media/audio/status, /media/video/status, /info/inViews)"
            )
    return changes


LAYOUT_REGION_PATH = re.compile(r"^/info/layout/(\d+)/stream$")
AREA_VALUE = re.compile(r"^(0|1|\d+/\d+)$")


def _layout_entry(entry: object, where: str, stream_ids: set[str]) -> dict:
    if not isinstance(entry, dict) or not set(entry) <= {"stream", "region"} or "region" not in entry:
        raise InvalidRequest(f"{where}: must be {{stream?, region}}")
    region = entry["region"]
    if not isinstance(region, dict) or not isinstance(region.get("id"), str) or not region["id"]:
        raise InvalidRequest(f"{where}.region.id: must be a non-empty string")
    if region.get("shape", "rectangle") != "rectangle":
        raise InvalidRequest(f'{where}.region.shape: must be "rectangle"')
    area = region.get("area")
    if not isinstance(area, dict) or set(area) != {"left", "top", "width", "height"}:
        raise InvalidRequest(f"{where}.region.area: must be {{left, top, width, height}}")
    for name, value in area.items():
        if not isinstance(value, str) or not AREA_VALUE.match(value):
            raise InvalidRequest(f'{where}.region.area.{name}: must be "0", "1" or "n/d"')
        numerator, _, denominator = value.partition("/")
        if denominator and (int(denominator) == 0 or int(numerator) > int(denominator)):
            raise InvalidRequest(f"{where}.region.area.{name}: {value} is not a fraction between 0 and 1")
    if "stream" in entry and entry["stream"] not in stream_ids:
        raise InvalidRequest(f"{where}.stream: not a stream of this view: {entry['stream']!r}")
    converted: dict = {"stream": entry["stream"]} if "stream" in entry else {}
    converted["region"] = {"id": region["id"], "shape": "rectangle", "area": rational_area(area)}
    return converted


def mixed_layout(value: object, *, stream_ids: set[str], where: str = "value") -> list[dict]:
    """Validate a LayoutUpdate value (spec 5.3, reference 7.3) into the mixed-info form."""
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"{where}: must be a non-empty array of {{stream?, region}}")
    layout = [_layout_entry(entry, f"{where}[{index}]", stream_ids) for index, entry in enumerate(value)]
    streams = [entry["stream"] for entry in layout if "stream" in entry]
    if len(streams) != len(set(streams)):
        raise InvalidRequest(f"{where}: a stream appears twice")
    regions = [entry["region"]["id"] for entry in layout]
    if len(regions) != len(set(regions)):
        raise InvalidRequest(f"{where}: a region id appears twice")
    filled = ["stream" in entry for entry in layout]
    if any(filled[index] and not all(filled[:index]) for index in range(len(filled))):
        raise InvalidRequest(f"{where}: a stream follows an empty region")
    return layout


def mixed_stream_changes(body: object, *, stream_ids: set[str], layout: list[dict]) -> list[tuple[str, Any]]:
    """Parse mixed-stream updates: LayoutUpdate (``replace /info/layout``) gives
    ``("layout", entries)``, RegionUpdate (``replace /info/layout/<n>/stream``) gives
    ``("region", (region id, stream id))``."""
    changes: list[tuple[str, Any]] = []
    for index, operation in enumerate(_operations(body)):
        where = f"[{index}]"
        op, path, value = operation["op"], operation["path"], operation["value"]
        if op != "replace":
            raise InvalidRequest(f'{where}.op: must be "replace" for a mixed stream')
        if path == "/info/layout":
            changes.append(("layout", mixed_layout(value, stream_ids=stream_ids, where=f"{where}.value")))
        elif match := LAYOUT_REGION_PATH.match(path):
            position = int(match[1])
            if position >= len(layout):
                raise InvalidRequest(f"{where}.path: the layout has no region {position}")
            if not isinstance(value, str) or value not in stream_ids:
                raise InvalidRequest(f"{where}.value: not a stream of this view: {value!r}")
            changes.append(("region", (layout[position]["region"]["id"], value)))
        else:
            raise InvalidRequest(
                f"{where}.path: unsupported {path!r} for a mixed stream (use /info/layout, /info/layout/<n>/stream)"
            )
    return changes
