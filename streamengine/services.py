"""The engine's write API. Every caller (REST, signaling, admin, Celery, media jobs) goes through here.

Writes to live state are engine writes (``outbox.engine_write``): call them plainly
from synchronous code, ``await write.acall(...)`` on an event loop; either way the media
node and the room's signaling hear of a change only once it is made.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from owt.errors import ApiError
from streamengine import protocol, selectors
from streamengine.exceptions import (
    DomainNotFound,
    InvalidRegion,
    InvalidRole,
    InvalidTokenRequest,
    NoMediaNode,
    ParticipantNotFound,
    RoomFull,
    StreamNotFound,
    SubscriptionNotFound,
    TextTargetNotFound,
    TokenAlreadyUsed,
    TokenExpired,
    TooManyInputs,
    TransportNotFound,
    Unauthorized,
    ViewNotFound,
)
from streamengine.jobs.services import MIXING_JOB_COST, job_create, job_stop, jobs_live, sip_agent_sync
from streamengine.media import layouts
from streamengine.media.resolutions import track_optional
from streamengine.models import Domain, MediaJob, Node, Participant, Publication, Subscription, Token
from streamengine.outbox import Outbox, engine_write
from streamengine.tokens import TokenString, sign

MISSED_HEARTBEATS = 3
# The type (OWT ``info.type``) of the sessions a media job's participant makes, by job kind;
# the kinds of apps above the engine (egress) record, so their sessions are recordings.
JOB_SESSION_TYPES = {
    "recording": "recording",
    "streaming-out": "streaming",
    "streaming-in": "streaming",
    "mixing": "mixing",
    "analytics": "analytics",
    "audio-selecting": "selecting",
    "sip": "sip",
}
# Job kinds whose one publication *is* the job (OWT: a streaming-in's id is its stream's, a
# random decimal string): the publication takes the job's id, whatever id signaling chose.
JOB_STREAM_KINDS = {"streaming-in", "analytics", "sip"}


def job_session_type(kind: str) -> str:
    return JOB_SESSION_TYPES.get(kind, "recording")


# The job streams that enter the views like users' streams (an audio selector's slots do not).
MIXED_JOB_KINDS = {"streaming-in", "analytics", "sip"}
JOB_ROLE = {"role": "admin", "publish": {"audio": True, "video": True}, "subscribe": {"audio": True, "video": True}}


def domain_configure(*, domain_id: str, owner: str, config: dict) -> Domain:
    """Create or update the engine's copy of a room's settings."""
    domain, _ = Domain.objects.update_or_create(id=domain_id, defaults={"owner": owner, "config": config})
    sip_agent_sync(domain_id=domain_id, config=config)
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
    job_id: str | None = None,
    owner: str | None = None,
) -> str:
    """Issue a one-time token for ``domain_id`` and return the token string clients send at login.

    ``job_id``: the internal credential of that media job (its participant is the job's).
    ``owner``: the domain must be this owner's (another's is not found).
    """
    domains = Domain.objects.filter(id=domain_id)
    domain = (domains if owner is None else domains.filter(owner=owner)).first()
    if domain is None:
        raise DomainNotFound()
    if not isinstance(user, str) or not user or not isinstance(role, str):
        raise InvalidTokenRequest()
    if job_id is None and domain.role(role) is None:
        raise InvalidTokenRequest()
    host = host or settings.OWT_PORTAL_HOST
    # Committed durably like every other write: a token the API handed out is never lost, even
    # to a database crash (relaxing synchronous_commit for it was measured and left out).
    token = Token.objects.create(
        domain=domain,
        user=user,
        role=role,
        origin=origin or {"isp": "isp", "region": "region"},
        host=host,
        secure=settings.OWT_PORTAL_SECURE if secure is None else secure,
        expires_at=timezone.now() + timedelta(seconds=settings.OWT_TOKEN_LIFETIME_SECONDS),
        job_id=job_id,
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
# Each write below changes the database and queues, in its outbox, the commands for the
# media node hosting the room and the notifications for the room's signaling (see
# ``outbox``). ``owner``, where a write takes it, is the participant asking (signaling): it
# must own the publication/subscription; REST and admin pass none.

KINDS = {"audio": {"audio"}, "video": {"video"}, "av": {"audio", "video"}}


def stale_after() -> float:
    """Seconds without a heartbeat after which a media node counts as dead."""
    return settings.MEDIA_NODE_HEARTBEAT_SECONDS * MISSED_HEARTBEATS


def media_accept(config: dict) -> dict[str, list[str]]:
    """Codec names a room accepts from publishers, per kind (``mediaIn``); absent = any."""
    media_in = config.get("mediaIn") or {}
    return {
        kind: sorted({f["codec"].lower() for f in media_in[kind] if "codec" in f})
        for kind in ("audio", "video")
        if kind in media_in
    }


def _role_permission(role: dict) -> dict:
    return {
        action: {kind: bool((role.get(action) or {}).get(kind)) for kind in ("audio", "video")}
        for action in ("publish", "subscribe")
    }


def _stream_update(outbox: Outbox, publication: Publication, data: dict) -> None:
    outbox.notify_domain(
        publication.domain_id,
        "stream",
        {"id": publication.id, "status": "update", "data": data},
        gate="streamChange",
    )


def _stream_removed(outbox: Outbox, domain_id: str, publication_id: str) -> None:
    outbox.notify_domain(domain_id, "stream", {"id": publication_id, "status": "remove"}, gate="streamChange")


@engine_write
def participant_join(
    outbox: Outbox,
    *,
    token_string: str,
    participant_id: str,
    portal: str,
    user_agent: dict,
    protocol: str,
    only_node: str | None = None,
) -> Participant:
    """Burn the token, add the participant (role, ``participantLimit``) and place its room on a node.

    ``portal`` is the channel of the participant's signaling; ``only_node`` restricts the
    placement (an embedded node on the in-memory channel layer reaches only its own process).
    If no node can host the room the participant is removed again and the error raised.
    The room hears ``participant join`` (gate ``participantActivities``).
    """
    token = token_consume(token_string=token_string)
    with transaction.atomic():
        # Locking the domain row serialises joins to one domain, so the limit holds under races.
        domain = Domain.objects.select_for_update().filter(id=token.domain_id).first()
        if domain is None:
            raise DomainNotFound()
        # A media job may publish and subscribe whatever the room's roles say; one that joins
        # for someone (a SIP caller: role ``sip``) has that role's permissions.
        role = JOB_ROLE if token.job_id and token.role == "admin" else domain.role(token.role)
        if role is None:
            raise InvalidRole()
        limit = domain.config.get("participantLimit", -1)
        users = domain.participants.filter(job__isnull=True)
        if token.job_id is None and isinstance(limit, int) and limit > 0 and users.count() >= limit:
            raise RoomFull()
        participant = Participant.objects.create(
            id=participant_id,
            domain=domain,
            user=token.user,
            role=token.role,
            permission=_role_permission(role),
            portal=portal,
            user_agent=user_agent,
            protocol=protocol,
            job_id=token.job_id,
        )
        if token.job_id is None:
            _mixers_start(domain)
    try:
        domain_place(domain_id=domain.id, stale_after=stale_after(), only=only_node)
    except ApiError:
        participant.delete()
        raise
    if participant.job_id is None:  # a media job is no user: nobody hears it join
        outbox.notify_domain(
            domain.id,
            "participant",
            {"action": "join", "data": selectors.participant_brief(participant)},
            exclude=participant.id,
            gate="participantActivities",
        )
    return participant


@engine_write
def participant_left(outbox: Outbox, *, participant_id: str) -> None:
    """A participant's signaling ended: close its transports, remove it, tell the room (once)."""
    with transaction.atomic():
        participant = Participant.objects.filter(id=participant_id).first()
        if participant is None:
            return  # already removed (dropped through REST, or a dead node's clean-up)
        domain_id, job_id = participant.domain_id, participant.job_id
        publications = list(participant.publications.values_list("id", "info"))
        publication_ids = [publication_id for publication_id, _ in publications]
        # Others' subscriptions to its streams end with them (the node closes their transports).
        Subscription.objects.filter(domain_id=domain_id, info__from__in=publication_ids).delete()
        participant.delete()
    outbox.to_node(domain_id, protocol.EndParticipant(participant_id))
    for publication_id in publication_ids:
        _stream_removed(outbox, domain_id, publication_id)
    for label in sorted({label for _, info in publications for label in info.get("inViews", [])}):
        _mixed_refresh(outbox, domain_id, label)
    if job_id is None:
        outbox.notify_domain(
            domain_id, "participant", {"action": "leave", "data": participant_id}, gate="participantActivities"
        )


