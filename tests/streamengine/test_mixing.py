"""The MCU end to end: a mixer job per view composites the room's streams into ``<room>-common``.

Three Python clients publish solid colours (one with a loud tone, two silent); a fourth
subscribes to the mixed stream and reads the colours at the centres of the layout's
regions in the decoded pictures, while inViews, a LayoutUpdate and a RegionUpdate change
what the view shows. Portal, media worker and beat run as separate processes.
"""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from owt.localserver import running_platform
from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack
from streamengine.media.passthrough import is_keyframe
from tests.streamengine.test_media_jobs import ffprobe

pytestmark = [pytest.mark.timeout(240), pytest.mark.media, pytest.mark.worker, pytest.mark.embedded]

RED, GREEN, BLUE, BLACK = (255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 0, 0)
# Centres of the 2x2 fluid template's regions on the 640x480 mixed picture.
TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT = (160, 120), (480, 120), (160, 360), (480, 360)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running_platform(tmp_path_factory.mktemp("mixing"), MIXER_AUTOSTART="1") as running:
        running.start_worker("media-1", concurrency=2)  # the mixer and a recording of it
        yield running


def close_to(pixel: np.ndarray, colour: tuple[int, int, int], tolerance: int = 48) -> bool:
    return all(abs(int(value) - expected) <= tolerance for value, expected in zip(pixel, colour, strict=True))


async def picture_shows(track, expected: dict[tuple[int, int], tuple[int, int, int]], timeout: float = 20) -> None:
    """Decoded mixed frames until one has each ``expected`` colour at its point."""
    deadline = time.monotonic() + timeout
    seen = {}
    while time.monotonic() < deadline:
        frame = await asyncio.wait_for(track.recv(), 5)
        picture = frame.to_ndarray(format="rgb24")
        seen = {point: tuple(int(v) for v in picture[point[1], point[0]]) for point in expected}
        if all(close_to(picture[y, x], colour) for (x, y), colour in expected.items()):
            return
    pytest.fail(f"the mix never showed {expected}; last frame: {seen}")


async def mixed_notification(
    viewer: ConferenceClient, mixed: str, field: str, accept=lambda value: True, timeout: float = 20
) -> object:
    """The value of the next ``stream update`` of the mixed stream's ``field`` that ``accept`` takes."""
    data = await viewer.wait_for(
        "stream",
        lambda d: (
            d.get("id") == mixed
            and d.get("status") == "update"
            and d["data"].get("field") == field
            and accept(d["data"]["value"])
        ),
        timeout=timeout,
    )
    return data["data"]["value"]


