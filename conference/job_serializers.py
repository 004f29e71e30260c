"""Wire formats of the media jobs' answers and changes (spec 5.4–5.6, owt-compat §8.1–8.4).

Requests are validated into job specs by ``streamengine.jobs.requests`` (shared with the
stream-engine API). A streaming-in answers with the stream it publishes
(``live_views.render_stream``). Recordings and streaming-outs are server-side subscriptions
(``streamengine.models.MediaJob``, kind ``recording`` or ``streaming-out``): PATCH operations
are applied to the job's ``spec`` here, and the job is rendered as OWT's subscription abstract ``{id, media: {audio, video}}`` plus ``storage``
(recordings) or ``protocol``/``url``/``parameters`` (streaming-outs), and what OWT lacks:
the job's ``state``, ``reason``, ``progress`` (and a recording's ``download`` path). An
analytics (kind ``analytics``) is rendered in spec 5.8's form.
"""

from __future__ import annotations

import copy
import re

from rest_framework import serializers

from conference.exceptions import InvalidRequest
from conference.live_serializers import _operations
from owt.errors import describe_validation_error
from streamengine.jobs.requests import PROTOCOLS, VideoParameters
from streamengine.jobs.streaming_out import local_playlist_path
from streamengine.models import MediaJob, Publication
from streamengine.selectors import stream_id_of

STATUS_PATH = re.compile(r"^/media/(audio|video)/status$")
FROM_PATH = re.compile(r"^/media/(audio|video)/from$")
PARAMETER_PATH = re.compile(r"^/media/(video)/parameters/(resolution|framerate|bitrate|keyFrameInterval)$")


def subscription_apply_patch(
    spec: dict, body: object, *, streams: dict[str, Publication], what: str, video_parameters: bool = False
) -> dict:
    """``PATCH`` ops on a server-side subscription (``what``: "recording", "streaming-out"):
    ``/media/<kind>/status``, ``/media/<kind>/from`` and, with ``video_parameters``,
    ``/media/video/parameters/<name>``."""
    updated = copy.deepcopy(spec)
    for index, operation in enumerate(_operations(body)):
        where, path, value = f"[{index}]", operation["path"], operation["value"]
        if operation["op"] != "replace":
            raise InvalidRequest(f'{where}.op: must be "replace"')
        match = STATUS_PATH.match(path) or FROM_PATH.match(path) or (video_parameters and PARAMETER_PATH.match(path))
        if not match:
            supported = "/media/audio|video/status or /from" + (", /media/video/parameters/…" * video_parameters)
            raise InvalidRequest(f"{where}.path: unsupported {path!r} (use {supported})")
        kind = match[1]
        if not updated["media"].get(kind):
            raise InvalidRequest(f"{where}.path: the {what} has no {kind}")
        if path.endswith("/status"):
            if value not in ("active", "inactive"):
                raise InvalidRequest(f'{where}.value: must be "active" or "inactive"')
            updated["media"][kind]["status"] = value
        elif path.endswith("/from"):
            source = streams.get(stream_id_of(value, streams))
            if source is None or not any(t["type"] == kind for t in source.media.get("tracks", [])):
                raise InvalidRequest(f"{where}.value: no {kind} in stream {value!r} of this room")
            updated["media"][kind]["from"] = source.id
        else:
            parameters = {**(updated["media"]["video"].get("parameters") or {}), match[2]: value}
            parsed = VideoParameters(data=parameters)
            if not parsed.is_valid():
                raise InvalidRequest(f"{where}.value: {describe_validation_error(parsed.errors)}")
            updated["media"]["video"]["parameters"] = dict(parsed.validated_data)
    return updated


def recording_apply_patch(spec: dict, body: object, *, streams: dict[str, Publication]) -> dict:
    return subscription_apply_patch(spec, body, streams=streams, what="recording")


def streaming_out_apply_patch(spec: dict, body: object, *, streams: dict[str, Publication]) -> dict:
    return subscription_apply_patch(spec, body, streams=streams, what="streaming-out", video_parameters=True)