@engine_write
def participant_drop(outbox: Outbox, *, participant_id: str) -> None:
    """The client gets ``drop`` and is disconnected; the participant is gone when this returns.

    The state is removed here, not left to the consumer's later clean-up, so a REST
    ``DELETE`` followed by a list never shows the dropped participant.
    """
    if not Participant.objects.filter(id=participant_id).exists():
        raise ParticipantNotFound()
    outbox.to_group(protocol.participant_group(participant_id), protocol.Drop())
    participant_left.body(outbox, participant_id=participant_id)


@engine_write
def participant_set_portal(outbox: Outbox, *, participant_id: str, portal: str) -> Participant:
    """The channel now serving the participant's signaling (parked for reconnection, relogged in)."""
    if not Participant.objects.filter(id=participant_id).update(portal=portal):
        raise ParticipantNotFound()
    participant = Participant.objects.select_related("domain").get(id=participant_id)
    outbox.to_node(participant.domain_id, protocol.MoveReplies(participant_id, portal))
    return participant


@engine_write
def participant_update_permission(outbox: Outbox, *, participant_id: str, permission: dict) -> Participant:
    """New permission; the live session checks it on its next publish/subscribe."""
    participant = Participant.objects.filter(id=participant_id).first()
    if participant is None:
        raise ParticipantNotFound()
    participant.permission = _role_permission(permission)
    participant.save(update_fields=["permission"])
    outbox.to_group(protocol.participant_group(participant_id), protocol.PermissionChanged(participant.permission))
    return participant


