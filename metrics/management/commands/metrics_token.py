"""``manage.py metrics_token USERNAME``: a dashboard API token, printed once (only its digest is kept)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from metrics.services.dashboard import dashboard_token_create


class Command(BaseCommand):
    help = "Create a dashboard API token for a user (Authorization: Token <key>) and print its key."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")

    def handle(self, *args: Any, username: str, **options: Any) -> None:
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}")
        self.stdout.write(dashboard_token_create(user=user))
