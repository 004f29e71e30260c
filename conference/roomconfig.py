"""The OWT ``object(Room)``: defaults, validation, PUT/PATCH merging, the engine's copy.

Defaults are the reference server's (docs/management-api.md, "Rooms: defaults and validation"). The serializers below are
the schema: a key that is missing gets its default, a key that is present is validated
(types, enums, ranges) and unknown keys are dropped, as the reference does. Validation
errors are request data errors (HTTP 400, code 1301) whose message names the field, e.g.
``views[0].video.maxInput: Ensure this value is less than or equal to 256.``
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from rest_framework import serializers

from conference import jsonpatch
from conference.exceptions import InvalidRequest
from owt.crypto import decrypt, encrypt
from owt.errors import describe_validation_error
from streamengine.media.resolutions import NAMED_RESOLUTIONS

FRAMERATES = [6, 12, 15, 24, 30, 48, 60]
# Bounds of the room document, so one request cannot make the platform store, validate or
# send megabytes: list lengths, numbers beyond any real room, string lengths.
MAX_ROLES = 32
MAX_VIEWS = 16
MAX_CUSTOM_TEMPLATES = 32  # per view
MAX_INPUT = 256  # a view's maxInput: OWT's own range is 1..256
MAX_REGIONS = MAX_INPUT  # per template: a region per input
MAX_FORMATS = 32  # per mediaIn / mediaOut list
MAX_LIMIT = 10_000  # participantLimit, inputLimit
MAX_NAME_LENGTH = 255
MAX_TOKEN_LENGTH = 64  # codecs, profiles, labels, region ids, effects
KEY_FRAME_INTERVALS = [100, 30, 5, 2, 1]
# Output resolutions: a name of NAMED_RESOLUTIONS or a ratio below 1 like "x3/4".
RELATIVE_RESOLUTION = re.compile(r"^x([1-9]\d*)/([1-9]\d*)$")
RELATIVE_BITRATE = re.compile(r"^x(\d+(?:\.\d+)?)$")

DEFAULT_ROLES = [
    {"role": "presenter", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}},
    {"role": "viewer", "publish": {"audio": False, "video": False}, "subscribe": {"audio": True, "video": True}},
    {
        "role": "audio_only_presenter",
        "publish": {"audio": True, "video": False},
        "subscribe": {"audio": True, "video": False},
    },
    {
        "role": "video_only_viewer",
        "publish": {"audio": False, "video": False},
        "subscribe": {"audio": False, "video": True},
    },
    {"role": "sip", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}},
]
DEFAULT_VIEW_AUDIO_FORMAT = {"codec": "opus", "sampleRate": 48000, "channelNum": 2}
DEFAULT_VIEW_VIDEO_FORMAT = {"codec": "vp8"}
DEFAULT_MEDIA_IN = {
    "audio": [
        {"codec": "opus", "sampleRate": 48000, "channelNum": 2},
        {"codec": "isac", "sampleRate": 16000},
        {"codec": "isac", "sampleRate": 32000},
        {"codec": "g722", "sampleRate": 16000, "channelNum": 1},
        {"codec": "pcma"},
        {"codec": "pcmu"},
        {"codec": "aac"},
        {"codec": "ac3"},
        {"codec": "nellymoser"},
        {"codec": "ilbc"},
    ],
    "video": [{"codec": "h264"}, {"codec": "vp8"}, {"codec": "vp9"}],
}
DEFAULT_MEDIA_OUT = {
    "audio": [
        {"codec": "opus", "sampleRate": 48000, "channelNum": 2},
        {"codec": "isac", "sampleRate": 16000},
        {"codec": "isac", "sampleRate": 32000},
        {"codec": "g722", "sampleRate": 16000, "channelNum": 1},
        {"codec": "pcma"},
        {"codec": "pcmu"},
        {"codec": "aac", "sampleRate": 48000, "channelNum": 2},
        {"codec": "ac3"},
        {"codec": "nellymoser"},
        {"codec": "ilbc"},
    ],
    "video": {
        "format": [
            {"codec": "vp8"},
            {"codec": "h264", "profile": "CB"},
            {"codec": "h264", "profile": "B"},
            {"codec": "vp9"},
        ],
        "parameters": {
            "resolution": ["x3/4", "x2/3", "x1/2", "x1/3", "x1/4", "hd1080p", "hd720p", "svga", "vga", "qvga", "cif"],
            "framerate": [6, 12, 15, 24, 30, 48, 60],
            "bitrate": ["x0.8", "x0.6", "x0.4", "x0.2"],
            "keyFrameInterval": [100, 30, 5, 2, 1],
        },
    },
}
# Top-level keys whose *falsy* value (missing, null, false, 0, "") means "use the default";
# ``views: []`` is kept (JavaScript's [] is truthy) and means "no mixed stream".
FALSY_DEFAULTS = {"roles": DEFAULT_ROLES, "mediaIn": DEFAULT_MEDIA_IN, "mediaOut": DEFAULT_MEDIA_OUT, "views": [{}]}


class Schema(serializers.Serializer):
    """A nested object whose missing sub-objects are validated from ``fill`` (so their own
    defaults apply) instead of being left out."""

    fill: dict[str, Any] = {}

    def to_internal_value(self, data: Any) -> dict:
        if isinstance(data, Mapping):
            data = {**{key: copy.deepcopy(value) for key, value in self.fill.items() if key not in data}, **data}
        return dict(super().to_internal_value(data))


class Number(serializers.Field):
    """A JSON number (int kept int), optionally bounded; strings are not numbers."""

    def __init__(
        self,
        *,
        minimum: float | None = None,
        exclusive_minimum: float | None = None,
        maximum: float | None = None,
        **kwargs: Any,
    ):
        self.minimum, self.exclusive_minimum, self.maximum = minimum, exclusive_minimum, maximum
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> float | int:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            raise serializers.ValidationError("must be a number")
        if self.minimum is not None and data < self.minimum:
            raise serializers.ValidationError(f"must be at least {self.minimum}")
        if self.exclusive_minimum is not None and data <= self.exclusive_minimum:
            raise serializers.ValidationError(f"must be greater than {self.exclusive_minimum}")
        if self.maximum is not None and data > self.maximum:
            raise serializers.ValidationError(f"must be at most {self.maximum}")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class StrictInteger(serializers.IntegerField):
    """An integer given as a JSON number (``true`` and ``"5"`` are refused)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBoolean(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            raise serializers.ValidationError("must be true or false")
        return data


class Choice(serializers.Field):
    """One of fixed JSON values, compared by type and value (``"24"`` is not ``24``)."""

    def __init__(self, choices: list, **kwargs: Any):
        self.choices_allowed = choices
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        kind = type(self.choices_allowed[0])
        if isinstance(data, bool) or not isinstance(data, kind) or data not in self.choices_allowed:
            raise serializers.ValidationError(f"{data!r} is not one of {self.choices_allowed}")
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class FalseOr(serializers.Field):
    """``false`` or an object validated by ``inner`` (a view's ``video``)."""

    def __init__(self, inner: serializers.Serializer, **kwargs: Any):
        self.inner = inner
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if data is False:
            return False
        return self.inner.run_validation(data)

    def to_representation(self, value: Any) -> Any:
        return value


# --- building blocks ---------------------------------------------------------------------


class AudioFormat(Schema):
    codec = serializers.CharField(max_length=MAX_TOKEN_LENGTH)
    sampleRate = StrictInteger(min_value=1, max_value=384_000, required=False)  # noqa: N815 (wire name)
    channelNum = StrictInteger(min_value=1, max_value=64, required=False)  # noqa: N815


class VideoFormat(Schema):
    codec = serializers.CharField(max_length=MAX_TOKEN_LENGTH)
    profile = serializers.CharField(max_length=MAX_TOKEN_LENGTH, required=False)


class Role(Schema):
    class Rights(Schema):
        audio = StrictBoolean(default=False)
        video = StrictBoolean(default=False)

    fill = {"publish": {}, "subscribe": {}}
    role = serializers.CharField(max_length=MAX_NAME_LENGTH)
    publish = Rights()
    subscribe = Rights()


class Area(Schema):
    left = serializers.JSONField()
    top = serializers.JSONField()
    width = serializers.JSONField()
    height = serializers.JSONField()

    def validate(self, attrs: dict) -> dict:
        values = {}
        for name in ("left", "top", "width", "height"):
            values[name] = parse_fraction(attrs[name], name)
        if values["left"] + values["width"] > 1 or values["top"] + values["height"] > 1:
            raise serializers.ValidationError("the region must lie inside the view (left+width and top+height <= 1)")
        # Stored as strings, like the reference (numbers are cast: 0.5 -> "0.5").
        return {name: str(attrs[name]) for name in ("left", "top", "width", "height")}


def parse_fraction(value: Any, name: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise serializers.ValidationError({name: 'must be a fraction string like "1/3" or a number'})
    try:
        parsed = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError) as exc:
        raise serializers.ValidationError({name: f"{value!r} is not a valid fraction string"}) from exc
    if not 0 <= parsed <= 1:
        raise serializers.ValidationError({name: f"{value!r} must be between 0 and 1"})
    return parsed


class Region(Schema):
    id = serializers.CharField(max_length=MAX_TOKEN_LENGTH)
    shape = Choice(["rectangle"], default="rectangle")
    area = Area()


class CustomTemplate(Schema):
    primary = serializers.CharField(max_length=MAX_TOKEN_LENGTH, required=False)
    region = Region(many=True, allow_empty=False, max_length=MAX_REGIONS)

    def validate(self, attrs: dict) -> dict:
        ids = [region["id"] for region in attrs["region"]]
        if len(set(ids)) != len(ids):
            raise serializers.ValidationError({"region": "region ids must be unique within a template"})
        if "primary" in attrs and attrs["primary"] not in ids:
            raise serializers.ValidationError({"primary": "must be the id of one of the template's regions"})
        return attrs


class Templates(Schema):
    base = Choice(["fluid", "lecture", "void"], default="fluid")
    custom = CustomTemplate(many=True, default=list, max_length=MAX_CUSTOM_TEMPLATES)


class Layout(Schema):
    fill = {"templates": {}}
    fitPolicy = Choice(["letterbox", "crop"], default="letterbox")  # noqa: N815
    setRegionEffect = serializers.CharField(max_length=MAX_TOKEN_LENGTH, required=False)  # noqa: N815
    templates = Templates()


class Resolution(Schema):
    width = StrictInteger(min_value=16, max_value=7680, default=640)
    height = StrictInteger(min_value=16, max_value=4320, default=480)


class VideoParameters(Schema):
    fill = {"resolution": {}}
    resolution = Resolution()
    framerate = Choice(FRAMERATES, default=24)
    bitrate = Number(exclusive_minimum=0, maximum=1_000_000, required=False)  # Kbps
    keyFrameInterval = Choice(KEY_FRAME_INTERVALS, default=100)  # noqa: N815


class Color(Schema):
    r = StrictInteger(min_value=0, max_value=255, default=0)
    g = StrictInteger(min_value=0, max_value=255, default=0)
    b = StrictInteger(min_value=0, max_value=255, default=0)


class ViewVideo(Schema):
    fill = {"format": DEFAULT_VIEW_VIDEO_FORMAT, "parameters": {}, "bgColor": {}, "layout": {}}
    format = VideoFormat()
    parameters = VideoParameters()
    maxInput = StrictInteger(min_value=1, max_value=MAX_INPUT, default=16)  # noqa: N815
    motionFactor = Number(exclusive_minimum=0, maximum=100, default=0.8)  # noqa: N815
    bgColor = Color()  # noqa: N815
    keepActiveInputPrimary = StrictBoolean(default=False)  # noqa: N815
    layout = Layout()

    def validate(self, attrs: dict) -> dict:
        # The reference's save hook: an H.264 view without a profile mixes Constrained Baseline.
        if attrs["format"]["codec"] == "h264" and "profile" not in attrs["format"]:
            attrs["format"]["profile"] = "CB"
        return attrs


class ViewAudio(Schema):
    fill = {"format": DEFAULT_VIEW_AUDIO_FORMAT}
    format = AudioFormat()
    vad = StrictBoolean(default=True)


class View(Schema):
    fill = {"audio": {}, "video": {}}
    label = serializers.CharField(max_length=MAX_TOKEN_LENGTH, default="common")
    audio = ViewAudio()
    video = FalseOr(ViewVideo())


class MediaIn(Schema):
    audio = AudioFormat(many=True, default=list, max_length=MAX_FORMATS)
    video = VideoFormat(many=True, default=list, max_length=MAX_FORMATS)


def _list_of(field: serializers.Field) -> serializers.ListField:
    return serializers.ListField(child=field, default=list, max_length=MAX_FORMATS)


class OutputResolution(serializers.Field):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str) or not (data in NAMED_RESOLUTIONS or _relative(data)):
            raise serializers.ValidationError(
                f'{data!r} is not a resolution: use a ratio below 1 like "x3/4" or one of {sorted(NAMED_RESOLUTIONS)}'
            )
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _relative(text: str) -> bool:
    match = RELATIVE_RESOLUTION.match(text)
    return bool(match) and 0 < int(match.group(1)) < int(match.group(2))


