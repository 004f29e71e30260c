"""Reads of the engine's state (live sessions and nodes), and the REST read side scoped to a domain owner."""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from streamengine.exceptions import DomainNotFound, InvalidListQuery
from streamengine.models import Domain, MediaJob, Node, Participant, Publication, Subscription


def participant_brief(participant: Participant) -> dict:
    """The ``{id, user, role}`` form of login results and ``participant`` notifications."""
    return {"id": participant.id, "user": participant.user, "role": participant.role}


def participant_get(*, participant_id: str) -> Participant | None:
    return Participant.objects.select_related("domain").filter(id=participant_id).first()


def domain_participants(*, domain_id: str) -> QuerySet[Participant]:
    """The users in a domain (media jobs' internal participants are not users)."""
    return Participant.objects.filter(domain_id=domain_id, job__isnull=True).order_by("joined_at")


def publication_stream(publication: Publication) -> dict:
    """A publication in the client-portal protocol 1.2 stream form (login result, ``stream add``)."""
    tracks = [
        {
            k: track[k]
            for k in ("id", "type", "source", "format", "parameters", "optional", "status", "mid")
            if k in track
        }
        for track in publication.media.get("tracks", [])
    ]
    return {
        "id": publication.id,
        "type": publication.kind,
        "media": {"tracks": tracks},
        "data": publication.data,
        "info": publication.info,
    }


def stream_id_of(ref: object, streams: Container[str]) -> str:
    """The stream a stream or track id (``<streamId>-<mid>``) names; stream ids may hold
    dashes themselves (a mixed stream is ``<roomId>-<label>``)."""
    ref = str(ref)
    return ref if ref in streams else ref.rsplit("-", 1)[0]


@dataclass(frozen=True)
class MixerInputs:
    """What a view's mixer renders: the layout (mixed info), whose audio it mixes, and
    whether anyone is still in the room."""

    view: dict
    layout: list[dict]
    audio: list[str]
    users: int


def mixed_stream_id(domain_id: str, label: str) -> str:
    """A view's mixed stream: ``<roomId>-<label>``."""
    return f"{domain_id}-{label}"


def _has_track(publication: Publication, kind: str, *, active: bool = False) -> bool:
    return any(
        t["type"] == kind and (not active or t.get("status") == "active") for t in publication.media.get("tracks", [])
    )


def view_inputs(*, domain_id: str, label: str, kind: str, active: bool = False) -> list[str]:
    """The ready forward streams in view ``label`` with a ``kind`` track (``active``: not muted), oldest first."""
    return [
        publication.id
        for publication in domain_streams(domain_id=domain_id).exclude(kind="mixed")
        if label in publication.info.get("inViews", []) and _has_track(publication, kind, active=active)
    ]


def mixer_inputs(*, domain_id: str, label: str) -> MixerInputs | None:
    domain = Domain.objects.filter(id=domain_id).first()
    if domain is None:
        return None
    view = next((v for v in domain.config.get("views") or [] if isinstance(v, dict) and v.get("label") == label), None)
    if view is None:
        return None
    mixed = Publication.objects.filter(id=mixed_stream_id(domain_id, label), kind="mixed").first()
    return MixerInputs(
        view=view,
        layout=mixed.info.get("layout", []) if mixed else [],
        audio=view_inputs(domain_id=domain_id, label=label, kind="audio", active=True),
        users=domain_participants(domain_id=domain_id).count(),
    )


def room_voices(*, domain_id: str) -> list[str]:
    """The room's streams with a live audio track that an audio selector takes from: users'
    and streaming-ins', not mixed streams or selections themselves."""
    return [
        publication.id
        for publication in domain_streams(domain_id=domain_id).exclude(kind="mixed")
        if publication.info.get("type") != "selecting" and _has_track(publication, "audio", active=True)
    ]


@dataclass(frozen=True)
class UserStream:
    """A ready stream a room user publishes, with the kinds of track it carries."""

    id: str
    user: str
    audio: bool
    video: bool


