"""portal_stats settings: defaults, overrides from the environment, misspelt names."""

import os
import subprocess
import sys

from django.conf import settings as django_settings

from portal_stats import conf


def test_environment_overrides_reach_the_settings():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "owt.settings", "PORTAL_STATS_MAX_BATCH": "7"}
    code = (
        "import django; django.setup(); from portal_stats import conf; print(conf.get('MAX_BATCH'), conf.get('GRACE'))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=django_settings.BASE_DIR, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["7", str(conf.DEFAULTS["GRACE"])]


def test_unknown_names_are_reported(settings):
    settings.PORTAL_STATS = {"MAX_BATCH": 3}
    assert conf.check_names() == []
    settings.PORTAL_STATS = {"LOOKBAK": 3}
    [warning] = conf.check_names()
    assert warning.id == "portal_stats.W001" and "PORTAL_STATS_LOOKBAK" in warning.msg