def _source_format(streams: dict[str, Publication], out: dict, kind: str) -> dict | None:
    source = streams.get(out["from"])
    track = next((t for t in (source.media.get("tracks", []) if source else []) if t["type"] == kind), None)
    return track.get("format") if track else None


def subscription_abstract(job: MediaJob, *, streams: dict[str, Publication]) -> dict:
    """OWT's subscription abstract (owt-compat §8.2), with the job's state."""
    media = {}
    for kind in ("audio", "video"):
        out = job.spec["media"].get(kind)
        if not out:
            media[kind] = False
            continue
        entry = {"from": out["from"], "status": out.get("status", "active")}
        entry["format"] = out.get("format") or _source_format(streams, out, kind) or {}
        if kind == "video" and out.get("parameters"):
            entry["parameters"] = out["parameters"]
        media[kind] = entry
    abstract = {"id": job.id, "media": media, "state": job.state, "progress": job.progress}
    if job.reason:
        abstract["reason"] = job.reason
    return abstract


def recording_abstract(job: MediaJob, *, streams: dict[str, Publication]) -> dict:
    abstract = subscription_abstract(job, streams=streams)
    abstract["storage"] = job.result.get("storage", {"host": "", "file": ""})
    if job.result.get("files"):
        abstract["download"] = f"/v1/rooms/{job.domain_id}/recordings/{job.id}/file"
    return abstract


def streaming_out_abstract(job: MediaJob, *, streams: dict[str, Publication], base_url: str = "") -> dict:
    """The abstract plus ``protocol``, ``url`` (a local playlist's on this portal) and ``parameters``."""
    abstract = subscription_abstract(job, streams=streams)
    protocol = job.spec["protocol"]
    url = job.spec.get("url") or f"{base_url}{local_playlist_path(job.domain_id, job.id, protocol)}"
    abstract.update(protocol=protocol, url=url, parameters=job.spec.get("parameters") or {})
    return abstract


def analytics_abstract(job: MediaJob) -> dict:
    """Spec 5.8's form ``{id, analytics: {algorithm}, media: {format, from}}`` (the video's: OWT
    analyses video only; owt-compat §8.2 has the abstract's ``media.video`` and an agent string
    instead), with the job's state; its id is also the id of the stream it publishes."""
    video = job.spec["media"]["video"]
    abstract = {
        "id": job.id,
        "analytics": {"algorithm": job.spec["algorithm"]},
        "media": {"format": video["format"], "from": video["from"]},
        "state": job.state,
        "progress": job.progress,
    }
    if job.reason:
        abstract["reason"] = job.reason
    return abstract


class RecordingAbstractSerializer(serializers.Serializer):
    """The rendered form (documentation of :func:`recording_abstract`)."""

    id = serializers.CharField()
    media = serializers.DictField(help_text="{audio: {from, format, status} | false, video: {…} | false}")
    storage = serializers.DictField(help_text="{host, file}: where the worker writes the file")
    state = serializers.ChoiceField(choices=MediaJob.State.choices)
    progress = serializers.DictField(help_text="{duration, bytes, frames: {audio, video}, last_error?}")
    reason = serializers.CharField(required=False, help_text="why it failed or ended")
    download = serializers.CharField(required=False, help_text="path of the file download (MAuth)")


class StreamingOutAbstractSerializer(serializers.Serializer):
    """The rendered form (documentation of :func:`streaming_out_abstract`)."""

    id = serializers.CharField()
    media = serializers.DictField(help_text="{audio: {from, format, status} | false, video: {…, parameters} | false}")
    protocol = serializers.ChoiceField(choices=PROTOCOLS)
    url = serializers.CharField(help_text="where it streams; a local HLS/DASH playlist's URL on this portal")
    parameters = serializers.DictField(
        help_text="hls: {method, hlsTime, hlsListSize}; dash: {method, dashSegDuration, dashWindowSize}"
    )
    state = serializers.ChoiceField(choices=MediaJob.State.choices)
    progress = serializers.DictField(help_text="{duration, frames, dropped, reconnects, last_error?}")
    reason = serializers.CharField(required=False, help_text="why it failed or ended")


