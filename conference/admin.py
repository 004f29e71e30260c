"""Admin pages for services and rooms (engine domains and tokens are in streamengine.admin)."""

import json

from django.contrib import admin
from django.utils.html import format_html

from conference.models import Room, Service


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "is_super", "created_at")
    search_fields = ("id", "name")
    # The key is stored encrypted; it is set through the API or `manage.py owt_bootstrap`.
    readonly_fields = ("id", "key_encrypted", "is_super", "created_at")


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "service", "created_at", "updated_at")
    list_filter = ("service",)
    search_fields = ("id", "name", "service__name")
    readonly_fields = ("id", "service", "config_pretty", "created_at", "updated_at")
    # Edits go through the API so validation and the engine's copy stay in step.
    exclude = ("config",)

    @admin.display(description="config")
    def config_pretty(self, room: Room) -> str:
        return format_html("<pre>{}</pre>", json.dumps(room.config, indent=2))
