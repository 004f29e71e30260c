"""Egress tasks, the files they wrote and the webhook deliveries, as the admin browses them."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from egress import services
from egress.models import EgressFile, EgressTask, WebhookDelivery, WebhookEndpoint
from owt.admin import ReadOnlyAdmin


class FileInline(admin.TabularInline):
    model = EgressFile
    fields = ("name", "kind", "user", "size", "location")
    readonly_fields = fields
    extra = 0
    can_delete = False


class DeliveryInline(admin.TabularInline):
    model = WebhookDelivery
    fields = ("status", "state", "attempts", "response_code", "last_error", "delivered_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(EgressTask)
class EgressTaskAdmin(ReadOnlyAdmin):
    list_display = ("id", "service", "layout", "channel", "status", "message", "created_at", "ended_at", "media_job")
    list_filter = ("status", "layout", "service")
    search_fields = ("id", "request_id", "channel", "room_id")
    readonly_fields = [f.name for f in EgressTask._meta.fields]
    inlines = [FileInline, DeliveryInline]
    actions = ["stop"]

    @admin.display(description="media job")
    def media_job(self, task: EgressTask) -> str:
        if task.job_id is None:
            return ""
        url = reverse("admin:streamengine_mediajob_change", args=[task.job_id])
        return format_html('<a href="{}">{}</a>', url, task.job_id)

    @admin.action(description="Stop the selected tasks")
    def stop(self, request: HttpRequest, queryset: QuerySet[EgressTask]) -> None:
        for task in queryset:
            services.task_stop(task=task)
        self.message_user(request, "Stop requested; running tasks end within a heartbeat.")


@admin.register(EgressFile)
class EgressFileAdmin(ReadOnlyAdmin):
    list_display = ("name", "task", "kind", "user", "size", "location", "created_at")
    list_filter = ("kind",)
    search_fields = ("name", "task__id", "user")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("task", "status", "url", "state", "attempts", "response_code", "last_error", "created_at")
    list_filter = ("state", "status")
    search_fields = ("task__id", "url")


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("service", "url", "active")
