"""Acting on live sessions: what REST, admin and the signaling consumer call.

Each function changes the state through ``services`` and then messages the Channels
groups of docs/signaling.md and the media node hosting the room, so it works from any
portal process when the channel layer is shared (Redis). They are synchronous (REST
views call them directly; the consumer through ``database_sync_to_async``).
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from streamengine import selectors, services
from streamengine.exceptions import ParticipantNotFound
from streamengine.models import Domain, Participant, Publication, Subscription

KINDS = {"audio": {"audio"}, "video": {"video"}, "av": {"audio", "video"}}


def _send(channel: str, message: dict) -> None:
    async_to_sync(get_channel_layer().send)(channel, message)


def _group_send(group: str, message: dict) -> None:
    async_to_sync(get_channel_layer().group_send)(group, message)


def node_command(domain_id: str, message: dict) -> bool:
    """Send a command to the node hosting ``domain_id``; False if the room has no node."""
    channel = Domain.objects.filter(id=domain_id).values_list("node__channel_name", flat=True).first()
    if not channel:
        return False
    _send(channel, message)
    return True


def notify_domain(domain_id: str, event: str, data: object, *, exclude: str | None = None, gate: str = "") -> None:
    """Relay a notification to every participant of the domain (``gate``: a ``notifying`` flag)."""
    if gate:
        config = Domain.objects.filter(id=domain_id).values_list("config", flat=True).first() or {}
        if (config.get("notifying") or {}).get(gate, True) is False:
            return
    _group_send(f"domain.{domain_id}", {"type": "engine.notify", "event": event, "data": data, "exclude": exclude})


def notify_participant(participant_id: str, event: str, data: object) -> None:
    _group_send(f"participant.{participant_id}", {"type": "engine.notify", "event": event, "data": data})


def participant_drop(*, participant_id: str) -> None:
    """The client gets ``drop`` and is disconnected; the participant is gone when this returns.

    The state is removed here, not left to the consumer's later clean-up, so a REST
    ``DELETE`` followed by a list never shows the dropped participant.
    """
    participant = Participant.objects.filter(id=participant_id).first()
    if participant is None:
        raise ParticipantNotFound()
    _group_send(f"participant.{participant_id}", {"type": "engine.drop"})
    participant_left(participant_id=participant_id, domain_id=participant.domain_id)


def participant_left(*, participant_id: str, domain_id: str) -> None:
    """A participant's signaling ended: close its transports, remove it, tell the room (once)."""
    node_command(domain_id, {"type": "node.participant.leave", "participant": participant_id})
    publication_ids = services.participant_leave(participant_id=participant_id)
    if publication_ids is None:
        return  # already removed (dropped through REST, or a dead node's clean-up)
    for publication_id in publication_ids:
        notify_domain(domain_id, "stream", {"id": publication_id, "status": "remove"}, gate="streamChange")
    notify_domain(domain_id, "participant", {"action": "leave", "data": participant_id}, gate="participantActivities")


def participant_update_permission(*, participant_id: str, permission: dict) -> Participant:
    """New permission; the live session checks it on its next publish/subscribe."""
    participant = services.participant_set_permission(participant_id=participant_id, permission=permission)
    _group_send(f"participant.{participant_id}", {"type": "engine.permission", "permission": participant.permission})
    return participant


def publication_set_track_status(*, publication_id: str, kinds: set[str], status: str) -> Publication:
    """Mute (``inactive``) / unmute (``active``): stop/resume forwarding and notify ``stream update``."""
    publication = services.publication_set_track_status(publication_id=publication_id, kinds=kinds, status=status)
    node_command(
        publication.domain_id,
        {
            "type": "node.publication.status",
            "session": publication_id,
            "kinds": sorted(kinds),
            "active": status == "active",
        },
    )
    present = {track["type"] for track in publication.media.get("tracks", [])}
    for kind in sorted(kinds & present):
        notify_domain(
            publication.domain_id,
            "stream",
            {"id": publication_id, "status": "update", "data": {"field": f"{kind}.status", "value": status}},
            gate="streamChange",
        )
    return publication


def publication_update_in_views(*, publication_id: str, view: str, add: bool) -> Publication:
    publication = services.publication_update_in_views(publication_id=publication_id, view=view, add=add)
    notify_domain(
        publication.domain_id,
        "stream",
        {
            "id": publication_id,
            "status": "update",
            "data": {"field": ".", "value": selectors.publication_stream(publication)},
        },
        gate="streamChange",
    )
    return publication


def publication_ready(*, publication_id: str, formats: dict[str, dict]) -> None:
    """The node connected the publisher: record its formats and announce the stream."""
    publication = services.publication_set_ready(publication_id=publication_id, formats=formats)
    if publication is not None:
        notify_domain(
            publication.domain_id,
            "stream",
            {"id": publication.id, "status": "add", "data": selectors.publication_stream(publication)},
            gate="streamChange",
        )


def publication_parameters(*, publication_id: str, parameters: dict[str, dict]) -> None:
    """The node measured a track's resolution/frame rate: record it and send the whole stream."""
    publication = services.publication_set_parameters(publication_id=publication_id, parameters=parameters)
    if publication is not None and publication.ready:
        notify_domain(
            publication.domain_id,
            "stream",
            {
                "id": publication.id,
                "status": "update",
                "data": {"field": ".", "value": selectors.publication_stream(publication)},
            },
            gate="streamChange",
        )


def publication_delete(*, publication_id: str) -> Publication:
    """Unpublish: the node closes the publisher's and its subscribers' transports."""
    publication = services.publication_delete(publication_id=publication_id)
    node_command(publication.domain_id, {"type": "node.session.end", "session": publication_id})
    notify_domain(publication.domain_id, "stream", {"id": publication_id, "status": "remove"}, gate="streamChange")
    return publication


def subscription_set_track_status(*, subscription_id: str, kinds: set[str], status: str) -> Subscription:
    subscription = services.subscription_set_track_status(subscription_id=subscription_id, kinds=kinds, status=status)
    node_command(
        subscription.domain_id,
        {
            "type": "node.subscription.status",
            "session": subscription_id,
            "kinds": sorted(kinds),
            "paused": status != "active",
        },
    )
    return subscription


def subscription_delete(*, subscription_id: str) -> Subscription:
    subscription = services.subscription_delete(subscription_id=subscription_id)
    node_command(subscription.domain_id, {"type": "node.session.end", "session": subscription_id})
    return subscription
