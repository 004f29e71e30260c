"""Payloads in the exact shape @peermetrics/sdk 2.7 sends, for the tests and the benchmark.

``stats_payload`` builds what webrtc-stats 5.7 produces for a call with one audio and one
video track each way: full browser reports plus ``bitrate``/``packetRate``, the selected
candidate pair with its candidates, and the ``remote`` reports. Counters are cumulative,
as in a browser, so that consecutive samples exercise the per-interval maths.
"""

from __future__ import annotations

from typing import Any

PLATFORM = {
    "ua": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "browser": {"name": "Chrome", "version": "126.0.0.0", "major": "126"},
    "engine": {"name": "Blink", "version": "126.0.0.0"},
    "os": {"name": "Linux", "version": "x86_64"},
    "device": {},
    "cpu": {"architecture": "amd64"},
}


def session_body(token: str, **extra: Any) -> dict:
    return {
        "token": token,
        "platform": PLATFORM,
        "constraints": {"deviceId": True, "echoCancellation": True, "width": True},
        "devices": [{"deviceId": "abc", "kind": "audioinput", "label": "Built-in Mic", "groupId": "g1"}],
        "appVersion": "1.4.2",
        "meta": {"plan": "pro", "beta": True},
        "webrtcSdk": "",
        **extra,
    }


def gum_track(kind: str, track_id: str) -> dict:
    return {
        "id": track_id,
        "kind": kind,
        "label": f"fake {kind}",
        "enabled": True,
        "muted": False,
        "readyState": "live",
        "contentHint": "",
        "constructorName": "MediaStreamTrack",
        "capabilities": {},
        "constraints": {},
        "settings": {"deviceId": "default"},
        "_track": {},
    }


def stats_payload(
    sample: int,
    *,
    interval_s: float = 10.0,
    loss_percent: float = 0.0,
    candidate_type: str = "srflx",
    protocol: str = "udp",
    rtt_s: float = 0.04,
) -> dict:
    """The ``data`` of the ``sample``-th POST /stats (0-based) of one connection."""
    n = sample + 1
    audio_packets = int(50 * interval_s * n)
    video_packets = int(90 * interval_s * n)
    audio_lost = int(audio_packets * loss_percent / 100)
    video_lost = int(video_packets * loss_percent / 100)
    derived = {} if sample == 0 else {"bitrate": 32000, "packetRate": 50}
    video_derived = {} if sample == 0 else {"bitrate": 800000, "packetRate": 90}
    return {
        "audio": {
            "inbound": [
                {
                    "id": "IT01A2110", "type": "inbound-rtp", "kind": "audio", "ssrc": 2110, "transportId": "T01",
                    "packetsReceived": audio_packets - audio_lost, "packetsLost": audio_lost, "jitter": 0.004,
                    "bytesReceived": 4000 * interval_s * n, "headerBytesReceived": 600 * interval_s * n,
                    "jitterBufferDelay": 0.05 * 48 * 1000 * interval_s * n, "jitterBufferEmittedCount": 48000 * interval_s * n,
                    "totalSamplesReceived": 48000 * interval_s * n, "concealedSamples": 0,
                    "mimeType": "audio/opus", "clockRate": 48000, "payloadType": 111, "track": {}, **derived,
                }
            ],
            "outbound": [
                {
                    "id": "OT01A3344", "type": "outbound-rtp", "kind": "audio", "ssrc": 3344, "mediaSourceId": "SA1",
                    "packetsSent": int(50 * interval_s * n), "bytesSent": 4000 * interval_s * n, "headerBytesSent": 600 * interval_s * n,
                    "mimeType": "audio/opus", "clockRate": 48000, "payloadType": 111,
                    "track": {"type": "media-source", "kind": "audio", "trackIdentifier": "local-audio-1", "audioLevel": 0.02},
                    **derived,
                }
            ],
        },
        "video": {
            "inbound": [
                {
                    "id": "IT01V5566", "type": "inbound-rtp", "kind": "video", "ssrc": 5566, "transportId": "T01",
                    "packetsReceived": video_packets - video_lost, "packetsLost": video_lost, "jitter": 0.012,
                    "bytesReceived": 100000 * interval_s * n, "framesReceived": int(30 * interval_s * n),
                    "framesDecoded": int(30 * interval_s * n), "keyFramesDecoded": n, "frameWidth": 1280, "frameHeight": 720,
                    "framesPerSecond": 30, "totalDecodeTime": 0.002 * 30 * interval_s * n,
                    "mimeType": "video/VP8", "clockRate": 90000, "payloadType": 96, "track": {}, **video_derived,
                }
            ],
            "outbound": [
                {
                    "id": "OT01V7788", "type": "outbound-rtp", "kind": "video", "ssrc": 7788, "mediaSourceId": "SV2",
                    "packetsSent": int(90 * interval_s * n), "bytesSent": 100000 * interval_s * n, "framesSent": int(30 * interval_s * n),
                    "framesEncoded": int(30 * interval_s * n), "frameWidth": 1280, "frameHeight": 720, "totalEncodeTime": 0.003 * 30 * interval_s * n,
                    "qualityLimitationReason": "none", "mimeType": "video/VP8", "clockRate": 90000, "payloadType": 96,
                    "track": {"type": "media-source", "kind": "video", "trackIdentifier": "local-video-1", "width": 1280, "height": 720, "framesPerSecond": 30},
                    **video_derived,
                }
            ],
        },
        "connection": {
            "id": "CPabc", "type": "candidate-pair", "state": "succeeded", "nominated": True, "writable": True,
            "bytesSent": 104000 * interval_s * n, "bytesReceived": 104000 * interval_s * n,
            "currentRoundTripTime": rtt_s, "totalRoundTripTime": rtt_s * 10 * n, "responsesReceived": 10 * n,
            "availableOutgoingBitrate": 2500000,
            "local": {"id": "ILa", "type": "local-candidate", "candidateType": candidate_type, "protocol": protocol, "address": "203.0.113.5", "port": 50000},
            "remote": {"id": "IRb", "type": "remote-candidate", "candidateType": "host", "protocol": protocol, "address": "198.51.100.7", "port": 50001},
        },
        "remote": {
            "audio": {
                "inbound": [{"id": "RIA", "type": "remote-inbound-rtp", "kind": "audio", "localId": "OT01A3344", "roundTripTime": rtt_s, "fractionLost": 0}],
                "outbound": [{"id": "ROA", "type": "remote-outbound-rtp", "kind": "audio", "localId": "IT01A2110", "packetsSent": audio_packets}],
            },
            "video": {
                "inbound": [{"id": "RIV", "type": "remote-inbound-rtp", "kind": "video", "localId": "OT01V7788", "roundTripTime": rtt_s, "fractionLost": 0}],
                "outbound": [],
            },
        },
    }  # fmt: skip
