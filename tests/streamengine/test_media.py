"""Real WebRTC through the SFU: aiortc publisher → engine (passthrough) → aiortc subscriber."""

from __future__ import annotations

import asyncio

import av
import pytest
from channels.db import database_sync_to_async

from streamengine import services
from streamengine.client import ConferenceClient, SignalingError, SyntheticAudioTrack, SyntheticVideoTrack
from streamengine.exceptions import ParticipantNotFound
from streamengine.media.passthrough import is_keyframe, vp8_resolution
from streamengine.models import Publication, Subscription
from tests.streamengine.helpers import eventually

pytestmark = pytest.mark.media


async def publish_av(client: ConferenceClient):
    return await client.publish([SyntheticVideoTrack(), SyntheticAudioTrack()], attributes={"label": "cam"})


def is_status_update(data: dict) -> bool:
    return data["status"] == "update" and data["data"]["field"].endswith(".status")


async def frames_of(track, count: int, timeout: float = 10.0) -> list:
    async with asyncio.timeout(timeout):
        return [await track.recv() for _ in range(count)]


async def assert_forwarding_stopped(frames: asyncio.Queue) -> None:
    """Once the frames already in flight have drained, no new frame arrives."""
    await asyncio.sleep(0.3)
    while not frames.empty():
        frames.get_nowait()
    await asyncio.sleep(0.5)
    assert frames.empty()


async def resumes_at_keyframe(frames: asyncio.Queue) -> bool:
    """After a pause the next frames start at a keyframe. The receiver's jitter buffer
    releases the last frame from before the pause only when the next packet arrives,
    so that one stale frame may come first."""
    first = await asyncio.wait_for(frames.get(), 10)
    if is_keyframe("vp8", first[1]):
        return True
    second = await asyncio.wait_for(frames.get(), 10)
    return is_keyframe("vp8", second[1]) and second[2] > first[2]


@pytest.mark.parametrize("bob_role", ["viewer"])
async def test_publish_subscribe_decodable_frames(pair, signaling_url, token):
    alice, bob = pair.alice, pair.bob
    publication = await publish_av(alice)
    added = await bob.wait_for("stream", lambda d: d["status"] == "add")
    assert added["id"] == publication.id
    stream = added["data"]
    assert stream["info"]["owner"] == alice.info["id"] and stream["info"]["attributes"] == {"label": "cam"}
    formats = {t["type"]: t["format"] for t in stream["media"]["tracks"]}
    assert formats == {"video": {"codec": "vp8"}, "audio": {"codec": "opus", "sampleRate": 48000, "channelNum": 2}}
    # The node measures the video's parameters and announces the whole stream again, unless
    # it measured them before the publication was ready (a busy machine): then "add" has them.
    video_track = next(t for t in stream["media"]["tracks"] if t["type"] == "video")
    if "resolution" not in video_track.get("parameters", {}):
        updated = await bob.wait_for("stream", lambda d: d["status"] == "update" and d["data"]["field"] == ".")
        video_track = next(t for t in updated["data"]["value"]["media"]["tracks"] if t["type"] == "video")
    assert video_track["parameters"]["resolution"] == {"width": 640, "height": 480}
    assert 28 <= video_track["parameters"]["framerate"] <= 31
    subscription = await bob.subscribe(publication.id)
    video = await frames_of(subscription.tracks["video"], 10)
    assert all(isinstance(f, av.VideoFrame) and (f.width, f.height) == (640, 480) for f in video)
    audio = await frames_of(subscription.tracks["audio"], 5)
    assert all(isinstance(f, av.AudioFrame) for f in audio)
    # The pixels are the publisher's: the sweeping bar is bright, the gradient's left edge dark.
    luma = bytes(video[-1].planes[0])
    assert max(luma) > 200 and min(luma[: 640 * 4]) < 40
    assert await database_sync_to_async(Subscription.objects.filter(id=subscription.id, ready=True).exists)()
    # Late joiners see the stream in their login result.
    async with ConferenceClient(signaling_url) as carol:
        info = await carol.join(await token(pair.domain, user="carol"))
        assert [s["id"] for s in info["room"]["streams"]] == [publication.id]