class AnalyticsAbstractSerializer(serializers.Serializer):
    """The rendered form (documentation of :func:`analytics_abstract`)."""

    id = serializers.CharField(help_text="the analytics' id, also the id of the stream it publishes")
    analytics = serializers.DictField(help_text="{algorithm}: the algorithm's id")
    media = serializers.DictField(help_text="{format: {codec} of the published stream, from: the analysed stream}")
    state = serializers.ChoiceField(choices=MediaJob.State.choices)
    progress = serializers.DictField(
        help_text="{duration, frames: {in, analysed, out, dropped}, events, last_event, recent_events, analysis_ms, cpu}"
    )
    reason = serializers.CharField(required=False, help_text="why it failed or ended")


SIP_OUTPUT_PATH = re.compile(r"^/output(/media/audio/from)$")


def sip_call_apply_patch(spec: dict, body: object, *, streams: dict[str, Publication]) -> dict:
    """``PATCH`` of a SIP call (spec 5.7): the subscription's paths prefixed with ``/output``;
    what the callee hears, ``/output/media/audio/from``, is the one an audio-only call has."""
    operations = _operations(body)
    for index, operation in enumerate(operations):
        if not SIP_OUTPUT_PATH.match(operation["path"]):
            raise InvalidRequest(f"[{index}].path: unsupported {operation['path']!r} (use /output/media/audio/from)")
    patchable = copy.deepcopy(spec)
    patchable["media"]["audio"] = patchable["media"]["audio"] or {"from": "", "status": "active"}
    unprefixed = [{**operation, "path": operation["path"].removeprefix("/output")} for operation in operations]
    return subscription_apply_patch(patchable, unprefixed, streams=streams, what="sip call")


def sip_call_abstract(job: MediaJob, *, input_stream: dict | None) -> dict:
    """owt-compat §8.6's ``{id, peer, type, input, output}`` (``input``: the callee's stream
    once the call is connected, else null) plus the job's ``state``, ``call`` (its SIP state,
    codec, DTMF received), ``progress`` and ``reason``."""
    audio = job.spec["media"]["audio"]
    abstract = {
        "id": job.id,
        "peer": job.spec["peerURI"],
        "type": job.spec["type"],
        "input": input_stream,
        "output": {
            "id": job.result.get("subscription", job.id),
            "media": {"audio": {"from": audio["from"]} if audio else False, "video": False},
        },
        "state": job.state,
        "call": job.progress.get("call", {"state": "pending"}),
        "progress": {key: value for key, value in job.progress.items() if key != "call"},
    }
    if job.reason:
        abstract["reason"] = job.reason
    return abstract


class SipCallAbstractSerializer(serializers.Serializer):
    """The rendered form (documentation of :func:`sip_call_abstract`)."""

    id = serializers.CharField(help_text="the call's id; also its input stream's")
    peer = serializers.CharField(help_text="the peer's SIP URI")
    type = serializers.ChoiceField(choices=("dial-in", "dial-out"))
    input = serializers.DictField(
        allow_null=True, help_text="the callee's audio as a stream of the room, once connected"
    )
    output = serializers.DictField(
        help_text="{id, media: {audio: {from} | false, video: false}}: what the callee hears"
    )
    state = serializers.ChoiceField(choices=MediaJob.State.choices)
    call = serializers.DictField(
        help_text="{state: calling|ringing|connected|hungup|busy|no-answer|…, code, codec, dtmf}"
    )
    progress = serializers.DictField(help_text="{duration, audio: {received, dropped, underruns}}")
    reason = serializers.CharField(required=False, help_text="why the call failed (busy, no answer …)")