class OutputBitrate(serializers.Field):
    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str) and (match := RELATIVE_BITRATE.match(data)) and float(match.group(1)) > 0:
            return data
        if not isinstance(data, bool) and isinstance(data, (int, float)) and data > 0:
            return data
        raise serializers.ValidationError(f'{data!r} is not a bitrate: use a multiplier like "x0.8" or Kbps > 0')

    def to_representation(self, value: Any) -> Any:
        return value


class OutputVideoParameters(Schema):
    resolution = _list_of(OutputResolution())
    framerate = _list_of(Choice(FRAMERATES))
    bitrate = _list_of(OutputBitrate())
    keyFrameInterval = _list_of(Choice(KEY_FRAME_INTERVALS))  # noqa: N815


class OutputVideo(Schema):
    fill = {"parameters": {}}
    format = VideoFormat(many=True, default=list, max_length=MAX_FORMATS)
    parameters = OutputVideoParameters()


class MediaOut(Schema):
    fill = {"video": {}}
    audio = AudioFormat(many=True, default=list, max_length=MAX_FORMATS)
    video = OutputVideo()


class Transcoding(Schema):
    class Video(Schema):
        class Parameters(Schema):
            resolution = StrictBoolean(default=True)
            framerate = StrictBoolean(default=True)
            bitrate = StrictBoolean(default=True)
            keyFrameInterval = StrictBoolean(default=True)  # noqa: N815

        fill = {"parameters": {}}
        format = StrictBoolean(default=True)
        parameters = Parameters()

    fill = {"video": {}}
    audio = StrictBoolean(default=True)
    video = Video()