def _check_kinds(participant: Participant, action: str, kinds: set[str]) -> None:
    allowed = participant.permission.get(action) or {}
    if not kinds or not all(allowed.get(kind) for kind in kinds):
        raise Unauthorized()


def _owned(model: type[Publication] | type[Subscription], row_id: str, owner: str | None, *, lock: bool = False):
    """The publication/subscription ``row_id``; it must belong to ``owner`` when one is given."""
    queryset = model.objects.select_for_update() if lock else model.objects
    row = queryset.filter(id=row_id).first()
    if row is None:
        raise StreamNotFound() if model is Publication else SubscriptionNotFound()
    if owner is not None and row.participant_id != owner:
        raise Unauthorized()
    return row


def _set_track_status(row: Publication | Subscription, kinds: set[str], status: str) -> None:
    for track in row.media.get("tracks", []):
        if track["type"] in kinds:
            track["status"] = status
    row.save(update_fields=["media"])


@engine_write
def publication_create(
    outbox: Outbox,
    *,
    participant_id: str,
    publication_id: str,
    tracks: list[dict],
    attributes: dict,
    transport_id: str | None = None,
    keep_transport: bool = False,
) -> Publication:
    """Register a WebRTC publication (permission per track kind, ``inputLimit``); the node expects its offer.

    ``transport_id``: one of the participant's transports to add the publication's m-lines
    to (the node checks it is theirs); None: a new transport with the publication's id.
    ``keep_transport``: the client keeps that new transport for later sessions.
    """
    with transaction.atomic():
        participant = Participant.objects.select_related("domain", "job").filter(id=participant_id).first()
        if participant is None:
            raise ParticipantNotFound()
        _check_kinds(participant, "publish", {t["type"] for t in tracks})
        job = participant.job
        if job and job.kind in JOB_STREAM_KINDS:
            publication_id = job.id
        domain = Domain.objects.select_for_update().get(id=participant.domain_id)
        mixing = job is not None and job.kind == "mixing"
        if mixing:
            publication_id = selectors.mixed_stream_id(domain.id, job.spec["view"])
            _take_over_mixed(outbox, domain.id, publication_id)
        limit = domain.config.get("inputLimit", -1)
        inputs = domain.publications.exclude(kind="mixed")
        if not mixing and isinstance(limit, int) and limit >= 0 and inputs.count() >= limit:
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
        if mixing:
            info = {"label": job.spec["view"], "activeInput": "unknown", "layout": []}
            _mixed_media(media, _view(domain.config, job.spec["view"]))
        else:
            # A streaming-in job's stream is the room's own (OWT: owner "admin", type "streaming").
            # Like OWT, every stream enters every view; PATCH /info/inViews or stream-control
            # unmix takes it out.
            info = {
                "owner": "admin" if job else participant.id,
                "type": job_session_type(job.kind) if job else "webrtc",
                "inViews": [view["label"] for view in _views(domain.config)]
                if job is None or job.kind in MIXED_JOB_KINDS
                else [],
                "attributes": attributes,
            }
        publication = Publication.objects.create(
            id=publication_id,
            domain=domain,
            participant=participant,
            node=domain.node,
            kind="mixed" if mixing else "forward",
            media=media,
            info=info,
            transport_id=transport_id or publication_id,
        )
    outbox.to_node(
        domain.id,
        protocol.Publish(
            room=domain.id,
            session=publication_id,
            participant=participant_id,
            reply=participant.portal,
            tracks=tracks,
            accept=media_accept(domain.config),
            transport=publication.transport_id,
            keep_transport=keep_transport,
        ),
    )
    return publication