def user_streams(*, domain_id: str, users: Container[str] | None = None) -> list[UserStream]:
    """The ready streams the room's users publish (``users``: only theirs), oldest first.

    Not the room's mixed streams nor the streams of its media jobs (a streaming-in, an
    analytics output): what a recorder of "the users" records."""
    publications = (
        domain_streams(domain_id=domain_id)
        .exclude(kind="mixed")
        .filter(participant__isnull=False, participant__job__isnull=True)
        .select_related("participant")
    )
    return [
        UserStream(
            id=publication.id,
            user=publication.participant.user,
            audio=_has_track(publication, "audio"),
            video=_has_track(publication, "video"),
        )
        for publication in publications
        if users is None or publication.participant.user in users
    ]


def stream_region(*, domain_id: str, stream_id: str, label: str) -> str | None:
    """The id of the region stream ``stream_id`` has in view ``label``'s layout (``get-region``)."""
    mixed = Publication.objects.filter(id=mixed_stream_id(domain_id, label), kind="mixed").first()
    layout = mixed.info.get("layout", []) if mixed else []
    return next((entry["region"]["id"] for entry in layout if entry.get("stream") == stream_id), None)


def domain_streams(*, domain_id: str) -> QuerySet[Publication]:
    """Streams a newcomer sees: ready publications (announced with ``stream add``)."""
    return Publication.objects.filter(domain_id=domain_id, ready=True).order_by("created_at")


def publication_get(*, publication_id: str, domain_id: str | None = None) -> Publication | None:
    queryset = Publication.objects.filter(id=publication_id)
    if domain_id is not None:
        queryset = queryset.filter(domain_id=domain_id)
    return queryset.first()


def subscription_get(*, subscription_id: str) -> Subscription | None:
    return Subscription.objects.filter(id=subscription_id).first()


def domain_get(*, domain_id: str) -> Domain | None:
    return Domain.objects.filter(id=domain_id).first()


# --- REST read side: lists with filters and pagination, scoped to the caller's domains ---


@dataclass(frozen=True)
class Page:
    total: int
    start: int
    items: list


# Filter keys each list accepts (the stream API's `{KEY: VALUE}` ListQuery) and the field they
# compare with. Dotted keys follow the state objects' JSON (`locality.node` etc.).
PARTICIPANT_FILTERS = {
    "id": "id",
    "domain": "domain_id",
    "user": "user",
    "role": "role",
    "portal": "portal",
    # A participant's peer connections live on its domain's node.
    "locality.node": "domain__node_id",
    "locality.agent": "domain__node__agent",
}
PUBLICATION_FILTERS = {
    "id": "id",
    "domain": "domain_id",
    "participant": "participant_id",
    "type": "info__type",
    "info.type": "info__type",
    "info.owner": "participant_id",
    "locality.node": "node_id",
    "locality.agent": "node__agent",
}
SUBSCRIPTION_FILTERS = {
    "id": "id",
    "domain": "domain_id",
    "participant": "participant_id",
    "type": "kind",
    "locality.node": "node_id",
    "locality.agent": "node__agent",
}
NODE_FILTERS = {"id": "id", "agent": "agent", "type": "kind"}


def apply_filters(queryset: QuerySet, allowed: dict[str, str], filters: dict) -> QuerySet:
    """AND of exact matches; unknown keys and non-scalar values are refused, not ignored."""
    lookups = {}
    for key, value in filters.items():
        field = allowed.get(key)
        if field is None:
            raise InvalidListQuery(f"Unknown query key: {key} (allowed: {', '.join(sorted(allowed))})")
        if isinstance(value, (dict, list)) or value is None or isinstance(value, bool):
            raise InvalidListQuery(f"Query value for {key} must be a string or a number")
        lookups[field] = str(value)
    return queryset.filter(**lookups)


def paginate(queryset: QuerySet, *, start: int, limit: int) -> Page:
    return Page(total=queryset.count(), start=start, items=list(queryset[start : start + limit]))


def participant_queryset(*, owner: str) -> QuerySet[Participant]:
    return (
        Participant.objects.filter(domain__owner=owner)
        .select_related("domain__node", "node")
        .prefetch_related(
            Prefetch("publications", queryset=Publication.objects.only("id", "participant_id").order_by("created_at")),
            Prefetch(
                "subscriptions", queryset=Subscription.objects.only("id", "participant_id").order_by("created_at")
            ),
        )
        .order_by("joined_at", "id")
    )


