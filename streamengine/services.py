"""Writes to the engine's state. Every caller (REST, signaling, admin, Celery) goes through here."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from streamengine.exceptions import (
    DomainNotFound,
    InvalidRole,
    InvalidTokenRequest,
    NoMediaNode,
    ParticipantNotFound,
    RoomFull,
    StreamNotFound,
    SubscriptionNotFound,
    TokenAlreadyUsed,
    TokenExpired,
    TooManyInputs,
    Unauthorized,
)
from streamengine.models import Domain, Node, Participant, Publication, Subscription, Token
from streamengine.tokens import TokenString, sign


def domain_configure(*, domain_id: str, owner: str, config: dict) -> Domain:
    """Create or update the engine's copy of a room's settings."""
    domain, _ = Domain.objects.update_or_create(id=domain_id, defaults={"owner": owner, "config": config})
    return domain


def domain_delete(*, domain_id: str) -> None:
    Domain.objects.filter(id=domain_id).delete()


def token_create(
    *,
    domain_id: str,
    user: str,
    role: str,
    origin: dict | None = None,
    host: str | None = None,
    secure: bool | None = None,
) -> str:
    """Issue a one-time token for ``domain_id`` and return the token string clients send at login."""
    domain = Domain.objects.filter(id=domain_id).first()
    if domain is None:
        raise DomainNotFound()
    if not isinstance(user, str) or not user or not isinstance(role, str) or domain.role(role) is None:
        raise InvalidTokenRequest()
    host = host or settings.OWT_PORTAL_HOST
    token = Token.objects.create(
        domain=domain,
        user=user,
        role=role,
        origin=origin or {"isp": "isp", "region": "region"},
        host=host,
        secure=settings.OWT_PORTAL_SECURE if secure is None else secure,
        expires_at=timezone.now() + timedelta(seconds=settings.OWT_TOKEN_LIFETIME_SECONDS),
    )
    return TokenString(token.id, token.host, token.secure, sign(token.id, token.host)).encode()


def token_consume(*, token_string: str) -> Token:
    """Validate and burn a token. Of two concurrent logins with one token exactly one succeeds.

    Returns the (now deleted) token's data: domain, user, role, origin.
    """
    parsed = TokenString.decode(token_string)
    parsed.verify()
    token = Token.objects.select_related("domain").filter(id=parsed.token_id).first()
    if token is None:
        raise TokenAlreadyUsed()
    with transaction.atomic():
        # The DELETE is the claim: the database lets only one statement remove the row.
        deleted, _ = Token.objects.filter(id=token.id).delete()
    if deleted != 1:
        raise TokenAlreadyUsed()
    if token.expires_at <= timezone.now():
        raise TokenExpired()
    return token


def token_purge_expired() -> int:
    """Remove tokens past their lifetime; returns how many (run by the beat schedule)."""
    deleted, _ = Token.objects.filter(expires_at__lte=timezone.now()).delete()
    return deleted


# --- Live state: participants, publications, subscriptions -----------------------------


def _role_permission(role: dict) -> dict:
    return {
        action: {kind: bool((role.get(action) or {}).get(kind)) for kind in ("audio", "video")}
        for action in ("publish", "subscribe")
    }


def participant_join(
    *, token_string: str, participant_id: str, portal: str, user_agent: dict, protocol: str
) -> Participant:
    """Burn the token and add the participant, enforcing the role and ``participantLimit``."""
    token = token_consume(token_string=token_string)
    with transaction.atomic():
        # Locking the domain row serialises joins to one domain, so the limit holds under races.
        domain = Domain.objects.select_for_update().filter(id=token.domain_id).first()
        if domain is None:
            raise DomainNotFound()
        role = domain.role(token.role)
        if role is None:
            raise InvalidRole()
        limit = domain.config.get("participantLimit", -1)
        if isinstance(limit, int) and limit > 0 and domain.participants.count() >= limit:
            raise RoomFull()
        return Participant.objects.create(
            id=participant_id,
            domain=domain,
            user=token.user,
            role=token.role,
            permission=_role_permission(role),
            portal=portal,
            user_agent=user_agent,
            protocol=protocol,
        )


def participant_leave(*, participant_id: str) -> list[str] | None:
    """Remove the participant and its sessions; returns the ids of its publications (None if already gone)."""
    with transaction.atomic():
        participant = Participant.objects.filter(id=participant_id).first()
        if participant is None:
            return None
        publication_ids = list(participant.publications.values_list("id", flat=True))
        # Others' subscriptions to its streams end with them (the node closes their transports).
        Subscription.objects.filter(domain_id=participant.domain_id, info__from__in=publication_ids).delete()
        participant.delete()
    return publication_ids


def participant_set_portal(*, participant_id: str, portal: str) -> Participant:
    """Record the signaling channel now serving the participant (after ``relogin``)."""
    if not Participant.objects.filter(id=participant_id).update(portal=portal):
        raise ParticipantNotFound()
    return Participant.objects.select_related("domain").get(id=participant_id)


def participant_set_permission(*, participant_id: str, permission: dict) -> Participant:
    participant = Participant.objects.filter(id=participant_id).first()
    if participant is None:
        raise ParticipantNotFound()
    participant.permission = _role_permission(permission)
    participant.save(update_fields=["permission"])
    return participant


def _check_kinds(participant: Participant, action: str, kinds: set[str]) -> None:
    allowed = participant.permission.get(action) or {}
    if not kinds or not all(allowed.get(kind) for kind in kinds):
        raise Unauthorized()


def publication_create(
    *, participant_id: str, publication_id: str, tracks: list[dict], attributes: dict, transport_id: str
) -> Publication:
    """Register a WebRTC publication; checks permission per track kind and ``inputLimit``."""
    with transaction.atomic():
        participant = Participant.objects.select_related("domain").filter(id=participant_id).first()
        if participant is None:
            raise ParticipantNotFound()
        _check_kinds(participant, "publish", {t["type"] for t in tracks})
        domain = Domain.objects.select_for_update().get(id=participant.domain_id)
        limit = domain.config.get("inputLimit", -1)
        if isinstance(limit, int) and limit >= 0 and domain.publications.count() >= limit:
            raise TooManyInputs()
        media = {
            "tracks": [
                {
                    "id": f"{publication_id}-{t['mid']}",
                    "type": t["type"],
                    "source": t.get("source") or ("mic" if t["type"] == "audio" else "camera"),
                    "mid": t["mid"],
                    "status": "active",
                }
                for t in tracks
            ]
        }
        return Publication.objects.create(
            id=publication_id,
            domain=domain,
            participant=participant,
            node=domain.node,
            media=media,
            info={"owner": participant.id, "type": "webrtc", "inViews": [], "attributes": attributes},
            transport_id=transport_id,
        )


def publication_set_ready(*, publication_id: str, formats: dict[str, dict]) -> Publication | None:
    """Mark a publication ready with its negotiated formats (by mid); None if it is gone."""
    publication = Publication.objects.filter(id=publication_id).first()
    if publication is None:
        return None
    for track in publication.media.get("tracks", []):
        if track["mid"] in formats:
            track.update(formats[track["mid"]])
    publication.ready = True
    publication.save(update_fields=["media", "ready"])
    return publication


def publication_set_parameters(*, publication_id: str, parameters: dict[str, dict]) -> Publication | None:
    """Record measured track parameters (by mid: resolution, framerate); None if the publication is gone."""
    with transaction.atomic():
        publication = Publication.objects.select_for_update().filter(id=publication_id).first()
        if publication is None:
            return None
        for track in publication.media.get("tracks", []):
            if track["mid"] in parameters:
                track["parameters"] = parameters[track["mid"]]
        publication.save(update_fields=["media"])
    return publication


def publication_set_track_status(*, publication_id: str, kinds: set[str], status: str) -> Publication:
    """Mute (``inactive``) or unmute (``active``) the publication's tracks of ``kinds``."""
    with transaction.atomic():
        publication = Publication.objects.select_for_update().filter(id=publication_id).first()
        if publication is None:
            raise StreamNotFound()
        for track in publication.media.get("tracks", []):
            if track["type"] in kinds:
                track["status"] = status
        publication.save(update_fields=["media"])
    return publication