def _ready_source(participant: Participant, stream: object) -> str:
    """The id of the ready publication in the participant's room that ``stream`` (a stream or track id) names."""
    ready = set(selectors.domain_streams(domain_id=participant.domain_id).values_list("id", flat=True))
    publication_id = selectors.stream_id_of(stream, ready)
    if publication_id not in ready:
        raise StreamNotFound()
    return publication_id


@engine_write
def subscription_create(
    outbox: Outbox,
    *,
    participant_id: str,
    subscription_id: str,
    tracks: list[dict],
    transport_id: str | None = None,
    keep_transport: bool = False,
) -> Subscription:
    """Register a subscription to one ready publication (every track ``from`` the same stream);
    ``transport_id`` / ``keep_transport`` as for :func:`publication_create`."""
    participant = Participant.objects.select_related("job").filter(id=participant_id).first()
    if participant is None:
        raise ParticipantNotFound()
    _check_kinds(participant, "subscribe", {t["type"] for t in tracks})
    sources = {_ready_source(participant, t["from"]) for t in tracks}
    if len(sources) != 1:
        raise Unauthorized("All tracks of a subscription must come from one stream")
    publication_id = sources.pop()
    kind = job_session_type(participant.job.kind) if participant.job else "webrtc"
    subscription = Subscription.objects.create(
        id=subscription_id,
        kind=kind,
        domain_id=participant.domain_id,
        participant=participant,
        node_id=Domain.objects.filter(id=participant.domain_id).values_list("node_id", flat=True).first(),
        media={"tracks": [{**t, "from": publication_id, "status": "active"} for t in tracks]},
        info={"owner": participant.id, "type": kind, "from": publication_id},
        transport_id=transport_id or subscription_id,
    )
    outbox.to_node(
        participant.domain_id,
        protocol.Subscribe(
            room=participant.domain_id,
            session=subscription_id,
            participant=participant_id,
            reply=participant.portal,
            tracks=tracks,
            source=publication_id,
            transport=subscription.transport_id,
            keep_transport=keep_transport,
        ),
    )
    return subscription


@engine_write
def subscription_update(
    outbox: Outbox, *, subscription_id: str, changes: dict[str, dict], owner: str | None = None
) -> Subscription:
    """``subscription-control update``: per kind, another source (``from``) and/or ``parameters``.

    The subscriber's m-lines stay as negotiated; the node switches what feeds them.
    """
    with transaction.atomic():
        subscription = _owned(Subscription, subscription_id, owner, lock=True)
        participant = subscription.participant
        tracks = subscription.media.get("tracks", [])
        kinds = {t["type"] for t in tracks}
        unknown = set(changes) - kinds
        if unknown:
            raise Unauthorized(f"The subscription has no {sorted(unknown)[0]} track")
        updates = []
        for track in tracks:
            change = changes.get(track["type"])
            if change is None:
                continue
            if change.get("from") is not None:
                track["from"] = _ready_source(participant, change["from"])
            if change.get("parameters") is not None:
                track["parameters"] = change["parameters"]
            updates.append({"type": track["type"], "from": track["from"], "parameters": track.get("parameters")})
        subscription.info["from"] = tracks[0]["from"] if tracks else subscription.info.get("from")
        subscription.save(update_fields=["media", "info"])
    outbox.to_node(subscription.domain_id, protocol.UpdateSubscription(subscription_id, updates))
    return subscription