class Notifying(Schema):
    participantActivities = StrictBoolean(default=True)  # noqa: N815
    streamChange = StrictBoolean(default=True)  # noqa: N815


class Sip(Schema):
    sipServer = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False, allow_blank=True)  # noqa: N815
    username = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False, allow_blank=True)
    password = serializers.CharField(max_length=MAX_NAME_LENGTH, required=False, allow_blank=True)


class RoomSchema(Schema):
    """The stored room: ``object(Room)`` without ``_id``."""

    fill = {"transcoding": {}, "notifying": {}}
    name = serializers.CharField(max_length=MAX_NAME_LENGTH)
    inputLimit = StrictInteger(min_value=-1, max_value=MAX_LIMIT, default=-1)  # noqa: N815
    participantLimit = StrictInteger(min_value=-1, max_value=MAX_LIMIT, default=-1)  # noqa: N815
    selectActiveAudio = StrictBoolean(default=False)  # noqa: N815
    enableBandwidthAdaptation = StrictBoolean(default=False)  # noqa: N815
    roles = Role(many=True, max_length=MAX_ROLES)
    views = View(many=True, allow_empty=True, max_length=MAX_VIEWS)
    mediaIn = MediaIn()  # noqa: N815
    mediaOut = MediaOut()  # noqa: N815
    transcoding = Transcoding()
    notifying = Notifying()
    sip = Sip(required=False)

    def validate(self, attrs: dict) -> dict:
        names = [role["role"] for role in attrs["roles"]]
        if len(set(names)) != len(names):
            raise serializers.ValidationError({"roles": "role names must be unique"})
        labels = [view["label"] for view in attrs["views"]]
        if len(set(labels)) != len(labels):
            raise serializers.ValidationError({"views": "view labels must be unique"})
        # Each view is a mixed stream the engine must be able to produce from mediaOut.
        out_audio = [_format_key(fmt, AUDIO_KEYS) for fmt in attrs["mediaOut"]["audio"]]
        out_video = [_format_key(fmt, VIDEO_KEYS) for fmt in attrs["mediaOut"]["video"]["format"]]
        for index, view in enumerate(attrs["views"]):
            if _format_key(view["audio"]["format"], AUDIO_KEYS) not in out_audio:
                raise serializers.ValidationError(
                    {f"views[{index}].audio.format": "MediaOut conflicts with View Setting: not in mediaOut.audio"}
                )
            if view["video"] is not False and _format_key(view["video"]["format"], VIDEO_KEYS) not in out_video:
                raise serializers.ValidationError(
                    {
                        f"views[{index}].video.format": (
                            "MediaOut conflicts with View Setting: not in mediaOut.video.format"
                        )
                    }
                )
        return attrs