async def test_three_colours_in_their_regions_following_views_layout_and_the_speaker(platform, loopback_client):
    api = platform.api
    room = api.create_room("mixed")["id"]
    mixed = f"{room}-common"
    signaling = f"{platform.url.replace('http', 'ws')}/ws/signaling/"
    async with (
        ConferenceClient(signaling) as red_client,
        ConferenceClient(signaling) as green_client,
        ConferenceClient(signaling) as blue_client,
        ConferenceClient(signaling) as viewer,
    ):
        cameras, voices = {}, {}
        for client, colour, amplitude in ((red_client, RED, 12000), (green_client, GREEN, 0), (blue_client, BLUE, 0)):
            await client.join(api.create_token(room, user=f"user-{colour}", role="presenter"))
            video = SyntheticVideoTrack(320, 240, pattern="solid", color=colour)
            voices[colour] = SyntheticAudioTrack(amplitude=amplitude)
            cameras[colour] = (await client.publish([voices[colour], video])).id
        red, green, blue = cameras[RED], cameras[GREEN], cameras[BLUE]

        # Every stream enters the room's view, and the mixer's stream appears once it publishes.
        login = await viewer.join(api.create_token(room, user="viewer", role="viewer"))
        if not any(s["id"] == mixed for s in login["room"]["streams"]):
            await viewer.wait_for("stream", lambda d: d.get("id") == mixed and d.get("status") == "add", timeout=30)
        streams = {s["id"]: s for s in api.request("GET", f"/v1/rooms/{room}/streams")}
        assert streams[mixed]["type"] == "mixed" and streams[mixed]["info"]["label"] == "common"
        assert streams[red]["info"]["inViews"] == ["common"]
        assert streams[mixed]["media"]["video"]["parameters"]["resolution"] == {"width": 640, "height": 480}
        # The mixer is a media job, not a user.
        assert sorted(p["user"] for p in api.request("GET", f"/v1/rooms/{room}/participants")) == sorted(
            ["viewer", f"user-{RED}", f"user-{GREEN}", f"user-{BLUE}"]
        )

        subscription = await viewer.subscribe(mixed, audio=True, video=True)
        track = subscription.tracks["video"]
        # fluid, 3 inputs: the 2x2 template, filled in publishing order, the 4th region empty.
        await picture_shows(track, {TOP_LEFT: RED, TOP_RIGHT: GREEN, BOTTOM_LEFT: BLUE, BOTTOM_RIGHT: BLACK})
        layout = api.request("GET", f"/v1/rooms/{room}/streams/{mixed}")["info"]["layout"]
        assert [entry["stream"] for entry in layout] == [red, green, blue]
        assert layout[1]["region"]["area"]["left"] == {"numerator": 1, "denominator": 2}

        # The loud one is the active input; when another one speaks instead, the room hears it.
        deadline = time.monotonic() + 15
        while api.request("GET", f"/v1/rooms/{room}/streams/{mixed}")["info"]["activeInput"] != red:
            assert time.monotonic() < deadline, "the loud input never became the active one"
            await asyncio.sleep(0.25)
        voices[RED].set_amplitude(0)
        voices[BLUE].set_amplitude(12000)
        await mixed_notification(viewer, mixed, "activeInput", lambda value: value == blue)
        voices[BLUE].set_amplitude(0)

        # inViews: green leaves the view, blue moves up to the next region.
        api.request("PATCH", f"/v1/rooms/{room}/streams/{green}", json=[
            {"op": "remove", "path": "/info/inViews", "value": "common"}
        ])  # fmt: skip
        await mixed_notification(
            viewer, mixed, "video.layout", lambda layout: [entry["stream"] for entry in layout] == [red, blue]
        )
        await picture_shows(track, {TOP_LEFT: RED, TOP_RIGHT: BLUE, BOTTOM_LEFT: BLACK})
        # ... and back in by signaling (stream-control mix), as the owner may.
        await green_client.request("stream-control", {"id": green, "operation": "mix", "data": "common"})
        await picture_shows(track, {TOP_LEFT: RED, TOP_RIGHT: BLUE, BOTTOM_LEFT: GREEN})
        assert await green_client.request(
            "stream-control", {"id": green, "operation": "get-region", "data": "common"}
        ) == {"region": "3"}

        # LayoutUpdate: blue alone over the whole picture.
        whole = {"left": "0", "top": "0", "width": "1", "height": "1"}
        updated = api.request("PATCH", f"/v1/rooms/{room}/streams/{mixed}", json=[
            {"op": "replace", "path": "/info/layout", "value": [{"stream": blue, "region": {"id": "1", "area": whole}}]}
        ])  # fmt: skip
        assert updated["info"]["layout"] == [
            {
                "stream": blue,
                "region": {
                    "id": "1",
                    "shape": "rectangle",
                    "area": {
                        "left": {"numerator": 0, "denominator": 1},
                        "top": {"numerator": 0, "denominator": 1},
                        "width": {"numerator": 1, "denominator": 1},
                        "height": {"numerator": 1, "denominator": 1},
                    },
                },
            }
        ]
        await picture_shows(track, {TOP_LEFT: BLUE, BOTTOM_RIGHT: BLUE, (320, 240): BLUE})
        # RegionUpdate: region 0 of the layout now shows green.
        api.request("PATCH", f"/v1/rooms/{room}/streams/{mixed}", json=[
            {"op": "replace", "path": "/info/layout/0/stream", "value": green}
        ])  # fmt: skip
        await picture_shows(track, {TOP_LEFT: GREEN, BOTTOM_RIGHT: GREEN})

        # An H.264 subscriber of the (VP8) mix gets the SFU's one shared H.264 encode of it.
        h264 = await viewer.subscribe(mixed, audio=False, video_format={"codec": "h264"}, encoded=True)
        async with asyncio.timeout(20):
            _, data, _ = await h264.frames.get()
            while not is_keyframe("h264", data):
                _, data, _ = await h264.frames.get()
        await viewer.unsubscribe(h264)

        # The mix can be recorded like any stream (passthrough of the mixer's encoded frames).
        media = {"audio": {"from": mixed}, "video": {"from": mixed}}
        recording = api.request("POST", f"/v1/rooms/{room}/recordings", json={"container": "mkv", "media": media})
        path = f"/v1/rooms/{room}/recordings/{recording['id']}"
        deadline = time.monotonic() + 30
        while api.request("GET", path)["state"] != "running":
            assert time.monotonic() < deadline, api.request("GET", path)
            await asyncio.sleep(0.25)
        await asyncio.sleep(3)
        api.request("DELETE", path)
        while (ended := api.request("GET", path))["state"] not in ("finished", "failed"):
            await asyncio.sleep(0.25)
        assert ended["state"] == "finished", ended
        probe = ffprobe(ended["storage"]["file"])
        video = next(s for s in probe["streams"] if s["codec_type"] == "video")
        assert (video["codec_name"], video["width"], video["height"]) == ("vp8", 640, 480)
        assert {s["codec_type"] for s in probe["streams"]} == {"audio", "video"}

        # Refused: bad layouts and deleting the mixed stream, in the API's error format.
        bad = api.http.patch(
            f"{platform.url}/v1/rooms/{room}/streams/{mixed}",
            json=[
                {
                    "op": "replace",
                    "path": "/info/layout",
                    "value": [{"stream": "nope", "region": {"id": "1", "area": whole}}],
                }
            ],
            headers={"Authorization": api.authorization()},
        )
        assert bad.status_code == 400 and "not a stream of this view" in bad.json()["error"]["message"]
        refused = api.http.delete(
            f"{platform.url}/v1/rooms/{room}/streams/{mixed}", headers={"Authorization": api.authorization()}
        )
        assert refused.status_code == 400 and "mixed" in refused.json()["error"]["message"]

    # Everybody left: the mixer ends by itself and its stream goes.
    deadline = time.monotonic() + 20
    while any(s["id"] == mixed for s in api.request("GET", f"/v1/rooms/{room}/streams")):
        assert time.monotonic() < deadline, "the mixed stream outlived the room's last user"
        await asyncio.sleep(0.5)


