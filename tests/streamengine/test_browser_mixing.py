"""The MCU in real browsers: two Chromium pages publish, a third watches the room's mix.

The platform runs as processes (``running_platform``: daphne portal, data worker, beat)
with ``MIXER_AUTOSTART`` on and one media worker, so the first join starts the mixer job
of the room's view ("common"). Alice and Bob publish the fake camera/microphone through
the sample join page and watch nothing (``?watch=none``: no decoding on their pages);
Carol fills the join form by hand, publishes nothing and picks "the room's mix". Her page
must subscribe to ``<roomId>-common`` only and decode it: ``framesDecoded`` grows at the
view's 640x480, the video element plays, and the picture is the 2x2 fluid layout (two
camera pictures on top, the empty regions black). The REST API's mixed stream must lay
out exactly the two browser streams. Then Carol switches to each participant's stream (the
mix subscription ends, the two cameras come), everyone leaves and the mix goes. A
screenshot of Carol's page is written to ``test-artifacts/``.

Run it in a loopback-only network namespace (bin/test does): see test_browser_e2e.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlencode

import pytest

from owt.localserver import ROOT, Platform, running_platform
from tests.streamengine.helpers import IN_LOOPBACK_NAMESPACE, wait_until

pytestmark = [
    pytest.mark.browser,
    IN_LOOPBACK_NAMESPACE,
]

ARTIFACTS = ROOT / "test-artifacts"

# Mean luma (0..255) of each quarter of the mix's video element, drawn on a canvas.
QUARTERS = """
() => {
  const video = document.querySelector("#mix video");
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(video, 0, 0);
  const mean = (x, y) => {
    const { data } = context.getImageData(x, y, canvas.width / 2, canvas.height / 2);
    let sum = 0;
    for (let i = 0; i < data.length; i += 4) sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
    return sum / (data.length / 4);
  };
  const [w, h] = [canvas.width / 2, canvas.height / 2];
  return { topLeft: mean(0, 0), topRight: mean(w, 0), bottomLeft: mean(0, h), bottomRight: mean(w, h) };
}
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory.mktemp("browser-mixing"), MIXER_AUTOSTART="1") as running:
        running.start_worker("media-1")
        yield running


def mix_stats(page, mixed: str) -> dict:
    """The inbound video stats of the page's subscription to ``mixed`` (zeros before its first packet)."""
    rows = page.evaluate("() => window.owtDemo.videoStats()")
    return next((row for row in rows if row["streamId"] == mixed), {"framesDecoded": 0})