AUDIO_KEYS = ("codec", "sampleRate", "channelNum")
VIDEO_KEYS = ("codec", "profile")


def _format_key(fmt: dict, keys: tuple[str, ...]) -> tuple:
    # Strict, like the reference: an absent field only matches an absent field.
    return tuple(fmt.get(key) for key in keys)


# --- the public functions ------------------------------------------------------------------


def strip_nulls(value: Any) -> Any:
    """Drop null-valued keys recursively (the reference does before create and update)."""
    if isinstance(value, dict):
        return {key: strip_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [strip_nulls(item) for item in value]
    return value


def _validate(document: dict) -> dict:
    for key, default in FALSY_DEFAULTS.items():
        if not document.get(key) and document.get(key) != []:
            document[key] = copy.deepcopy(default)  # views: [{}] is one default view, "common"
    schema = RoomSchema(data=document)
    if not schema.is_valid():
        raise InvalidRequest(describe_validation_error(schema.errors))
    return _encrypt_sip(schema.validated_data)


def _encrypt_sip(config: dict) -> dict:
    # The SIP password is a secret the SIP job must read back: encrypted at rest.
    if config.get("sip", {}).get("password"):
        config["sip"]["password"] = {"encrypted": encrypt(config["sip"]["password"])}
    return config


def create_config(*, name: Any, options: Any) -> dict:
    """Validated settings of a new room (with ``name``) from ``POST /v1/rooms`` ``{name, options}``."""
    if not isinstance(name, str) or not name:
        raise InvalidRequest("name: a non-empty string is required")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidRequest("options: Invalid room option (must be an object)")
    return _validate({**strip_nulls(options), "name": name})


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch: objects merge recursively, null removes, the rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def update_config(*, current: dict, body: Any, merge: str) -> dict:
    """New validated settings (with ``name``) after a PUT (``merge="shallow"``) or a PATCH
    (``merge="deep"``: an object is a JSON merge patch, an array an RFC 6902 JSON Patch)."""
    current = decrypt_sip(current)
    if merge == "deep" and isinstance(body, list):
        try:
            document = jsonpatch.apply(current, body)
        except jsonpatch.JsonPatchError as exc:
            raise InvalidRequest(str(exc)) from exc
        if not isinstance(document, dict):
            raise InvalidRequest("The patched room must be a JSON object")
    elif not isinstance(body, dict):
        raise InvalidRequest(
            "The request body must be a JSON object" + (" or a JSON Patch array" if merge == "deep" else "")
        )
    elif merge == "shallow":
        # The reference's PUT: null keys dropped, top-level keys assigned over the stored room.
        document = {**current, **strip_nulls(body)}
    else:
        document = merge_patch(current, body)
    for key in ("_id", "id"):
        document.pop(key, None)
    return _validate(document)


# Key order of every object in a room, as the schema declares it. PostgreSQL's jsonb does not
# keep key order, so responses are put back in this order to read the same on every database.
KEY_ORDER = {
    key: rank
    for rank, key in enumerate(
        [
            *RoomSchema._declared_fields,
            *("role", "publish", "subscribe", "label", "audio", "video", "format", "parameters", "codec"),
            *("sampleRate", "channelNum", "profile", "vad", "resolution", "left", "top", "width", "height"),
            *("framerate", "bitrate", "keyFrameInterval", "maxInput", "motionFactor", "bgColor", "r", "g", "b"),
            *("keepActiveInputPrimary", "layout", "fitPolicy", "setRegionEffect", "templates", "base", "custom"),
            *("primary", "region", "id", "shape", "area", "participantActivities", "streamChange"),
            *("sipServer", "username", "password", "encrypted"),
        ]
    )
}


def in_key_order(value: Any) -> Any:
    if isinstance(value, dict):
        ordered = sorted(value, key=lambda key: KEY_ORDER.get(key, len(KEY_ORDER)))
        return {key: in_key_order(value[key]) for key in ordered}
    if isinstance(value, list):
        return [in_key_order(item) for item in value]
    return value


def decrypt_sip(config: dict) -> dict:
    password = config.get("sip", {}).get("password")
    if isinstance(password, dict) and "encrypted" in password:
        config = copy.deepcopy(config)
        config["sip"]["password"] = decrypt(password["encrypted"])
    return config


def engine_config(config: dict) -> dict:
    """The engine's copy: only the settings the engine reads (limits, roles, media lists,
    notifying, transcoding, the views its mixers render, and ``sip`` for the SIP jobs, its
    password still encrypted). Layout templates stay as the
    room has them (base and custom): the mixer expands them, since expanding them here wrote
    megabytes that nothing read."""
    keys = (
        "roles",
        "participantLimit",
        "inputLimit",
        "mediaIn",
        "mediaOut",
        "notifying",
        "transcoding",
        "views",
        "sip",
    )
    return {key: copy.deepcopy(config[key]) for key in keys if key in config}
