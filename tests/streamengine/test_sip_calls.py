"""SIP calls end to end: a real media worker (PJSIP) calls real SIP peers on loopback.

sipp plays the callee's part in each outcome (answers and plays G.711 RTP, busy, rings
without answering, hangs up itself); baresip is a softphone that plays a 1 kHz tone from a
WAV file and records what it hears, for the audio checks both ways.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time

import numpy as np
import pytest

from owt.localserver import running_platform
from streamengine.client import ConferenceClient, SyntheticAudioTrack
from tests.streamengine.sip_peers import (
    Baresip,
    dtmf_pcaps,
    read_wav,
    sipp_uas,
    tone_blocks,
    tone_sequence,
    tone_wav,
)
from tests.streamengine.test_media_jobs import wait_state

pytestmark = [pytest.mark.timeout(120), pytest.mark.media, pytest.mark.worker, pytest.mark.embedded]

NO_ANSWER_SECONDS = 2


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    # Two media workers: a room's SIP agent holds one (its calls run beside it) for the dial-in
    # tests; a dial-out's message stuck behind it on that worker is sent again within a second.
    with running_platform(
        tmp_path_factory.mktemp("sip"),
        SIP_BIND_ADDRESS="127.0.0.1",
        SIP_NO_ANSWER_SECONDS=str(NO_ANSWER_SECONDS),
        MEDIA_JOB_PENDING_RESEND_SECONDS="1",
    ) as running:
        running.start_worker("media-1")
        running.start_worker("media-2")
        yield running


def dial(api, room: str, uri: str, **media_out) -> dict:
    body = {"peerURI": uri, "mediaIn": {"audio": True, "video": False}, "mediaOut": media_out}
    return api.request("POST", f"/v1/rooms/{room}/sipcalls", json=body)


async def wait_call(api, path: str, states: set[str], timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        call = await asyncio.to_thread(api.request, "GET", path)
        if call["call"]["state"] in states:
            return call
        assert time.monotonic() < deadline, f"call still {call['call']['state']}: {call}"
        await asyncio.sleep(0.2)


async def call_audio(api, path: str, client: ConferenceClient, seconds: float = 1.5) -> np.ndarray:
    """``seconds`` of the call's stream (48 kHz mono) as ``client`` hears it, past its first 0.5 s."""
    async with asyncio.timeout(10):
        while (stream := (await asyncio.to_thread(api.request, "GET", path))["input"]) is None:
            await asyncio.sleep(0.2)
    heard = await client.subscribe(stream["id"], video=False)
    samples = []
    async with asyncio.timeout(20):
        while sum(map(len, samples)) < 48000 * seconds:
            frame = await heard.tracks["audio"].recv()
            samples.append(frame.to_ndarray().reshape(-1, len(frame.layout.channels))[:, 0])
    return np.concatenate(samples)[24000:]


def signaling(platform) -> str:
    return f"{platform.url.replace('http', 'ws')}/ws/signaling/"


async def test_dial_out_connects_publishes_the_callee_and_delete_hangs_up(platform, loopback_client):
    api = platform.api
    room = api.create_room("sip-dial-out")["id"]
    with sipp_uas("uas_answer", platform.var) as (sipp, port):
        created = dial(api, room, f"sip:service@127.0.0.1:{port}")
        assert created["type"] == "dial-out" and created["peer"] == f"sip:service@127.0.0.1:{port}"
        assert created["output"]["media"] == {"audio": False, "video": False}
        path = f"/v1/rooms/{room}/sipcalls/{created['id']}"
        call = await wait_call(api, path, {"connected"})
        assert call["state"] == "running" and call["call"]["code"] == 200
        async with asyncio.timeout(10):
            while call["input"] is None:
                call = await asyncio.to_thread(api.request, "GET", path)
        assert call["input"]["id"] == created["id"] and call["input"]["type"] == "forward"
        assert call["input"]["info"]["type"] == "sip"
        assert [c["id"] for c in api.request("GET", f"/v1/rooms/{room}/sipcalls")] == [created["id"]]
        async with ConferenceClient(signaling(platform)) as bob:
            await bob.join(api.create_token(room, user="bob", role="viewer"))
            listening = await bob.subscribe(created["id"], video=False)
            loud = 0
            async with asyncio.timeout(10):
                while loud < 10:  # sipp's pcap is speech-like noise: not silence
                    frame = await listening.tracks["audio"].recv()
                    loud += int(np.abs(frame.to_ndarray()).max() > 500)
        assert call["call"]["codec"] == "PCMA/8000"
        api.request("DELETE", path)
        ended = await wait_state(api, path, {"finished", "failed"})
        assert ended["state"] == "finished" and ended["call"]["state"] == "hungup"
        assert await asyncio.to_thread(sipp.wait, 10) == 0  # sipp got its BYE and answered it
    streams = [s["id"] for s in api.request("GET", f"/v1/rooms/{room}/streams")]
    assert created["id"] not in streams