@engine_write
def transport_signal(outbox: Outbox, *, owner: str, transport_id: str, signaling: dict) -> None:
    """Pass a client's ``soac`` to the node negotiating its transport (a live session of theirs is on it)."""
    row = (
        Publication.objects.filter(transport_id=transport_id, participant_id=owner).first()
        or Subscription.objects.filter(transport_id=transport_id, participant_id=owner).first()
    )
    if row is None:
        raise TransportNotFound()
    outbox.to_node(row.domain_id, protocol.Signal(owner, transport_id, signaling))


@engine_write
def publication_set_track_status(
    outbox: Outbox, *, publication_id: str, kinds: set[str], status: str, owner: str | None = None
) -> Publication:
    """Mute (``inactive``) / unmute (``active``): stop/resume forwarding, notify ``stream update``."""
    with transaction.atomic():
        publication = _owned(Publication, publication_id, owner, lock=True)
        _set_track_status(publication, kinds, status)
    outbox.to_node(
        publication.domain_id, protocol.SetPublicationActive(publication_id, sorted(kinds), status == "active")
    )
    present = {track["type"] for track in publication.media.get("tracks", [])}
    for kind in sorted(kinds & present):
        _stream_update(outbox, publication, {"field": f"{kind}.status", "value": status})
    return publication


@engine_write
def publication_update_in_views(
    outbox: Outbox, *, publication_id: str, view: str, add: bool, owner: str | None = None
) -> Publication:
    """Mix the publication into ``view`` (or take it out); the room hears the whole stream again."""
    with transaction.atomic():
        publication = _owned(Publication, publication_id, owner, lock=True)
        if publication.kind == "mixed":
            raise StreamNotFound("A mixed stream cannot be mixed")
        if not _view(publication.domain.config, view):
            raise ViewNotFound(f"View {view} not found")
        views = [v for v in publication.info.get("inViews", []) if v != view]
        if add:
            views.append(view)
        publication.info["inViews"] = views
        publication.save(update_fields=["info"])
    _stream_update(outbox, publication, {"field": ".", "value": selectors.publication_stream(publication)})
    _mixed_refresh(outbox, publication.domain_id, view)
    return publication


@engine_write
def publication_ready(outbox: Outbox, *, publication_id: str, formats: dict[str, dict]) -> Publication | None:
    """The node connected the publisher: record its formats by mid and announce ``stream add``."""
    publication = Publication.objects.select_related("domain").filter(id=publication_id).first()
    if publication is None:
        return None
    for track in publication.media.get("tracks", []):
        if track["mid"] in formats:
            track.update(formats[track["mid"]])
        track["optional"] = track_optional(publication.domain.config.get("mediaOut"), track)
    publication.ready = True
    publication.save(update_fields=["media", "ready"])
    outbox.notify_domain(
        publication.domain_id,
        "stream",
        {"id": publication.id, "status": "add", "data": selectors.publication_stream(publication)},
        gate="streamChange",
    )
    views = [publication.info["label"]] if publication.kind == "mixed" else publication.info.get("inViews", [])
    for label in views:
        _mixed_refresh(outbox, publication.domain_id, label)
    return publication


@engine_write
def publication_parameters(outbox: Outbox, *, publication_id: str, parameters: dict[str, dict]) -> Publication | None:
    """The node measured video parameters (by mid): record them and send the whole stream if announced."""
    with transaction.atomic():
        publication = Publication.objects.select_for_update().select_related("domain").filter(id=publication_id).first()
        if publication is None:
            return None
        if publication.kind == "mixed":
            return publication  # a mixed stream has its view's parameters
        for track in publication.media.get("tracks", []):
            if track["mid"] in parameters:
                track["parameters"] = parameters[track["mid"]]
                track["optional"] = track_optional(publication.domain.config.get("mediaOut"), track)
        publication.save(update_fields=["media"])
    if publication.ready:
        _stream_update(outbox, publication, {"field": ".", "value": selectors.publication_stream(publication)})
    return publication