async def test_encoded_frames_reach_subscriber_unchanged_and_decode_with_pyav(pair):
    # Not ``published_pair``: this test checks the very first forwarded frame, which that fixture takes.
    publication = await pair.alice.publish([SyntheticVideoTrack()])
    subscription = await pair.bob.subscribe(publication.id, audio=False, encoded=True)
    async with asyncio.timeout(10):
        frames = [await subscription.frames.get() for _ in range(15)]
    # The first forwarded frame starts decoding: a VP8 keyframe with the publisher's size.
    assert is_keyframe("vp8", frames[0][1]) and vp8_resolution(frames[0][1]) == (640, 480)
    decoder = av.CodecContext.create("vp8", "r")
    decoded = [f for _, data, _ in frames for f in decoder.decode(av.Packet(data))]
    assert len(decoded) == 15 and decoded[0].width == 640


async def test_mute_unmute_notifies_and_stops_forwarding(published_pair):
    alice, bob = published_pair.alice, published_pair.bob
    publication, subscription = published_pair.publication, published_pair.subscription

    # Wait for the status update itself: the measured-parameters update (field ".") can come
    # at any time around it.
    await alice.stream_control(publication.id, "pause", "video")
    update = await bob.wait_for("stream", is_status_update)
    assert update == {
        "id": publication.id,
        "status": "update",
        "data": {"field": "video.status", "value": "inactive"},
    }
    stored = await database_sync_to_async(Publication.objects.get)(id=publication.id)
    assert stored.media["tracks"][0]["status"] == "inactive"
    await assert_forwarding_stopped(subscription.frames)

    await alice.stream_control(publication.id, "play", "video")
    update = await bob.wait_for("stream", is_status_update)
    assert update["data"] == {"field": "video.status", "value": "active"}
    assert await resumes_at_keyframe(subscription.frames)

    # Only the owner controls a stream.
    with pytest.raises(SignalingError, match="unauthorized"):
        await bob.stream_control(publication.id, "pause", "video")


async def test_subscription_pause_play(published_pair):
    bob, subscription = published_pair.bob, published_pair.subscription
    await bob.subscription_control(subscription.id, "pause", "video")
    await assert_forwarding_stopped(subscription.frames)
    await bob.subscription_control(subscription.id, "play", "video")
    assert await resumes_at_keyframe(subscription.frames)


async def test_permission_change_takes_effect_on_live_session(signaling_url, room, token):
    domain = await room()
    async with ConferenceClient(signaling_url) as client:
        info = await client.join(await token(domain, role="viewer"))
        with pytest.raises(SignalingError, match="unauthorized"):
            await client.publish([SyntheticVideoTrack()])
        await database_sync_to_async(services.participant_update_permission)(
            participant_id=info["id"],
            permission={"publish": {"audio": False, "video": True}, "subscribe": {"audio": True, "video": True}},
        )
        publication = await client.publish([SyntheticVideoTrack()])
        assert publication.id
        with pytest.raises(SignalingError, match="unauthorized"):
            await client.publish([SyntheticAudioTrack()])


async def test_drop_disconnects_and_cleans_up(pair):
    alice, bob, alice_id = pair.alice, pair.bob, pair.alice_info["id"]
    publication = await publish_av(alice)
    await bob.wait_for("stream", lambda d: d["status"] == "add")
    subscription = await bob.subscribe(publication.id, audio=False, encoded=True)
    await database_sync_to_async(services.participant_drop)(participant_id=alice_id)
    assert await alice.wait_for("drop") is None
    await asyncio.wait_for(alice.closed.wait(), 5)
    assert await bob.wait_for("stream", lambda d: d["status"] == "remove") == {
        "id": publication.id,
        "status": "remove",
    }
    assert (await bob.wait_for("participant", lambda d: d["action"] == "leave"))["data"] == alice_id
    await eventually(lambda: not Publication.objects.filter(id=publication.id).exists())
    await eventually(lambda: not Subscription.objects.filter(id=subscription.id).exists())
    with pytest.raises(ParticipantNotFound):
        await database_sync_to_async(services.participant_drop)(participant_id=alice_id)