def publication_update_in_views(*, publication_id: str, view: str, add: bool) -> Publication:
    with transaction.atomic():
        publication = Publication.objects.select_for_update().filter(id=publication_id).first()
        if publication is None:
            raise StreamNotFound()
        views = [v for v in publication.info.get("inViews", []) if v != view]
        if add:
            views.append(view)
        publication.info["inViews"] = views
        publication.save(update_fields=["info"])
    return publication


def publication_delete(*, publication_id: str) -> Publication:
    """Delete the publication and the subscriptions to it; returns the deleted row's data."""
    publication = Publication.objects.filter(id=publication_id).first()
    if publication is None:
        raise StreamNotFound()
    with transaction.atomic():
        Subscription.objects.filter(domain_id=publication.domain_id, info__from=publication_id).delete()
        Publication.objects.filter(id=publication_id).delete()
    return publication


def subscription_create(
    *, participant_id: str, subscription_id: str, tracks: list[dict], transport_id: str
) -> Subscription:
    """Register a subscription to one publication (every track ``from`` the same stream)."""
    participant = Participant.objects.filter(id=participant_id).first()
    if participant is None:
        raise ParticipantNotFound()
    _check_kinds(participant, "subscribe", {t["type"] for t in tracks})
    sources = {str(t["from"]).split("-")[0] for t in tracks}
    if len(sources) != 1:
        raise Unauthorized("All tracks of a subscription must come from one stream")
    publication_id = sources.pop()
    if not Publication.objects.filter(id=publication_id, domain_id=participant.domain_id, ready=True).exists():
        raise StreamNotFound()
    return Subscription.objects.create(
        id=subscription_id,
        domain_id=participant.domain_id,
        participant=participant,
        node_id=Domain.objects.filter(id=participant.domain_id).values_list("node_id", flat=True).first(),
        media={"tracks": [{**t, "from": publication_id, "status": "active"} for t in tracks]},
        info={"owner": participant.id, "type": "webrtc", "from": publication_id},
        transport_id=transport_id,
    )


