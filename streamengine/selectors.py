"""Reads of the engine's live state, scoped to the service (domain owner) that asks."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Prefetch, QuerySet

from streamengine.exceptions import DomainNotFound, InvalidListQuery
from streamengine.models import Domain, Node, Participant, Publication, Subscription


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
    "locality.node": "node_id",
    "locality.agent": "node__agent",
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
        .select_related("domain", "node")
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


def domain_participants(*, domain_id: str) -> QuerySet[Participant]:
    """A room's live participants, in join order."""
    return Participant.objects.filter(domain_id=domain_id).order_by("joined_at", "id")


def domain_publications(*, domain_id: str) -> QuerySet[Publication]:
    """A room's live streams, in publish order."""
    return Publication.objects.filter(domain_id=domain_id).select_related("domain").order_by("created_at", "id")


def domain_get(*, owner: str, domain_id: str) -> Domain:
    """The owner's domain; another owner's is reported as unknown (404/1003)."""
    domain = Domain.objects.filter(id=domain_id, owner=owner).first()
    if domain is None:
        raise DomainNotFound()
    return domain