async def test_unpublish_ends_subscriptions(pair):
    alice, bob = pair.alice, pair.bob
    publication = await alice.publish([SyntheticVideoTrack()])
    subscription = await bob.subscribe(publication.id, audio=False)
    await frames_of(subscription.tracks["video"], 2)
    await alice.unpublish(publication)
    assert (await bob.wait_for("stream", lambda d: d["status"] == "remove"))["id"] == publication.id
    await eventually(lambda: not Subscription.objects.filter(id=subscription.id).exists())


async def test_input_limit_counts_publications(signaling_url, room, token):
    async with ConferenceClient(signaling_url) as client:
        await client.join(await token(await room(inputLimit=1)))
        await client.publish([SyntheticAudioTrack()])
        with pytest.raises(SignalingError, match="Too many inputs"):
            await client.publish([SyntheticAudioTrack()])


async def test_media_in_refuses_unaccepted_codec(signaling_url, room, token):
    domain = await room(mediaIn={"audio": [{"codec": "opus"}], "video": [{"codec": "h264"}]})
    async with ConferenceClient(signaling_url) as client:
        await client.join(await token(domain))
        with pytest.raises(SignalingError, match="No acceptable video format"):
            await client.publish([SyntheticVideoTrack()], video_codec="vp8")
        # The failed session is gone: it neither lingers as a stream nor counts as an input.
        await eventually(lambda: not Publication.objects.filter(domain_id=domain).exists())
        assert (await client.publish([SyntheticVideoTrack()], video_codec="h264")).id


async def test_h264_passthrough(pair):
    bob = pair.bob
    publication = await pair.alice.publish([SyntheticVideoTrack()], video_codec="h264")
    stream = await bob.wait_for("stream", lambda d: d["status"] == "add")
    assert stream["data"]["media"]["tracks"][0]["format"]["codec"] == "h264"
    subscription = await bob.subscribe(publication.id, audio=False, encoded=True)
    async with asyncio.timeout(10):
        frames = [await subscription.frames.get() for _ in range(10)]
    assert is_keyframe("h264", frames[0][1])
    decoder = av.CodecContext.create("h264", "r")
    decoded = [f for _, data, _ in frames for f in decoder.decode(av.Packet(data))]
    assert decoded and decoded[0].width == 640


async def test_sfu_forwards_without_decoding_and_relays_keyframe_requests(published_pair):
    from streamengine.node import ensure_embedded_node

    publication = published_pair.publication  # bob's first subscription already receives it
    sfu = (await ensure_embedded_node()).sfu
    published = next(iter(sfu.sessions[publication.id].published.values()))
    requests_before = published.keyframes.sent
    second = await published_pair.bob.subscribe(publication.id, audio=False, encoded=True)
    _, data, _ = await asyncio.wait_for(second.frames.get(), 10)
    assert is_keyframe("vp8", data)  # a joining subscriber starts at a keyframe it asked for
    assert published.keyframes.sent > requests_before
    assert sfu.stats()["forwarded_frames"] > 0
    # Nothing reached the publication's decoder: its decoded-frame track stayed empty.
    assert published.receiver.track._queue.qsize() == 0 and not published.tap.decode


async def test_subscriber_asking_other_parameters_gets_the_transcoding_path(pair):
    bob = pair.bob
    publication = await pair.alice.publish([SyntheticVideoTrack()])
    scaled = await bob.subscribe(
        publication.id, audio=False, video_parameters={"resolution": {"width": 320, "height": 240}}
    )
    frames = await frames_of(scaled.tracks["video"], 5, timeout=20)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
    # Another codec than the publication's (VP8) is also a transcoding job.
    other = await bob.subscribe(publication.id, audio=False, video_format={"codec": "h264"}, encoded=True)
    async with asyncio.timeout(20):
        kind, data, _ = await other.frames.get()
        while not is_keyframe("h264", data):
            kind, data, _ = await other.frames.get()
    assert kind == "video" and data.startswith((b"\x00\x00\x00\x01", b"\x00\x00\x01"))
    # A plain subscription to the same stream is still forwarded, not transcoded.
    plain = await bob.subscribe(publication.id, audio=False)
    assert (await frames_of(plain.tracks["video"], 2))[0].width == 640


