"""Sample pages served by the portal: a join page (any token) and a quick demo (room + tokens).

The join page is harmless without a token and open to everyone. The quick demo creates
rooms and mints tokens without MAuth, so it is only for a staff session (Django admin
login), or for everyone when ``DEBUG`` or ``OWT_DEMO_OPEN`` is on (a developer's machine,
tests); otherwise anonymous visitors are sent to the admin login and others get 403.
"""

from __future__ import annotations

import json
import secrets
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

# The sample pages are a client of the whole platform (rooms come from the conference
# app), not part of the engine; they only live here to be served with the JS client.
from conference import services as conference_services
from conference.selectors import room_get
from owt.errors import ApiError
from streamengine import services

# What the join page subscribes to (``?watch=``): every stream, only the room's mix (the
# mixed streams of its views), only the participants' own streams, or nothing.
WATCH_CHOICES = ("all", "mix", "participants", "none")


def page_config(request: HttpRequest) -> dict:
    """What the page's JavaScript needs: ICE servers (never undefined), whether to join at once,
    what to watch, whether to publish (``?publish=0``: watch only) and the viewer layout
    (``?view=1``: only the videos, filling the window; what a web egress task records)."""
    watch = request.GET.get("watch")
    return {
        "iceServers": json.loads(settings.ICE_SERVERS_JSON),
        "autojoin": request.GET.get("autojoin") == "1",
        "watch": watch if watch in WATCH_CHOICES else "all",
        "publish": request.GET.get("publish") != "0",
        "view": request.GET.get("view") == "1",
        # null: connect to the portal named in the token, as OWT clients do.
        "signalingUrl": None,
    }


def quick_demo_allowed(request: HttpRequest) -> bool:
    if settings.DEBUG or settings.OWT_DEMO_OPEN:
        return True
    user = request.user
    return bool(user and user.is_authenticated and user.is_staff)


def quick_demo_only(view):
    @wraps(view)
    def guarded(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not quick_demo_allowed(request):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path(), login_url=reverse("admin:login"))
            raise PermissionDenied("The quick demo needs a staff session")
        return view(request, *args, **kwargs)

    return guarded


@require_GET
def join_page(request: HttpRequest) -> HttpResponse:
    return render(
        request,
        "conference/demo/join.html",
        {"token": request.GET.get("token", ""), "config": page_config(request)},
    )


def demo_service():
    """Quick-demo rooms belong to the super service, whose key the operator already has
    (``manage.py owt_bootstrap``), so they can be inspected through the management API."""
    service, _ = conference_services.service_bootstrap_super()
    return service


@quick_demo_only
@require_GET
def quick_join(request: HttpRequest, room_id: str) -> HttpResponse:
    """Mint a fresh one-time token for a quick-demo room and open the join page with it.

    Tokens expire within minutes and work once, so the quick demo hands out this link
    (open it in as many tabs as you like) rather than tokens.
    """
    try:
        room = room_get(service=demo_service(), room_id=room_id)
        token = services.token_create(
            domain_id=room.id,
            user=request.GET.get("user") or f"guest-{secrets.token_hex(3)}",
            role=request.GET.get("role") or "presenter",
            host=request.get_host(),
            secure=request.is_secure(),
        )
    except ApiError as exc:
        return render(request, "conference/demo/quick.html", {"error": exc.message}, status=exc.status)
    return HttpResponseRedirect(f"{reverse('demo:join')}?{urlencode({'token': token, 'autojoin': '1'})}")


@quick_demo_only
@require_http_methods(["GET", "POST"])
def quick_page(request: HttpRequest) -> HttpResponse:
    """GET: a form; POST: create a room (default settings) and show links that join it."""
    if request.method == "GET":
        return render(request, "conference/demo/quick.html", {})
    name = request.POST.get("name", "").strip() or "Quick demo"
    try:
        room = conference_services.room_create(service=demo_service(), name=name, options={})
    except ApiError as exc:
        return render(request, "conference/demo/quick.html", {"error": exc.message}, status=exc.status)
    join_url = request.build_absolute_uri(reverse("demo:quick-join", args=[room.id]))
    roles = [role.get("role") for role in room.config.get("roles", []) if role.get("role")]
    return render(request, "conference/demo/quick.html", {"room": room, "join_url": join_url, "roles": roles})
