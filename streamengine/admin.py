from django.contrib import admin

from streamengine.models import Domain, Token


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "created_at", "updated_at")
    search_fields = ("id", "owner")
    readonly_fields = ("created_at", "updated_at")


@admin.register(Token)
class TokenAdmin(admin.ModelAdmin):
    list_display = ("id", "domain", "user", "role", "host", "created_at", "expires_at")
    list_filter = ("role", "secure")
    search_fields = ("id", "user", "domain__id")
    readonly_fields = ("created_at",)
