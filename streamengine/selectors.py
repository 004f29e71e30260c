"""Reads of the engine's state (live sessions and nodes)."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.utils import timezone

from streamengine.models import Domain, Node, Participant, Publication, Subscription


def participant_brief(participant: Participant) -> dict:
    """The ``{id, user, role}`` form of login results and ``participant`` notifications."""
    return {"id": participant.id, "user": participant.user, "role": participant.role}


def participant_get(*, participant_id: str) -> Participant | None:
    return Participant.objects.select_related("domain").filter(id=participant_id).first()


def domain_participants(*, domain_id: str) -> QuerySet[Participant]:
    return Participant.objects.filter(domain_id=domain_id).order_by("joined_at")


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


def nodes_alive(*, stale_after: float) -> QuerySet[Node]:
    return Node.objects.filter(heartbeat_at__gte=timezone.now() - timedelta(seconds=stale_after))