@engine_write
def publication_delete(outbox: Outbox, *, publication_id: str, owner: str | None = None) -> Publication:
    """Unpublish: delete it and the subscriptions to it; the node closes all their transports.

    The stream of a job (a streaming-in) deleted by an operator (no ``owner``) stops the job too.
    """
    publication = _owned(Publication, publication_id, owner)
    with transaction.atomic():
        Subscription.objects.filter(domain_id=publication.domain_id, info__from=publication_id).delete()
        Publication.objects.filter(id=publication_id).delete()
        if owner is None and publication.participant.job_id and publication.participant.job.kind in JOB_STREAM_KINDS:
            job_stop(job_id=publication.participant.job_id)
    outbox.to_node(publication.domain_id, protocol.EndSession(publication_id))
    _stream_removed(outbox, publication.domain_id, publication_id)
    for label in publication.info.get("inViews", []):
        _mixed_refresh(outbox, publication.domain_id, label)
    return publication


def subscription_ready(*, subscription_id: str) -> None:
    Subscription.objects.filter(id=subscription_id).update(ready=True)


@engine_write
def subscription_set_track_status(
    outbox: Outbox, *, subscription_id: str, kinds: set[str], status: str, owner: str | None = None
) -> Subscription:
    """Pause (``inactive``) / resume (``active``) forwarding to one subscription."""
    with transaction.atomic():
        subscription = _owned(Subscription, subscription_id, owner, lock=True)
        _set_track_status(subscription, kinds, status)
    outbox.to_node(
        subscription.domain_id, protocol.SetSubscriptionPaused(subscription_id, sorted(kinds), status != "active")
    )
    return subscription


@engine_write
def subscription_delete(outbox: Outbox, *, subscription_id: str, owner: str | None = None) -> Subscription:
    subscription = _owned(Subscription, subscription_id, owner)
    subscription.delete()
    outbox.to_node(subscription.domain_id, protocol.EndSession(subscription_id))
    return subscription


@engine_write
def session_failed(outbox: Outbox, *, session_id: str, kind: protocol.SessionKind) -> None:
    """A transport failed: its session ends as if it had been unpublished/unsubscribed."""
    end = publication_delete if kind == "publication" else subscription_delete
    with contextlib.suppress(StreamNotFound, SubscriptionNotFound):
        end.body(outbox, **{f"{kind}_id": session_id})


@engine_write
def text_send(outbox: Outbox, *, participant_id: str, to: str, message: object) -> None:
    """A participant's ``text``: to ``all`` of its room, or to one participant of it."""
    sender = Participant.objects.filter(id=participant_id).first()
    if sender is None:
        raise ParticipantNotFound()
    data = {"from": participant_id, "to": "all" if to == "all" else "me", "message": message}
    if to == "all":
        outbox.notify_domain(sender.domain_id, "text", data)
    elif Participant.objects.filter(id=to, domain_id=sender.domain_id).exists():
        outbox.notify_participant(to, "text", data)
    else:
        raise TextTargetNotFound(f"Target participant does NOT exist: {to}")


@engine_write
def analytics_event(outbox: Outbox, *, participant_id: str, event: dict) -> None:
    """An analytics job's algorithm saw ``event``: notify the room (``analytics``: ``{id, event}``,
    ``id`` the analytics' and its stream's). Only an analytics job's participant announces."""
    participant = Participant.objects.select_related("job").filter(id=participant_id).first()
    if participant is None:
        raise ParticipantNotFound()
    if participant.job is None or participant.job.kind != "analytics":
        raise Unauthorized("Only an analytics job announces analytics events")
    outbox.notify_domain(
        participant.domain_id, "analytics", {"id": participant.job_id, "event": event}, exclude=participant_id
    )


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


