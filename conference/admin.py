"""Admin pages for services and rooms (engine domains and tokens are in streamengine.admin)."""

from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from conference import roomconfig, services
from conference.exceptions import InvalidRequest
from conference.models import Room, Service


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "is_super", "created_at")
    search_fields = ("id", "name")
    # The key is stored encrypted; it is set through the API or `manage.py owt_bootstrap`.
    readonly_fields = ("id", "key_encrypted", "is_super", "created_at")


# The room settings the form edits as fields; everything else is edited as JSON.
COMMON_SETTINGS = ("participantLimit", "inputLimit", "selectActiveAudio", "enableBandwidthAdaptation")


class RoomForm(forms.ModelForm):
    """The common settings as fields, the rest as JSON; saved as a PUT of the whole room would be.

    Validation is the management API's own (``roomconfig.update_config``), so the admin cannot
    store a room the API would refuse, and the engine's copy is updated the same way.
    """

    participantLimit = forms.IntegerField(min_value=-1, help_text="-1: no limit")
    inputLimit = forms.IntegerField(min_value=-1, help_text="streams the room takes at most; -1: no limit")
    selectActiveAudio = forms.BooleanField(required=False, help_text="forward only the loudest speakers' audio")
    enableBandwidthAdaptation = forms.BooleanField(required=False)
    other_settings = forms.JSONField(
        label="Other settings",
        widget=forms.Textarea(
            attrs={"rows": 24, "cols": 100, "style": "font-family: monospace", "spellcheck": "false"}
        ),
        help_text=(
            "roles, views, mediaIn, mediaOut, transcoding, notifying, sip… as in the management API's Room "
            "(docs/management-api.md). A SIP password shows encrypted; type a new one in plain text to change it."
        ),
    )

    class Meta:
        model = Room
        fields = ("name",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.instance.config or {}
        for name in COMMON_SETTINGS:
            self.initial.setdefault(name, config.get(name))
        self.initial.setdefault("other_settings", {k: v for k, v in config.items() if k not in COMMON_SETTINGS})
        self.replacement: list[dict] = []

    def clean(self) -> dict:
        cleaned = super().clean()
        other = cleaned.get("other_settings")
        if self.errors:
            return cleaned
        if not isinstance(other, dict):
            raise ValidationError({"other_settings": "a JSON object"})
        document = roomconfig.decrypt_sip(
            {**other, **{name: cleaned[name] for name in COMMON_SETTINGS}, "name": cleaned["name"]}
        )
        # One JSON Patch that replaces the whole room: keys removed from the JSON go too.
        self.replacement = [{"op": "replace", "path": "", "value": document}]
        current = {"name": self.instance.name, **self.instance.config}
        try:
            roomconfig.update_config(current=current, body=self.replacement, merge="deep")
        except InvalidRequest as exc:
            raise ValidationError(exc.message) from exc
        return cleaned


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    form = RoomForm
    list_display = ("id", "name", "service", "participant_limit", "created_at", "updated_at")
    list_filter = ("service",)
    search_fields = ("id", "name", "service__name")
    readonly_fields = ("id", "service", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("id", "service", "name", *COMMON_SETTINGS)}),
        ("Other settings (JSON)", {"fields": ("other_settings",)}),
        ("Times", {"fields": ("created_at", "updated_at")}),
    )

    @admin.display(description="participant limit")
    def participant_limit(self, room: Room) -> object:
        limit = room.config.get("participantLimit", -1)
        return "no limit" if limit == -1 else limit

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a room belongs to a service: made through its API (or the demo page)

    def save_model(self, request: HttpRequest, obj: Room, form: RoomForm, change: bool) -> None:
        services.room_update(room=obj, body=form.replacement, merge="deep")