def test_two_browsers_publish_and_a_third_watches_the_mix(platform, chromium):
    api = platform.api
    room = api.create_room("browser-mixing")["id"]
    mixed = f"{room}-common"
    contexts = [
        chromium.new_context(),
        chromium.new_context(),
        chromium.new_context(viewport={"width": 1000, "height": 1100}),
    ]
    console: list[str] = []
    try:
        alice, bob, carol = (context.new_page() for context in contexts)
        for page in (alice, bob, carol):
            page.on("console", lambda message: console.append(message.text))
            page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))

        # Alice and Bob join at once (autojoin) with camera and microphone, and watch nothing.
        for page, user in ((alice, "alice"), (bob, "bob")):
            token = api.create_token(room, user=user, role="presenter")
            page.goto(f"{platform.url}/demo/?{urlencode({'token': token, 'autojoin': '1', 'watch': 'none'})}")
        for page in (alice, bob):
            page.wait_for_function("() => window.owtDemo && window.owtDemo.publication", timeout=30000)
        published = {page.evaluate("() => window.owtDemo.publication.id") for page in (alice, bob)}

        # Carol fills the form by hand: no publishing, the room's mix only.
        carol.goto(f"{platform.url}/demo/")
        carol.fill("#token", api.create_token(room, user="carol", role="viewer"))
        carol.uncheck("#publish-audio")
        carol.uncheck("#publish-video")
        carol.select_option("#watch", "mix")
        carol.click("#join")
        # The mixer's stream comes once the media worker runs the job (the first join started it).
        carol.wait_for_function(f"() => window.owtDemo.subscriptions.has('{mixed}')", timeout=60000)

        first = wait_until(lambda: mix_stats(carol, mixed)["framesDecoded"], 30, f"a decoded mix frame; {console}")
        wait_until(lambda: mix_stats(carol, mixed)["framesDecoded"] >= first + 30, 30, "the mix to keep decoding")
        stats = mix_stats(carol, mixed)
        assert (stats["frameWidth"], stats["frameHeight"]) == (640, 480)
        carol.wait_for_function(
            "() => { const v = document.querySelector('#mix video');"
            " return v && !v.paused && v.currentTime > 0 && v.videoWidth === 640 && v.videoHeight === 480; }",
            timeout=20000,
        )

        # fluid, 2 inputs: the 2x2 template, the cameras on top, the bottom regions black.
        def two_on_top() -> dict | None:
            quarters = carol.evaluate(QUARTERS)
            on_top = min(quarters["topLeft"], quarters["topRight"]) > 40
            return quarters if on_top and max(quarters["bottomLeft"], quarters["bottomRight"]) < 20 else None

        wait_until(two_on_top, 20, "two camera pictures on top of the mix")

        # Only the mix: nothing in the participants' list of streams, and nothing on the publishers' pages.
        assert carol.evaluate("() => [...window.owtDemo.subscriptions.keys()]") == [mixed]
        assert carol.evaluate("() => document.querySelectorAll('#remote figure').length") == 0
        assert carol.inner_text("#mix figcaption") == "the room's mix (common)"
        assert "subscribed to the room's mix (common)" in carol.inner_text("#log")
        for page in (alice, bob):
            assert page.evaluate("() => window.owtDemo.subscriptions.size") == 0
        ARTIFACTS.mkdir(exist_ok=True)
        carol.screenshot(path=str(ARTIFACTS / "mix-subscriber.png"), full_page=True)

        # REST: the mixed stream lays out exactly the two browser streams.
        def mix_info() -> dict | None:
            streams = {s["id"]: s for s in api.request("GET", f"/v1/rooms/{room}/streams")}
            mix = streams.get(mixed)
            return mix if mix and {entry["stream"] for entry in mix["info"]["layout"]} == published else None

        mix = wait_until(mix_info, 10, "the mixed stream's layout to list both streams")
        assert mix["type"] == "mixed" and mix["info"]["label"] == "common"
        assert len(mix["info"]["layout"]) == 2
        assert mix["media"]["video"]["parameters"]["resolution"] == {"width": 640, "height": 480}
        assert all(page.evaluate("() => window.owtDemo.errors") == [] for page in (alice, bob, carol))

        # Watching each participant instead: the mix subscription ends, the two cameras come.
        carol.select_option("#watch", "participants")
        carol.wait_for_function(
            "(ids) => { const keys = [...window.owtDemo.subscriptions.keys()].sort();"
            " return keys.length === 2 && keys.every((key, i) => key === ids[i]); }",
            arg=sorted(published),
            timeout=30000,
        )
        assert carol.evaluate("() => document.querySelectorAll('#mix figure').length") == 0
        assert carol.evaluate("() => document.querySelectorAll('#remote figure').length") == 2

        # Everyone leaves (a closed page would be parked for a relogin): the mixer's stream
        # goes once the room has been empty for MIXER_IDLE_SECONDS, and its job ends.
        for page in (alice, bob, carol):
            page.click("#leave")
        wait_until(lambda: api.request("GET", f"/v1/rooms/{room}/participants") == [], 10, "everyone to leave")
        wait_until(lambda: api.request("GET", f"/v1/rooms/{room}/streams") == [], 20, "the mixed stream to go")
    finally:
        for context in contexts:
            context.close()
