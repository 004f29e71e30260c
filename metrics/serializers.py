"""Wire formats of the dashboard routes (the SDK routes answer small literal dicts in views)."""

from __future__ import annotations

from rest_framework import serializers

from metrics.models import App, Conference, Connection, GenericEvent, Issue, Organization, Participant, Session, Track


class OrganizationOut(serializers.ModelSerializer):
    class Meta:
        model = Organization
        fields = ["id", "name", "created_at"]


class OrganizationIn(serializers.Serializer):
    name = serializers.CharField(max_length=64)


class AppOut(serializers.ModelSerializer):
    # The caller is a member of the app's organization (selectors guarantee it), so the key is theirs.
    class Meta:
        model = App
        fields = ["id", "organization", "name", "api_key", "domain", "interval", "recording", "created_at"]


class AppIn(serializers.Serializer):
    organization = serializers.UUIDField()
    name = serializers.CharField(max_length=64)
    domain = serializers.CharField(max_length=256, required=False, allow_blank=True, default="")
    interval = serializers.IntegerField(min_value=1000, max_value=600000, required=False, default=10000)
    recording = serializers.BooleanField(required=False, default=True)


class AppUpdateIn(serializers.Serializer):
    name = serializers.CharField(max_length=64, required=False)
    domain = serializers.CharField(max_length=256, required=False, allow_blank=True)
    interval = serializers.IntegerField(min_value=1000, max_value=600000, required=False)
    recording = serializers.BooleanField(required=False)


class ConferenceOut(serializers.ModelSerializer):
    participants_count = serializers.IntegerField(read_only=True)
    has_errors = serializers.BooleanField(read_only=True)
    has_warnings = serializers.BooleanField(read_only=True)

    class Meta:
        model = Conference
        fields = [
            "id", "app", "conference_id", "conference_name", "start_time", "call_start", "end_time", "ongoing",
            "duration", "created_at", "participants_count", "has_errors", "has_warnings",
        ]  # fmt: skip


class ParticipantOut(serializers.ModelSerializer):
    class Meta:
        model = Participant
        fields = ["id", "app", "participant_id", "participant_name", "is_sfu", "created_at"]


class IssueOut(serializers.ModelSerializer):
    type = serializers.CharField(source="get_type_display")
    title = serializers.CharField(read_only=True)
    explanation = serializers.CharField(read_only=True)

    class Meta:
        model = Issue
        fields = [
            "id",
            "conference",
            "session",
            "participant",
            "connection",
            "track",
            "type",
            "code",
            "title",
            "explanation",
            "data",
            "created_at",
        ]


class ConferenceDetailOut(serializers.ModelSerializer):
    participants = ParticipantOut(many=True, read_only=True)
    issues = IssueOut(many=True, read_only=True)

    class Meta:
        model = Conference
        fields = [
            "id", "app", "conference_id", "conference_name", "start_time", "call_start", "end_time", "ongoing",
            "duration", "created_at", "participants", "issues",
        ]  # fmt: skip


class SessionOut(serializers.ModelSerializer):
    issues = serializers.PrimaryKeyRelatedField(many=True, read_only=True)

    class Meta:
        model = Session
        fields = [
            "id", "app", "conference", "participant", "platform", "devices", "metadata", "geo_ip", "app_version",
            "webrtc_sdk", "call_start", "end_time", "duration", "created_at", "issues",
        ]  # fmt: skip


class ConnectionOut(serializers.ModelSerializer):
    type = serializers.CharField(source="get_type_display")

    class Meta:
        model = Connection
        fields = [
            "id", "conference", "session", "participant", "peer", "type", "state", "connection_info", "start_time",
            "end_time", "duration", "created_at",
        ]  # fmt: skip


class TrackOut(serializers.ModelSerializer):
    kind = serializers.CharField(source="get_kind_display")
    direction = serializers.CharField(source="get_direction_display")

    class Meta:
        model = Track
        fields = ["id", "session", "connection", "kind", "direction", "track_id", "label", "track_info", "created_at"]


class EventOut(serializers.ModelSerializer):
    category = serializers.CharField(source="get_category_display")

    class Meta:
        model = GenericEvent
        fields = [
            "id",
            "conference",
            "session",
            "participant",
            "peer",
            "connection",
            "track",
            "category",
            "type",
            "data",
            "created_at",
        ]
