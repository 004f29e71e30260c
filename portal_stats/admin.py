"""Admin: manage clients (and rotate their keys), streams and qualities; browse rollups and raw
reports read-only."""

from collections.abc import Callable
from datetime import UTC, datetime

from django.contrib import admin, messages
from django.http import HttpRequest

from owt.admin import ReadOnlyAdmin
from portal_stats import services
from portal_stats.models import ALL, RESOLUTIONS, Client, ClientKey, StatsBucket, Stream, StreamQuality, ViewerReport


class StreamInline(admin.TabularInline):
    model = Stream
    extra = 0
    fields = ("cdn_stream", "created_at")
    readonly_fields = ("created_at",)
    show_change_link = True


class QualityInline(admin.TabularInline):
    model = StreamQuality
    extra = 0
    fields = ("bitrate", "created_at")
    readonly_fields = ("created_at",)


class ClientKeyInline(admin.TabularInline):
    """Keys are shown by hint only (the plain key is never stored); deleting one revokes it."""

    model = ClientKey
    extra = 0
    fields = ("kind", "hint", "created_at")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # keys are issued by the actions, which show the plain key once


def _issue_and_show(
    modeladmin: admin.ModelAdmin, request: HttpRequest, client: Client, kind: str, rotate: bool
) -> None:
    key = services.client_key_issue(client=client, kind=kind, revoke_others=rotate)
    modeladmin.message_user(
        request, f"New {kind} key of {client}: {key} (copy it now: it is not shown again)", messages.WARNING
    )


def _key_action(kind: str, *, rotate: bool) -> Callable[..., None]:
    verb = "Rotate" if rotate else "Add"
    effect = "revokes the old ones" if rotate else "old ones stay valid"

    @admin.action(description=f"{verb} {kind} key ({effect})")
    def action(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset) -> None:
        for client in queryset:
            _issue_and_show(modeladmin, request, client, kind, rotate)

    action.__name__ = f"{verb.lower()}_{kind}_key"
    return action


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("id", "uuid", "name", "created_at")
    search_fields = ("uuid", "name")
    inlines = [ClientKeyInline, StreamInline]
    actions = [
        _key_action(kind, rotate=rotate) for kind in (ClientKey.WRITE, ClientKey.READ) for rotate in (True, False)
    ]

    def save_model(self, request: HttpRequest, obj: Client, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:  # a new client gets its first keys, as through the tracker-api
            for kind in (ClientKey.WRITE, ClientKey.READ):
                _issue_and_show(self, request, obj, kind, rotate=False)


@admin.register(Stream)
class StreamAdmin(admin.ModelAdmin):
    list_display = ("id", "client", "cdn_stream", "created_at")
    list_select_related = ("client",)
    list_filter = ("client",)
    search_fields = ("cdn_stream", "client__uuid", "client__name")
    raw_id_fields = ("client",)
    inlines = [QualityInline]


@admin.register(StreamQuality)
class StreamQualityAdmin(admin.ModelAdmin):
    list_display = ("id", "stream", "bitrate", "created_at")
    list_select_related = ("stream",)
    search_fields = ("stream__cdn_stream",)
    raw_id_fields = ("stream",)


def _utc(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _id_or_all(value: int) -> object:
    return "all" if value == ALL else value


class ReportAdmin(ReadOnlyAdmin):
    """Rows written by the ingestion and the aggregator: view them, never edit or delete them."""

    show_full_result_count = False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(StatsBucket)
class StatsBucketAdmin(ReportAdmin):
    """Rollups: ``stream``/``quality`` "all" is the client's (or stream's) total over them."""

    list_display = (
        "time",
        "resolution",
        "client_id",
        "stream",
        "quality",
        "viewers",
        "webrtc_viewers",
        "down_cdn",
        "down_swarm",
        "up_swarm",
    )
    list_filter = ("step",)
    search_fields = ("=client_id", "=stream_id")
    ordering = ("-ts",)

    @admin.display(description="bucket start", ordering="ts")
    def time(self, bucket: StatsBucket) -> str:
        return _utc(bucket.ts)

    @admin.display(description="covers", ordering="step")
    def resolution(self, bucket: StatsBucket) -> str:
        return f"a {RESOLUTIONS.get(bucket.step, f'{bucket.step} s')}"

    @admin.display(description="stream id", ordering="stream_id")
    def stream(self, bucket: StatsBucket) -> object:
        return _id_or_all(bucket.stream_id)

    @admin.display(description="quality id", ordering="quality_id")
    def quality(self, bucket: StatsBucket) -> object:
        return _id_or_all(bucket.quality_id)


@admin.register(ViewerReport)
class ViewerReportAdmin(ReportAdmin):
    """Raw player reports (byte deltas per viewer session), kept for the raw retention."""

    list_display = (
        "time",
        "client_id",
        "stream_id",
        "quality",
        "session",
        "browser",
        "webrtc",
        "down_cdn",
        "down_swarm",
        "up_swarm",
        "rebuffer_ms",
        "startup_ms",
    )
    list_filter = ("webrtc", "browser")
    search_fields = ("=session", "=client_id", "=stream_id")
    ordering = ("-ts",)

    @admin.display(description="received", ordering="ts")
    def time(self, report: ViewerReport) -> str:
        return _utc(report.ts)

    @admin.display(description="quality id", ordering="quality_id")
    def quality(self, report: ViewerReport) -> object:
        return _id_or_all(report.quality_id)
