"""``manage.py owt_reencrypt_secrets``: move every stored secret to the current SECRET_KEY."""

from django.core.management.base import BaseCommand, CommandError

from conference.services import secrets_reencrypt
from owt.crypto import UndecryptableSecret


class Command(BaseCommand):
    help = (
        "Encrypt the stored service keys and SIP passwords again under the current SECRET_KEY "
        "(after a rotation; the old key can then leave SECRET_KEY_FALLBACKS). All or nothing."
    )

    def handle(self, *args, **options) -> None:
        try:
            count = secrets_reencrypt()
        except UndecryptableSecret as exc:
            raise CommandError(
                f"{exc}; nothing was re-encrypted (add the missing old key to SECRET_KEY_FALLBACKS)"
            ) from exc
        self.stdout.write(f"re-encrypted {count} stored secrets under the current SECRET_KEY")