def dominant_frequency(frames) -> float:
    samples = np.concatenate([f.to_ndarray().reshape(-1, len(f.layout.channels))[:, 0] for f in frames])
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / frames[0].sample_rate)[int(np.argmax(spectrum))])


async def slot_frequencies(tracks, seconds: float = 0.6) -> list[float]:
    async def listen(track):
        frames = []
        while sum(f.samples for f in frames) < seconds * 48000:
            frames.append(await asyncio.wait_for(track.recv(), 5))
        return dominant_frequency(frames[-int(seconds * 50) :])

    return list(await asyncio.gather(*(listen(track) for track in tracks)))


async def test_audio_selecting_forwards_the_loudest_voices(platform, loopback_client):
    api = platform.api
    room = api.create_room("selecting", {"views": []})["id"]  # no mixer here: the selector alone
    signaling = f"{platform.url.replace('http', 'ws')}/ws/signaling/"
    async with (
        ConferenceClient(signaling) as low,
        ConferenceClient(signaling) as high,
        ConferenceClient(signaling) as later,
        ConferenceClient(signaling) as listener,
    ):
        voices = {}
        for client, frequency, amplitude in ((low, 440, 10000), (high, 1000, 10000), (later, 2000, 0)):
            await client.join(api.create_token(room, user=f"voice-{frequency}", role="presenter"))
            voices[frequency] = SyntheticAudioTrack(frequency=frequency, amplitude=amplitude)
            await client.publish([voices[frequency]])
        created = api.request(
            "POST",
            "/v1.1/stream-engine/processors",
            json={"type": "audio", "participant": room, "selecting": {"activeStreamIds": ["first", "second"]}},
        )
        path = f"/v1.1/stream-engine/processors/{created['id']}"
        deadline = time.monotonic() + 30
        while len((processor := api.request("GET", path))["info"]["selecting"]["activeStreamIds"]) < 2:
            assert time.monotonic() < deadline, processor
            await asyncio.sleep(0.25)
        slots = processor["info"]["selecting"]["activeStreamIds"]
        await listener.join(api.create_token(room, user="listener", role="viewer"))
        tracks = [(await listener.subscribe(slot, audio=True, video=False)).tracks["audio"] for slot in slots]

        async def hears(expected: set[int], timeout: float = 20) -> None:
            deadline = time.monotonic() + timeout
            heard: list[float] = []
            while time.monotonic() < deadline:
                heard = await slot_frequencies(tracks)
                if {min(expected, key=lambda f: abs(f - h)) for h in heard} == expected and all(
                    min(abs(f - h) for f in expected) < 30 for h in heard
                ):
                    return
            pytest.fail(f"the slots carried {heard} Hz, not {sorted(expected)} Hz")

        await hears({440, 1000})  # the two speakers, the silent one left out
        voices[440].set_amplitude(0)
        voices[2000].set_amplitude(10000)
        await hears({2000, 1000})  # the slot of the one who stopped goes to the new speaker
        assert set(api.request("GET", path)["info"]["selecting"]["selected"]) <= {
            s["id"] for s in api.request("GET", f"/v1/rooms/{room}/streams")
        }
        api.request("DELETE", path)
