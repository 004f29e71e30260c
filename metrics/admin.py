"""Admin: every metrics model browsable, filterable and searchable; raw JSON read-only."""

from django.contrib import admin
from django.http import HttpRequest

from metrics.models import (
    App,
    Conference,
    Connection,
    DashboardToken,
    GenericEvent,
    Issue,
    Organization,
    Participant,
    Session,
    Summary,
    Track,
)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "is_active", "created_at"]
    list_filter = ["is_active"]
    search_fields = ["name", "members__username"]
    filter_horizontal = ["members"]


@admin.register(App)
class AppAdmin(admin.ModelAdmin):
    list_display = ["name", "organization", "domain", "recording", "is_active", "created_at"]
    list_filter = ["recording", "is_active", "organization"]
    search_fields = ["name", "domain", "organization__name"]
    readonly_fields = ["api_key", "key_generation"]


@admin.register(DashboardToken)
class DashboardTokenAdmin(admin.ModelAdmin):
    """Revoke (delete) tokens here; make them with ``manage.py metrics_token USERNAME`` (the key is shown once)."""

    list_display = ["user", "created_at"]
    search_fields = ["user__username"]
    readonly_fields = ["digest", "user", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Conference)
class ConferenceAdmin(admin.ModelAdmin):
    list_display = [
        "conference_id",
        "conference_name",
        "app",
        "ongoing",
        "duration",
        "start_time",
        "end_time",
        "created_at",
    ]
    list_filter = ["ongoing", "app", "created_at"]
    search_fields = ["conference_id", "conference_name"]
    raw_id_fields = ["participants"]
    date_hierarchy = "created_at"


@admin.register(Participant)
class ParticipantAdmin(admin.ModelAdmin):
    list_display = ["participant_id", "participant_name", "app", "is_sfu", "created_at"]
    list_filter = ["is_sfu", "app"]
    search_fields = ["participant_id", "participant_name"]


@admin.register(Session)
class SessionAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "participant",
        "conference",
        "webrtc_sdk",
        "app_version",
        "duration",
        "created_at",
        "end_time",
    ]
    list_filter = ["app", "webrtc_sdk", "created_at"]
    search_fields = ["id", "participant__participant_id", "conference__conference_id"]
    raw_id_fields = ["conference", "participant"]


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ["id", "participant", "peer", "type", "state", "duration", "start_time", "end_time"]
    list_filter = ["type", "state", "app"]
    search_fields = ["id", "participant__participant_id", "peer__participant_id", "conference__conference_id"]
    raw_id_fields = ["conference", "session", "participant", "peer"]


@admin.register(Track)
class TrackAdmin(admin.ModelAdmin):
    list_display = ["track_id", "kind", "direction", "label", "session", "connection", "created_at"]
    list_filter = ["kind", "direction"]
    search_fields = ["track_id", "label"]
    raw_id_fields = ["session", "connection"]


@admin.register(GenericEvent)
class GenericEventAdmin(admin.ModelAdmin):
    list_display = ["type", "category", "participant", "conference", "created_at"]
    list_filter = ["category", "type", "app"]
    search_fields = ["type", "conference__conference_id", "participant__participant_id"]
    raw_id_fields = ["conference", "participant", "session", "peer", "connection", "track"]
    date_hierarchy = "created_at"


@admin.register(Issue)
class IssueAdmin(admin.ModelAdmin):
    list_display = ["code", "type", "participant", "conference", "created_at"]
    list_filter = ["type", "code", "app"]
    search_fields = ["code", "conference__conference_id", "participant__participant_id"]
    raw_id_fields = ["conference", "session", "participant", "connection", "track"]


@admin.register(Summary)
class SummaryAdmin(admin.ModelAdmin):
    list_display = ["conference", "status", "version", "stats_until", "updated_at"]
    list_filter = ["status"]
    search_fields = ["conference__conference_id"]
    raw_id_fields = ["conference"]
