"""Shared fixtures. Tests run on the embedded defaults unless DATABASE_URL etc. say otherwise."""

import os
from pathlib import Path

# Rooms are mixed only in the tests of mixing (tests/streamengine/test_mixing*.py turn it on
# for their platform): elsewhere a mixer per joined room would only take the workers' CPU.
os.environ.setdefault("MIXER_AUTOSTART", "0")

import pytest


@pytest.fixture(scope="session", autouse=True)
def static_root():
    """WhiteNoise warns about a missing STATIC_ROOT in every portal (settings no longer make it)."""
    from django.conf import settings

    Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)


@pytest.fixture(scope="session", autouse=True)
def connections_close_after_each_request():
    """In this process, database connections close after each request, as before DB_CONN_MAX_AGE
    kept them: the in-process portal's HTTP threads (owt/http.py) would hold theirs past the last
    test, and PostgreSQL refuses to drop a test database someone is connected to. (The settings
    are loaded before this file, so the environment cannot say it.)"""
    from django.db import connections

    for alias in connections:
        connections[alias].settings_dict["CONN_MAX_AGE"] = 0


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--allow-loopback-in-peer-connection",
    "--disable-features=WebRtcHideLocalIpsWithMdns",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
]


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium (never Playwright's own download), with the flags WebRTC on loopback needs."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(autouse=True)
def fresh_throttle_history():
    """Each test starts with no request counted by the rate limits (owt.throttling), which
    would otherwise carry over from earlier tests in the same process."""
    from django.conf import settings
    from django.core.cache import caches

    caches[settings.OWT_THROTTLE_CACHE].clear()


@pytest.fixture
def loopback_client():
    """This process's aiortc clients gather loopback candidates only, like the portal's node
    (tests against a portal in another process: daphne, the platform's processes)."""
    from streamengine.media.ice import use_host_addresses

    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses([])
