"""``manage.py owt_bootstrap``: create the super service once and print its id and key."""

from django.core.management.base import BaseCommand

from conference.services import service_bootstrap_super


class Command(BaseCommand):
    help = "Create the OWT super service if missing and print its id and key (idempotent)."

    def handle(self, *args, **options) -> None:
        service, key = service_bootstrap_super()
        self.stdout.write(f"OWT super service id: {service.id}")
        self.stdout.write(f"OWT super service key: {key}")