@pytest.mark.parametrize(
    ("scenario", "state", "reason"),
    [
        ("uas_busy", "busy", "busy (486 Busy Here)"),
        ("uas_no_answer", "no-answer", f"no answer within {NO_ANSWER_SECONDS} s"),
    ],
)
async def test_a_call_not_taken_fails_with_the_reason(platform, scenario, state, reason):
    api = platform.api
    room = api.create_room(f"sip-{state}")["id"]
    with sipp_uas(scenario, platform.var) as (sipp, port):
        created = dial(api, room, f"sip:service@127.0.0.1:{port}")
        path = f"/v1/rooms/{room}/sipcalls/{created['id']}"
        if state == "no-answer":
            await wait_call(api, path, {"ringing"})
        ended = await wait_state(api, path, {"finished", "failed"})
        assert ended["state"] == "failed" and ended["reason"] == reason
        assert ended["call"]["state"] == state and ended["input"] is None
        assert await asyncio.to_thread(sipp.wait, 10) == 0


async def test_the_callee_hanging_up_ends_the_call_and_its_dtmf_is_kept(platform):
    api = platform.api
    room = api.create_room("sip-hangup")["id"]
    dtmf_pcaps(platform.var)
    with sipp_uas("uas_hangup", platform.var) as (sipp, port):
        created = dial(api, room, f"sip:service@127.0.0.1:{port}")
        path = f"/v1/rooms/{room}/sipcalls/{created['id']}"
        await wait_call(api, path, {"connected"})
        ended = await wait_state(api, path, {"finished", "failed"})
        assert ended["state"] == "finished" and ended["call"]["state"] == "hungup"
        assert ended["call"]["code"] == 200
        assert [d["digit"] for d in ended["call"]["dtmf"]] == ["1", "#"]
        assert await asyncio.to_thread(sipp.wait, 10) == 0


# baresip on a loaded 2-core machine now and then drops the platform's RTP ("Connection timed
# out") or PJSIP hands the job no audio for a while: one rerun, the failure reason in the log.
@pytest.mark.flaky(reruns=1, reruns_delay=2)
async def test_audio_flows_both_ways_with_a_softphone(platform, loopback_client):
    """baresip answers and plays a 1 kHz tone: it is in the call's stream; alice's 600 Hz tone
    is what baresip hears (its decoded-audio dump) until PATCH /output/media/audio/from
    switches it to bob's 1500 Hz."""
    api = platform.api
    room = api.create_room("sip-audio")["id"]
    with Baresip(platform.var, tone_wav(platform.var / "tone-1k.wav", 1000)) as phone:
        async with ConferenceClient(signaling(platform)) as alice, ConferenceClient(signaling(platform)) as bob:
            await alice.join(api.create_token(room, user="alice", role="presenter"))
            await bob.join(api.create_token(room, user="bob", role="presenter"))
            voice = await alice.publish([SyntheticAudioTrack(frequency=600)])
            other = await bob.publish([SyntheticAudioTrack(frequency=1500)])
            created = dial(api, room, phone.uri, audio={"from": voice.id})
            path = f"/v1/rooms/{room}/sipcalls/{created['id']}"
            await wait_call(api, path, {"connected"})
            received = await call_audio(api, path, alice)
            assert tone_blocks(received, 48000, 1000) > 0.8
            assert tone_blocks(received, 48000, 600) == 0
            patch = [{"op": "replace", "path": "/output/media/audio/from", "value": other.id}]
            assert api.request("PATCH", path, json=patch)["output"]["media"]["audio"] == {"from": other.id}
            await asyncio.sleep(2)
            api.request("DELETE", path)
            ended = await wait_state(api, path, {"finished", "failed"})
            assert ended["state"] == "finished" and ended["call"]["state"] == "hungup"
    [recording] = phone.recordings()  # complete once baresip has quit
    recorded, rate = read_wav(recording)
    assert len(recorded) > rate  # more than a second of the call
    heard = tone_sequence(recorded, rate, [600, 1500, 1000])
    switch = heard.index(1500)
    assert heard.count(600) >= 10 and heard.count(1500) >= 10 and 1000 not in heard
    assert set(heard[:switch]) == {600} and set(heard[switch:]) == {1500}  # 600 Hz, then 1500 Hz only


