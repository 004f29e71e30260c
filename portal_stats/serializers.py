"""portal_stats wire formats shared by several endpoints (and the OpenAPI schema)."""

from rest_framework import serializers

from portal_stats.models import BROWSERS


class IdOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField(help_text="The portal's id of the client / stream / quality.")


class ViewerReportSerializer(serializers.Serializer):
    """One viewer report: what a player downloaded and uploaded since its previous report.

    Ingestion validates this shape by hand (it is the hot path); this serializer documents it.
    """

    session = serializers.RegexField(
        r"^[A-Za-z0-9._:\-]{1,64}$", help_text="Viewer session id, stable for the whole playback session."
    )
    stream = serializers.IntegerField(required=False, help_text="Stream id (or give client + cdn_stream).")
    client = serializers.CharField(required=False, help_text="Client uuid or id; required with cdn_stream.")
    cdn_stream = serializers.URLField(required=False, help_text="CDN manifest URL; the stream is registered if new.")
    quality = serializers.IntegerField(required=False, help_text="Stream quality id (or give bitrate).")
    bitrate = serializers.IntegerField(
        required=False, help_text="Rendition bitrate in kbps; the quality is registered if new."
    )
    browser = serializers.CharField(
        required=False, help_text=f"Browser name ({', '.join(BROWSERS)}) or the full user agent. Default other."
    )
    webrtc = serializers.BooleanField(required=False, help_text="The player can join the P2P swarm. Default false.")
    down_cdn = serializers.IntegerField(
        min_value=0, required=False, help_text="Bytes from the CDN since the last report."
    )
    down_swarm = serializers.IntegerField(
        min_value=0, required=False, help_text="Bytes from peers since the last report."
    )
    up_swarm = serializers.IntegerField(
        min_value=0, required=False, help_text="Bytes sent to peers since the last report."
    )
    ts = serializers.IntegerField(
        required=False, help_text="Unix seconds of the report; default: received time; clamped to the last 2 minutes."
    )
    rebuffer_ms = serializers.IntegerField(min_value=0, required=False, help_text="QoE: stall time in the interval.")
    startup_ms = serializers.IntegerField(min_value=0, required=False, help_text="QoE: startup delay (first report).")


class ViewerReportBatchSerializer(serializers.Serializer):
    batch = serializers.RegexField(
        r"^[A-Za-z0-9._:\-]{1,64}$",
        required=False,
        help_text="Idempotency key: a batch re-posted with the same key (a retry) is stored once.",
    )
    reports = ViewerReportSerializer(many=True, help_text="Up to 5000 reports; a bare JSON list is accepted too.")


class ReportsAcceptedSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicate = serializers.BooleanField(required=False, help_text="Present (true) when the batch key was seen.")