def publication_queryset(*, owner: str) -> QuerySet[Publication]:
    return (
        Publication.objects.filter(domain__owner=owner)
        .select_related("node", "participant")
        .order_by("created_at", "id")
    )


def subscription_queryset(*, owner: str) -> QuerySet[Subscription]:
    return (
        Subscription.objects.filter(domain__owner=owner)
        .select_related("node", "participant")
        .order_by("created_at", "id")
    )


def node_queryset(*, owner: str) -> QuerySet[Node]:
    """Nodes are shared by every tenant; the publication/subscription ids they list are the asker's own."""
    return Node.objects.prefetch_related(
        Prefetch(
            "publications",
            queryset=Publication.objects.filter(domain__owner=owner).only("id", "node_id").order_by("created_at"),
        ),
        Prefetch(
            "subscriptions",
            queryset=Subscription.objects.filter(domain__owner=owner).only("id", "node_id").order_by("created_at"),
        ),
    ).order_by("started_at", "id")


def owned_domain_get(*, owner: str, domain_id: str) -> Domain:
    """The owner's domain; another owner's is reported as unknown (404/1003)."""
    domain = Domain.objects.filter(id=domain_id, owner=owner).first()
    if domain is None:
        raise DomainNotFound()
    return domain


def job_get(*, job_id: str, owner: str) -> MediaJob | None:
    """A media job in one of ``owner``'s domains."""
    return MediaJob.objects.filter(id=job_id, domain__owner=owner).first()


PROCESSOR_KINDS = ("mixing", "analytics", "audio-selecting")
PROCESSOR_FILTERS = {"kind": "kind", "domain": "domain_id", "participant": "domain_id"}


def processor_queryset(*, owner: str) -> QuerySet[MediaJob]:
    """Processors (stream API 5.4) are the media jobs that make streams of streams, running or waiting."""
    return MediaJob.objects.filter(domain__owner=owner, kind__in=PROCESSOR_KINDS, state__in=MediaJob.ACTIVE).order_by(
        "created_at", "id"
    )


def processor_streams(job: MediaJob) -> tuple[dict, list[Publication]]:
    """(inputs, outputs) of a processor: ``{audio: [SinkTrack], video: [...], data: []}`` and the
    publications it makes (their tracks are its source tracks)."""
    inputs: dict[str, list] = {"audio": [], "video": [], "data": []}
    if job.kind == "mixing":
        state = mixer_inputs(domain_id=job.domain_id, label=job.spec["view"])
        if state is not None:
            inputs["video"] = [{"from": entry["stream"]} for entry in state.layout if entry.get("stream")]
            inputs["audio"] = [{"from": stream} for stream in state.audio]
        outputs = Publication.objects.filter(id=mixed_stream_id(job.domain_id, job.spec["view"]), kind="mixed")
        return inputs, list(outputs)
    if job.kind == "analytics":
        inputs["video"] = [{"from": job.spec["media"]["video"]["from"]}]
    else:
        inputs["audio"] = [{"from": stream} for stream in job.progress.get("inputs", [])]
    return inputs, list(Publication.objects.filter(participant__job_id=job.id).order_by("created_at"))


def media_nodes_health() -> dict:
    """The landing page's media-node line: live and silent nodes (``OWT_STATUS_CHECKS``).

    With the embedded node (the default) none is normal before the first call: the portal
    starts it on the first signaling connection.
    """
    from streamengine.services import stale_after  # services imports this module

    cutoff = timezone.now() - timedelta(seconds=stale_after())
    live = Node.objects.filter(heartbeat_at__gte=cutoff).count()
    silent = Node.objects.filter(heartbeat_at__lt=cutoff).count()
    result = {"ok": live > 0 or settings.MEDIA_NODE_EMBEDDED, "live": live, "silent": silent}
    if not live:
        result["note"] = (
            "the embedded node starts with the first call"
            if settings.MEDIA_NODE_EMBEDDED
            else "no media node heartbeats: start one with manage.py medianode"
        )
    return result