async def test_subscribers_asking_the_same_transcoded_form_share_one_encode(pair):
    from streamengine.node import ensure_embedded_node

    bob = pair.bob
    publication = await pair.alice.publish([SyntheticVideoTrack()])
    small = {"resolution": {"width": 320, "height": 240}}
    first = await bob.subscribe(publication.id, audio=False, video_parameters=small)
    second = await bob.subscribe(publication.id, audio=False, video_parameters=small)
    other = await bob.subscribe(
        publication.id, audio=False, video_parameters={"resolution": {"width": 160, "height": 120}}
    )
    for session, size in ((first, (320, 240)), (second, (320, 240)), (other, (160, 120))):
        assert {(f.width, f.height) for f in await frames_of(session.tracks["video"], 3, timeout=20)} == {size}
    sfu = (await ensure_embedded_node()).sfu
    published = next(iter(sfu.sessions[publication.id].published.values()))
    # Two forms, two encoders: the two 320x240 subscribers get the same encoded frames.
    assert len(published.encodings) == 2
    shared = next(e for e in published.encodings.values() if e.parameters == small)
    assert shared.fanout == 2 and shared.encoded > 0
    await bob.unsubscribe(first)
    await eventually(lambda: shared.fanout == 1, db=False)
    await bob.unsubscribe(second)
    await bob.unsubscribe(other)
    # The last subscriber of a form stops its encoder; the track is no longer decoded.
    await eventually(lambda: not published.encodings and not published.tap.decode, db=False)


async def test_trickled_candidates_are_accepted_and_junk_is_not_fatal(signaling_url, room, token):
    """A browser-like client: offer without candidates, then candidates over ``soac``."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from streamengine.media.ice import rtc_configuration

    domain = await room()
    async with ConferenceClient(signaling_url) as client:
        await client.join(await token(domain))
        pc = RTCPeerConnection(rtc_configuration())
        pc.addTransceiver(SyntheticVideoTrack(), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        lines = pc.localDescription.sdp.splitlines()
        candidates = [line for line in lines if line.startswith("a=candidate:")]
        bare = (
            "\r\n".join(line for line in lines if not line.startswith(("a=candidate:", "a=end-of-candidates"))) + "\r\n"
        )
        ack = await client.request("publish", {"media": {"tracks": [{"type": "video", "mid": "0"}]}})
        await client.request("soac", {"id": ack["transportId"], "signaling": {"type": "offer", "sdp": bare}})
        answer = await client.wait_for("progress", lambda d: d.get("status") == "soac")
        await pc.setRemoteDescription(RTCSessionDescription(**answer["data"]))
        junk = [
            {"candidate": "a=candidate:1 1 udp 2122260223 abcd-1234.local 50000 typ host", "sdpMid": "0"},
            {"candidate": "candidate:2 1 tcp 1518280447 127.0.0.1 9 typ host tcptype active", "sdpMid": "0"},
            {"candidate": "candidate:garbage", "sdpMid": "0"},
        ]
        for candidate in [*junk, *({"candidate": c, "sdpMid": "0", "sdpMLineIndex": 0} for c in candidates)]:
            await client.request(
                "soac", {"id": ack["transportId"], "signaling": {"type": "candidate", "candidate": candidate}}
            )
        ready = await client.wait_for("progress", lambda d: d.get("sessionId") == ack["id"], timeout=15)
        assert ready["status"] == "ready"
        await pc.close()


def write_test_video(path, seconds: int = 3) -> None:
    """A small VP8/WebM file made with PyAV (no audio)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libvpx", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        for index in range(30 * seconds):
            frame = av.VideoFrame(320, 240, "yuv420p")
            frame.planes[0].update(bytes([(index * 8 + x) % 256 for x in range(320)]) * 240)
            frame.planes[1].update(bytes([128]) * (160 * 120))
            frame.planes[2].update(bytes([128]) * (160 * 120))
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


async def test_publish_a_file(pair, tmp_path):
    path = tmp_path / "clip.webm"
    write_test_video(path)
    publication = await pair.alice.publish_file(str(path))
    subscription = await pair.bob.subscribe(publication.id, audio=False)
    frames = await frames_of(subscription.tracks["video"], 5)
    assert {(f.width, f.height) for f in frames} == {(320, 240)}