def subscription_set_ready(*, subscription_id: str) -> None:
    Subscription.objects.filter(id=subscription_id).update(ready=True)


def subscription_set_track_status(*, subscription_id: str, kinds: set[str], status: str) -> Subscription:
    with transaction.atomic():
        subscription = Subscription.objects.select_for_update().filter(id=subscription_id).first()
        if subscription is None:
            raise SubscriptionNotFound()
        for track in subscription.media.get("tracks", []):
            if track["type"] in kinds:
                track["status"] = status
        subscription.save(update_fields=["media"])
    return subscription


def subscription_delete(*, subscription_id: str) -> Subscription:
    subscription = Subscription.objects.filter(id=subscription_id).first()
    if subscription is None:
        raise SubscriptionNotFound()
    subscription.delete()
    return subscription


# --- Media nodes --------------------------------------------------------------------------


def node_register(*, node_id: str, agent: str, channel_name: str, stream_addr: dict, embedded: bool) -> Node:
    node, _ = Node.objects.update_or_create(
        id=node_id,
        defaults={
            "agent": agent,
            "channel_name": channel_name,
            "stream_addr": stream_addr,
            "embedded": embedded,
            "load": 0.0,
            "heartbeat_at": timezone.now(),
        },
    )
    return node


def node_heartbeat(*, node_id: str, load: float) -> bool:
    """Record a heartbeat; False if the node was declared dead meanwhile (it must re-register)."""
    return bool(Node.objects.filter(id=node_id).update(load=load, heartbeat_at=timezone.now()))


def node_unregister(*, node_id: str) -> None:
    Node.objects.filter(id=node_id).delete()


def node_reap_dead(*, stale_after: float) -> dict[str, list[str]]:
    """Delete nodes whose heartbeat is older than ``stale_after`` seconds.

    Returns ``{node_id: [participant ids of its domains]}`` for the nodes this call removed,
    so the caller notifies those participants (``drop``). Only the caller whose DELETE
    removed the row reports it, so concurrent reapers do not double-drop.
    """
    cutoff = timezone.now() - timedelta(seconds=stale_after)
    reaped: dict[str, list[str]] = {}
    for node_id in Node.objects.filter(heartbeat_at__lt=cutoff).values_list("id", flat=True):
        participant_ids = list(Participant.objects.filter(domain__node_id=node_id).values_list("id", flat=True))
        deleted, _ = Node.objects.filter(id=node_id, heartbeat_at__lt=cutoff).delete()
        if deleted:
            reaped[node_id] = participant_ids
    return reaped


def domain_place(*, domain_id: str, stale_after: float, only: str | None = None) -> Node:
    """The node hosting ``domain_id``: its current one if alive, else the least-loaded live node.

    The conditional UPDATE is the claim: of two portals placing one domain at once, the
    second sees the first's live node and keeps it. ``only`` restricts the choice to one
    node (an embedded node on the in-memory channel layer cannot reach any other).
    """
    alive = Node.objects.filter(heartbeat_at__gte=timezone.now() - timedelta(seconds=stale_after))
    if only is not None:
        alive = alive.filter(id=only)
    current = Domain.objects.filter(id=domain_id).values_list("node_id", flat=True).first()
    if current and alive.filter(id=current).exists():
        return alive.get(id=current)
    candidate = alive.order_by("load", "started_at").first()
    if candidate is None:
        raise NoMediaNode()
    Domain.objects.filter(id=domain_id, node_id=current).update(node=candidate)
    node_id = Domain.objects.filter(id=domain_id).values_list("node_id", flat=True).first()
    if node_id is None:
        raise DomainNotFound()
    return Node.objects.get(id=node_id)