# ---------------------------------------------------------------------------------------
# Mixed streams (MCU). A view's mixer is a media job (``streamengine/jobs/mixing.py``) that
# joins the room and publishes the view's stream ``<roomId>-<label>``; the room's state —
# which streams are in the view, the layout, the active input — is kept here, on the mixed
# publication's ``info`` (the OWT MixedInfo), and the mixer renders what it says.


def _views(config: dict) -> list[dict]:
    return [view for view in config.get("views") or [] if isinstance(view, dict) and view.get("label")]


def _view(config: dict, label: str) -> dict:
    return next((view for view in _views(config) if view["label"] == label), {})


def _mixed_media(media: dict, view: dict) -> None:
    """A mixed stream's tracks carry the view's format and parameters."""
    for track in media["tracks"]:
        settings_of = view.get(track["type"]) or {}
        if settings_of.get("format"):
            track["format"] = dict(settings_of["format"])
        if track["type"] == "video" and settings_of.get("parameters"):
            track["parameters"] = dict(settings_of["parameters"])


def _mixers_start(domain: Domain) -> None:
    """A user joined: each view of the room gets its mixer unless one runs (the caller holds
    the domain's row lock, so two joins at once start one mixer)."""
    if not settings.MIXER_AUTOSTART:
        return
    running = {job.spec.get("view") for job in jobs_live(domain_id=domain.id, kind="mixing")}
    for view in _views(domain.config):
        if view["label"] not in running:
            job_create(domain_id=domain.id, kind="mixing", spec={"view": view["label"]}, cost=MIXING_JOB_COST)


def _take_over_mixed(outbox: Outbox, domain_id: str, publication_id: str) -> None:
    """A new mixer of a view replaces a previous one that has not unpublished yet."""
    if Publication.objects.filter(id=publication_id).exists():
        Subscription.objects.filter(domain_id=domain_id, info__from=publication_id).delete()
        Publication.objects.filter(id=publication_id).delete()
        outbox.to_node(domain_id, protocol.EndSession(publication_id))
        _stream_removed(outbox, domain_id, publication_id)


def _mixed_refresh(outbox: Outbox, domain_id: str, label: str, *, pinned: list[dict] | None = None) -> None:
    """Recompute the view's layout from its inputs; announce ``video.layout`` if it changed.

    ``pinned``: a layout the operator set (LayoutUpdate), kept as the view's regions from now on.
    """
    with transaction.atomic():
        mixed = (
            # Only the publication's row is locked: PostgreSQL cannot lock the nullable side of a join.
            Publication.objects.select_for_update(of=("self",))
            .select_related("domain", "participant__job")
            .filter(id=selectors.mixed_stream_id(domain_id, label), kind="mixed")
            .first()
        )
        if mixed is None:
            return
        job = mixed.participant.job if mixed.participant else None
        view = _view(mixed.domain.config, label)
        video = view.get("video") or {}
        inputs = selectors.view_inputs(domain_id=domain_id, label=label, kind="video")
        active = mixed.info.get("activeInput")
        keep_primary = (
            video.get("keepActiveInputPrimary")
            or (video.get("layout") or {}).get("templates", {}).get("base") == "lecture"
        )
        primary = active if keep_primary and active in inputs else None
        if pinned is not None and job is not None:
            job.spec = {**job.spec, "pinned": True}
            job.save(update_fields=["spec"])
        if pinned is not None or (job is not None and job.spec.get("pinned")):
            layout = layouts.assign_pinned(pinned or mixed.info.get("layout", []), inputs, primary=primary)
        else:
            templates = (video.get("layout") or {}).get("templates") or {}
            expanded = layouts.expand(
                templates.get("base", "fluid"), video.get("maxInput", 16), templates.get("custom"), rational=True
            )
            layout = layouts.assign(
                expanded, inputs[: video.get("maxInput", 16)], mixed.info.get("layout", []), primary=primary
            )
        if layout == mixed.info.get("layout"):
            return
        mixed.info["layout"] = layout
        mixed.save(update_fields=["info"])
    if mixed.ready:
        _stream_update(outbox, mixed, {"field": "video.layout", "value": layout})


