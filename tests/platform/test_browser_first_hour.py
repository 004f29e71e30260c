"""A new user's first hour, in headless Chromium: every page the landing page links works offline.

One portal (daphne, fresh SQLite, summaries built in-process) and one browser session walk:
the landing page, the admin (index, a room's form, live state, rollups), Swagger UI and ReDoc
rendered with their operations, the peermetrics dashboard from its first run (organization and
app created on the page) to the charts of a real SDK call recorded by ``browser_call.html``,
and the Viblast statistics of a ``simulate_viewers`` audience. Screenshots go to test-artifacts/.

Run inside a loopback-only namespace (bin/test does)::

    unshare -n sh -c 'ip link set lo up && python -m pytest -m browser tests/platform/test_browser_first_hour.py'
"""

from __future__ import annotations

from pathlib import Path

import pytest

from owt.localserver import ROOT, manage, portal_env, running_portal
from tests.metrics.test_browser import page_origin  # noqa: F401  (serves browser_call.html from another origin)

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts"
SAMPLES = 3

SETUP = """
from django.contrib.auth import get_user_model
from django.core.management import call_command
call_command("migrate", verbosity=0)
from conference.services import room_create, service_bootstrap_super
get_user_model().objects.create_superuser("admin", "admin@localhost", "pw")
print(room_create(service=service_bootstrap_super()[0], name="standup", options={"participantLimit": 5}).id)
"""


@pytest.fixture
def portal(tmp_path: Path):
    # Open portal stats: the simulated players post without a write key (one command less).
    env = portal_env(tmp_path, CELERY_TASK_ALWAYS_EAGER="1", PORTAL_STATS_OPEN="1")
    room_id = manage(env, "shell", "-c", SETUP).split()[-1]
    with running_portal(env, migrate=False, log_path=tmp_path / "daphne.log") as running:
        yield {"base": running.url, "env": env, "room": room_id}


def shot(page, name: str, *, full_page: bool = True) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"first-hour-{name}.png"), full_page=full_page)


def swagger_tags(page) -> set[str]:
    """The tags Swagger UI rendered (each with its operations listed); it renders a tag only once
    it is scrolled into view, so scroll down the page."""
    seen: set[str] = set()
    for _ in range(30):
        seen |= set(page.eval_on_selector_all(".opblock-tag", "tags => tags.map(t => t.dataset.tag)"))
        if page.evaluate("innerHeight + scrollY >= document.body.scrollHeight - 10"):
            break
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(200)
    return seen


def drawn(page, selector: str) -> int:
    """Points the charts under ``selector`` have drawn (their series' data-points)."""
    return page.eval_on_selector_all(
        f"{selector} g[data-series]", "groups => groups.reduce((n, g) => n + Number(g.dataset.points), 0)"
    )


def test_first_hour(portal, page_origin, chromium):  # noqa: F811
    base = portal["base"]
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        offsite: list[str] = []
        page.on("request", lambda r: offsite.append(r.url) if not r.url.startswith(base) else None)

        # Landing page: what runs and every page.
        page.goto(f"{base}/")
        assert page.locator("#status tr[data-check]").count() == 5
        for check in ("database", "broker", "channel layer"):
            assert page.locator(f'tr[data-check="{check}"] td.ok').count() == 1, check
        shot(page, "landing")
        page.click('#links a[href="/admin/"]')

        # Admin: sign in, the index, a room's form, the live state, the rollups.
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", "pw")
        page.click("input[type=submit]")
        assert page.locator("text=Portal stats (Viblast P2P CDN)").count() == 1
        assert page.locator("a:has-text('Room tokens')").count() >= 1
        shot(page, "admin")
        page.goto(f"{base}/admin/conference/room/{portal['room']}/change/")
        assert page.input_value("input[name=participantLimit]") == "5"
        assert '"roles"' in page.input_value("textarea[name=other_settings]")
        shot(page, "admin-room")
        for model in ("streamengine/node", "streamengine/participant", "portal_stats/viewerreport"):
            assert page.goto(f"{base}/admin/{model}/").status == 200, model

        # Swagger UI and ReDoc from the portal's own files, operations rendered.
        page.goto(f"{base}/api/docs/")
        page.wait_for_selector(".opblock-summary", timeout=30000)
        assert {"stream-engine", "peermetrics dashboard", "portal stats"} <= swagger_tags(page)
        shot(page, "swagger", full_page=False)
        page.goto(f"{base}/api/redoc/")
        page.wait_for_selector('[data-section-id^="operation/"]', timeout=30000)
        shot(page, "redoc", full_page=False)

        # peermetrics: first run on the page, then a recorded SDK call drawn.
        page.goto(f"{base}/metrics/v1/dashboard")
        page.wait_for_selector("#setup:not([hidden])")
        page.click("#setup-form button[type=submit]")
        page.wait_for_selector("#sdk-details[open]")
        api_key = page.text_content("#api-key")
        assert len(api_key) == 32 and api_key in page.text_content("#snippet")
        assert f"{base}/metrics/v1" in page.text_content("#snippet")
        # A 1 s stats interval keeps the call short (the dashboard's own API, as the page calls it).
        app_id = page.eval_on_selector("#app", "select => select.value")
        page.evaluate("id => api(`/apps/${id}`, {method: 'PUT', body: {interval: 1000}})", app_id)
        call = context.new_page()
        call.goto(f"{page_origin}/browser_call.html?api={base}/metrics/v1&key={api_key}&samples={SAMPLES}")
        result = call.evaluate("window.result")
        assert result["ok"], result.get("error")
        call.close()
        page.reload()
        page.wait_for_selector("tr.conference")
        assert page.text_content("tr.conference td:nth-child(4)") == "2"  # both people the call page lists
        page.wait_for_selector("#overview-charts g[data-series] rect")
        page.click("tr.conference")
        page.wait_for_selector("#charts g[data-series] polyline", timeout=20000)
        assert drawn(page, "#charts") >= 2 * SAMPLES
        assert drawn(page, "#timeline") == 2
        assert page.locator("#participants li").count() == 2
        shot(page, "peermetrics")

        # Viblast: a simulated audience (short ticks), aggregated as beat would, drawn for its client.
        simulate = (
            "import time; from django.core.management import call_command\n"
            f"call_command('simulate_viewers', url='{base}', viewers=200, streams=2, duration=2, interval=1, seed=1)\n"
            "now = int(time.time()); call_command('aggregate_stats', start=now - 600, end=now + 60)\n"
        )
        simulated = manage(portal["env"], "shell", "-c", simulate)
        assert "client 'sim-tv'" in simulated and "folded minutes" in simulated
        page.goto(f"{base}/portal/dashboard?client=sim-tv")
        page.wait_for_selector("#charts g[data-series]")
        assert drawn(page, "#charts") > 0
        shot(page, "viblast")
        # Nothing from another site, but for the ReDoc footer's decorative logo (it fails quietly offline).
        assert not [u for u in offsite if not u.startswith((page_origin, f"blob:{base}")) and "logo-mini" not in u]
    finally:
        context.close()
