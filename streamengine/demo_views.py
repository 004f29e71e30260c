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

from streamengine import services


def page_config(request: HttpRequest) -> dict:
    """What the page's JavaScript needs: ICE servers (never undefined) and whether to join at once."""
    return {
        "iceServers": json.loads(settings.ICE_SERVERS_JSON),
        "autojoin": request.GET.get("autojoin") == "1",
        # null: connect to the portal named in the token, as OWT clients do.
        "signalingUrl": None,
    }


def quick_demo_allowed(request: HttpRequest) -> bool:
    if settings.DEBUG or getattr(settings, "OWT_DEMO_OPEN", False):
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
        "streamengine/demo/join.html",
        {"token": request.GET.get("token", ""), "config": page_config(request)},
    )


@quick_demo_only
@require_GET
def quick_join(request: HttpRequest, room_id: str) -> HttpResponse:
    """Mint a fresh one-time token for the room and open the join page with it.

    Tokens expire within minutes and work once, so the quick demo hands out this link
    (open it in as many tabs as you like) rather than tokens.
    """
    token = services.token_create(
        domain_id=room_id,
        user=request.GET.get("user") or f"guest-{secrets.token_hex(3)}",
        role=request.GET.get("role") or "presenter",
        host=request.get_host(),
        secure=request.is_secure(),
    )
    return HttpResponseRedirect(f"{reverse('demo:join')}?{urlencode({'token': token, 'autojoin': '1'})}")


@quick_demo_only
@require_http_methods(["GET", "POST"])
def quick_page(request: HttpRequest) -> HttpResponse:
    return render(request, "streamengine/demo/quick.html", {})