@engine_write
def mixed_set_active_input(outbox: Outbox, *, publication_id: str, stream_id: str, owner: str | None = None) -> None:
    """The mixer (``owner``: its participant) heard a new loudest speaker: announce
    ``activeInput`` (and re-lay out when the view keeps the active input in the primary region)."""
    with transaction.atomic():
        mixed = _owned(Publication, publication_id, owner, lock=True)
        if mixed.kind != "mixed":
            raise StreamNotFound("Not a mixed stream")
        if mixed.info.get("activeInput") == stream_id:
            return
        mixed.info["activeInput"] = stream_id
        mixed.save(update_fields=["info"])
    if mixed.ready:
        _stream_update(outbox, mixed, {"field": "activeInput", "value": stream_id})
    _mixed_refresh(outbox, mixed.domain_id, mixed.info["label"])


@engine_write
def mixed_set_layout(outbox: Outbox, *, publication_id: str, layout: list[dict]) -> Publication:
    """LayoutUpdate (REST ``replace /info/layout``): the regions given, with their streams,
    become the view's layout (areas already in the ``{numerator, denominator}`` form)."""
    mixed = Publication.objects.filter(id=publication_id, kind="mixed").first()
    if mixed is None:
        raise StreamNotFound()
    _mixed_refresh(outbox, mixed.domain_id, mixed.info["label"], pinned=layout)
    return Publication.objects.get(id=publication_id)


@engine_write
def mixed_set_region(
    outbox: Outbox, *, publication_id: str, stream_id: str, region_id: str, owner: str | None = None
) -> Publication:
    """Put ``stream_id`` into region ``region_id`` (RegionUpdate, ``set-region``); whoever was
    there takes the stream's old region. The layout is pinned from then on."""
    mixed = Publication.objects.filter(id=publication_id, kind="mixed").first()
    if mixed is None:
        raise StreamNotFound()
    stream = _owned(Publication, stream_id, owner)
    if mixed.info["label"] not in stream.info.get("inViews", []):
        raise StreamNotFound(f"Stream {stream_id} is not in view {mixed.info['label']}")
    layout = [dict(entry) for entry in mixed.info.get("layout", [])]
    target = next((entry for entry in layout if entry["region"]["id"] == str(region_id)), None)
    if target is None:
        raise InvalidRegion(f"Region {region_id} is not in the layout of view {mixed.info['label']}")
    previous = next((entry for entry in layout if entry.get("stream") == stream_id), None)
    if previous is not None and previous is not target:
        if target.get("stream"):
            previous["stream"] = target["stream"]
        else:
            del previous["stream"]
    target["stream"] = stream_id
    ordered = [{**({"stream": e["stream"]} if "stream" in e else {}), "region": e["region"]} for e in layout]
    _mixed_refresh(outbox, mixed.domain_id, mixed.info["label"], pinned=ordered)
    return Publication.objects.get(id=publication_id)


def processor_mixing(*, domain_id: str, media: str, attributes: dict) -> MediaJob:
    """A stream-engine video/audio mixing processor: the domain's view ``attributes["view"]``
    gets those settings (added if new) and its mixer job runs (the same job for both media).

    Settings that shape the picture (resolution, codec, background) apply when the mixer
    starts; the layout applies at once.
    """
    with transaction.atomic():
        domain = Domain.objects.select_for_update().get(id=domain_id)
        views = [dict(view) for view in _views(domain.config)]
        view = next((v for v in views if v["label"] == attributes["view"]), None)
        if view is None:
            view = {"label": attributes["view"]}
            views.append(view)
        settings_of = dict(view.get(media) or {})
        for key, value in attributes.items():
            if key in ("id", "view"):
                continue
            if key == "layout" and "templates" in value:
                # The stream API gives the templates themselves: they are the view's only ones.
                value = {**value, "templates": {"base": "void", "custom": value["templates"]}}
            settings_of[key] = value
        view[media] = settings_of
        domain.config = {**domain.config, "views": views}
        domain.save(update_fields=["config"])
        running = [job for job in jobs_live(domain_id=domain_id, kind="mixing") if job.spec["view"] == view["label"]]
        if running:
            return running[0]
        return job_create(domain_id=domain_id, kind="mixing", spec={"view": view["label"]}, cost=MIXING_JOB_COST)
