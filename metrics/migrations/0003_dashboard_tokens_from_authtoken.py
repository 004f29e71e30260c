"""Existing DRF authtoken keys keep working as dashboard tokens, now stored only as digests.

The plaintext rows are deleted: only the metrics dashboard authenticated with them.
"""

import hashlib

from django.db import migrations


def hash_existing_tokens(apps, schema_editor):
    Token = apps.get_model("authtoken", "Token")
    DashboardToken = apps.get_model("metrics", "DashboardToken")
    for token in Token.objects.all():
        digest = hashlib.sha256(token.key.encode()).hexdigest()
        DashboardToken.objects.get_or_create(
            digest=digest, defaults={"user_id": token.user_id, "created_at": token.created}
        )
    Token.objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0002_key_generation_hashed_tokens"),
        ("authtoken", "0004_alter_tokenproxy_options"),
    ]

    operations = [migrations.RunPython(hash_existing_tokens, migrations.RunPython.noop)]
