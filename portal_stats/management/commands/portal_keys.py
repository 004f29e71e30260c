"""Issue or rotate a portal client's keys from the shell (the admin's client actions do the same)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from portal_stats import services
from portal_stats.models import Client, ClientKey


class Command(BaseCommand):
    help = (
        "Print a new write and/or read key for the client with this uuid (keys are stored hashed, so "
        "this is the only time they are shown). Old keys stay valid unless --rotate."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("uuid", help="the client's uuid")
        parser.add_argument("--create", metavar="NAME", help="register the client with this name if it is new")
        parser.add_argument("--kind", choices=[ClientKey.WRITE, ClientKey.READ, "both"], default="both")
        parser.add_argument("--rotate", action="store_true", help="revoke the client's other keys of that kind")

    def handle(self, *args, **options) -> None:
        if options["create"]:
            client = services.client_get_or_insert(uuid=options["uuid"], name=options["create"])[0]
        else:
            client = Client.objects.filter(uuid=options["uuid"]).first()
            if client is None:
                raise CommandError(f"No client with uuid {options['uuid']!r} (give --create NAME to register it)")
        kinds = [ClientKey.WRITE, ClientKey.READ] if options["kind"] == "both" else [options["kind"]]
        for kind in kinds:
            key = services.client_key_issue(client=client, kind=kind, revoke_others=options["rotate"])
            self.stdout.write(f"{kind}: {key}")
