"""Admin: manage clients, streams and qualities; browse rollups read-only."""

from django.contrib import admin

from portal_stats.models import Client, StatsBucket, Stream, StreamQuality


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


@admin.register(Client)
class ClientAdmin(admin.ModelAdmin):
    list_display = ("id", "uuid", "name", "created_at")
    search_fields = ("uuid", "name")
    inlines = [StreamInline]


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


@admin.register(StatsBucket)
class StatsBucketAdmin(admin.ModelAdmin):
    """Rollups are written only by the aggregator: view them, never edit them."""

    list_display = (
        "ts",
        "step",
        "client_id",
        "stream_id",
        "quality_id",
        "viewers",
        "webrtc_viewers",
        "down_cdn",
        "down_swarm",
        "up_swarm",
    )
    list_filter = ("step",)
    search_fields = ("=client_id", "=stream_id")
    ordering = ("-ts",)
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
