from django.contrib import admin

from owt.admin import ReadOnlyAdmin
from streamengine.jobs.services import job_stop
from streamengine.models import Domain, MediaJob, Node, Participant, Publication, Subscription, Token


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


class LiveStateAdmin(ReadOnlyAdmin):
    """Live engine state is written by the engine (signaling, nodes, jobs): browse it, do not edit it."""


@admin.register(Node)
class NodeAdmin(LiveStateAdmin):
    list_display = ("id", "agent", "kind", "load", "embedded", "heartbeat_at", "started_at")
    search_fields = ("id", "agent")


@admin.register(Participant)
class ParticipantAdmin(LiveStateAdmin):
    list_display = ("id", "user", "role", "domain", "node", "job", "joined_at")
    list_filter = ("role",)
    search_fields = ("id", "user", "domain__id")


@admin.register(Publication)
class PublicationAdmin(LiveStateAdmin):
    list_display = ("id", "domain", "participant", "kind", "stream_type", "ready", "created_at")
    list_filter = ("kind", "ready")
    search_fields = ("id", "domain__id", "participant__user")

    @admin.display(description="type")
    def stream_type(self, publication: Publication) -> str:
        return publication.info.get("type", "")


@admin.register(Subscription)
class SubscriptionAdmin(LiveStateAdmin):
    list_display = ("id", "domain", "participant", "kind", "ready", "created_at")
    list_filter = ("kind", "ready")
    search_fields = ("id", "domain__id", "participant__user")


@admin.register(MediaJob)
class MediaJobAdmin(LiveStateAdmin):
    """Recordings, streaming-outs and -ins: state, holder, lease and progress while they run."""

    list_display = ("id", "kind", "domain", "state", "worker", "attempt", "duration", "lease_until", "created_at")
    list_filter = ("kind", "state")
    search_fields = ("id", "domain__id", "worker")
    readonly_fields = [f.name for f in MediaJob._meta.fields]
    actions = ["stop"]

    @admin.display(description="duration (s)")
    def duration(self, job: MediaJob) -> object:
        return job.progress.get("duration", "")

    @admin.action(description="Stop the selected jobs")
    def stop(self, request, queryset) -> None:
        for job in queryset.filter(state__in=MediaJob.ACTIVE):
            job_stop(job_id=job.id)
        self.message_user(request, "Stop requested; running jobs end within a heartbeat.")