# Dial-in: the room's SIP agent (a job on one of the workers) answers; its calls are listed
# with the dial-outs. Last in the module: the agent keeps its worker while the room lives.


def sip_agent(platform, room: str) -> dict:
    """The room's SIP agent job as the platform's database has it (where it listens is not
    in OWT's REST: the admin shows it)."""
    with contextlib.closing(sqlite3.connect(platform.var / "owt.sqlite3")) as db:
        row = db.execute(
            "SELECT state, progress, result FROM streamengine_mediajob"
            " WHERE domain_id = ? AND kind = 'sip-agent' ORDER BY created_at DESC",
            (room,),
        ).fetchone()
    assert row is not None, f"room {room} has no SIP agent"
    return {"state": row[0], "progress": json.loads(row[1]), "result": json.loads(row[2])}


def wait_agent(platform, room: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (agent := sip_agent(platform, room))["state"] != "running":
        assert time.monotonic() < deadline, f"the SIP agent is still {agent}"
        time.sleep(0.2)
    return agent


@pytest.fixture(scope="module")
def registrar(platform):
    """sipp as the room's registrar (digest: room1 / s3cret)."""
    with sipp_uas("registrar", platform.var) as running:
        yield running


@pytest.fixture(scope="module")
def dial_in_room(platform, registrar):
    """A room whose SIP account is ``room1`` at the registrar; its agent's own address (the
    tests' callers dial it directly)."""
    api = platform.api
    sip = {"sipServer": f"127.0.0.1:{registrar[1]}", "username": "room1", "password": "s3cret"}
    room = api.create_room("sip-dial-in", {"sip": sip})["id"]
    agent = wait_agent(platform, room)
    [contact] = agent["result"]["contacts"]
    yield room, contact.split("@", 1)[1]
    api.request("DELETE", f"/v1/rooms/{room}")


async def test_the_agent_registers_with_the_rooms_sip_server(platform, dial_in_room, registrar):
    """It answers the registrar's digest challenge; the password is stored encrypted."""
    room, _ = dial_in_room
    assert await asyncio.to_thread(registrar[0].wait, 10) == 0
    async with asyncio.timeout(10):
        while sip_agent(platform, room)["progress"].get("registration", {}).get("code") != 200:
            await asyncio.sleep(0.2)
    with contextlib.closing(sqlite3.connect(platform.var / "owt.sqlite3")) as db:
        stored = [row[0] for row in db.execute("SELECT config FROM streamengine_domain WHERE id = ?", (room,))]
        stored += [row[0] for row in db.execute("SELECT config FROM conference_room WHERE id = ?", (room,))]
    assert len(stored) == 2 and all("s3cret" not in config and '"encrypted"' in config for config in stored)


def sip_calls(api, room: str) -> list[dict]:
    return api.request("GET", f"/v1/rooms/{room}/sipcalls")


async def wait_dial_in(api, room: str, known: list[dict]) -> dict:
    """The call that came in after ``known`` (the room's calls before)."""
    seen = {call["id"] for call in known}
    async with asyncio.timeout(20):
        while True:
            new = [c for c in await asyncio.to_thread(sip_calls, api, room) if c["id"] not in seen]
            if new:
                return new[0]
            await asyncio.sleep(0.2)


async def test_dial_in_joins_the_room_and_delete_hangs_up(platform, dial_in_room, loopback_client):
    """sipp calls the room's user: the call is a dial-in with the caller's audio as a stream."""
    api = platform.api
    room, address = dial_in_room
    host, port = address.rsplit(":", 1)
    known = sip_calls(api, room)
    with sipp_uas("uac_call", platform.var, "-s", "room1", f"{host}:{port}") as (sipp, _):
        call = await wait_dial_in(api, room, known)
        assert call["type"] == "dial-in" and call["peer"].startswith("sip:sipp@127.0.0.1")
        assert call["output"]["media"] == {"audio": False, "video": False}  # no mixer: until a PATCH
        path = f"/v1/rooms/{room}/sipcalls/{call['id']}"
        call = await wait_call(api, path, {"connected"})
        async with asyncio.timeout(10):
            while call["input"] is None:
                call = await asyncio.to_thread(api.request, "GET", path)
        assert call["input"]["info"]["type"] == "sip" and call["call"]["codec"] == "PCMA/8000"
        async with ConferenceClient(signaling(platform)) as bob:
            await bob.join(api.create_token(room, user="bob", role="viewer"))
            listening = await bob.subscribe(call["id"], video=False)
            loud = 0
            async with asyncio.timeout(10):
                while loud < 10:
                    frame = await listening.tracks["audio"].recv()
                    loud += int(np.abs(frame.to_ndarray()).max() > 500)
        api.request("DELETE", path)
        ended = await wait_state(api, path, {"finished", "failed"})
        assert ended["state"] == "finished" and ended["call"]["state"] == "hungup"
        assert await asyncio.to_thread(sipp.wait, 10) == 0  # it got the BYE
    assert sip_agent(platform, room)["progress"]["answered"] >= 1


# baresip on a loaded 2-core machine now and then drops the platform's RTP ("Connection timed
# out") or PJSIP hands the job no audio for a while: one rerun, the failure reason in the log.
@pytest.mark.flaky(reruns=1, reruns_delay=2)
async def test_a_softphone_dials_in_and_hears_the_stream_patched_in(platform, dial_in_room, loopback_client):
    """baresip calls the room playing a 1 kHz tone (found in the call's stream); PATCH
    /output/media/audio/from gives it alice's 600 Hz (found in what it recorded); it hangs up."""
    api = platform.api
    room, address = dial_in_room
    with Baresip(platform.var, tone_wav(platform.var / "tone-1k-in.wav", 1000), answer=False) as phone:
        async with ConferenceClient(signaling(platform)) as alice:
            await alice.join(api.create_token(room, user="alice", role="presenter"))
            voice = await alice.publish([SyntheticAudioTrack(frequency=600)])
            known = sip_calls(api, room)
            phone.command("dial", f"sip:room1@{address}")
            call = await wait_dial_in(api, room, known)
            path = f"/v1/rooms/{room}/sipcalls/{call['id']}"
            await wait_call(api, path, {"connected"})
            patch = [{"op": "replace", "path": "/output/media/audio/from", "value": voice.id}]
            patched = api.request("PATCH", path, json=patch)
            assert patched["output"]["media"]["audio"] == {"from": voice.id}
            assert tone_blocks(await call_audio(api, path, alice), 48000, 1000) > 0.8
            phone.command("hangup")
            ended = await wait_state(api, path, {"finished", "failed"})
            assert ended["state"] == "finished" and ended["call"]["state"] == "hungup"
    [recording] = phone.recordings()
    recorded, rate = read_wav(recording)
    assert tone_blocks(recorded[len(recorded) // 2 :], rate, 600) > 0.8
