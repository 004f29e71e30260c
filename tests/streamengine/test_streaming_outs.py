"""Streaming-outs end to end: a real media worker encodes a published stream to H.264 + AAC
and pushes it to an RTMP server (nginx with the RTMP module, started here on loopback) or
writes a live HLS playlist that the portal serves; ffprobe is the player."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from owt.localserver import free_port, running_platform
from streamengine.client import ConferenceClient, SyntheticAudioTrack, SyntheticVideoTrack
from tests.streamengine.test_media_jobs import wait_state

pytestmark = [pytest.mark.timeout(120), pytest.mark.media, pytest.mark.worker, pytest.mark.embedded]

RTMP_MODULE = Path("/usr/lib/nginx/modules/ngx_rtmp_module.so")
NGINX_CONF = """
load_module {module};
daemon off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log info;
worker_processes 1;
events {{ worker_connections 64; }}
rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; record off; }} }} }}
"""


def start_nginx(tmp: Path, port: int) -> subprocess.Popen:
    """nginx's RTMP module listening on ``127.0.0.1:port`` (returns once it listens)."""
    if not RTMP_MODULE.exists():
        pytest.fail("nginx's RTMP module is missing: run bin/setup --test (libnginx-mod-rtmp)")
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(module=RTMP_MODULE, tmp=tmp, port=port))
    log = (tmp / "stdout.log").open("ab")
    nginx = subprocess.Popen(
        ["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp), "-e", str(tmp / "error.log")], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 10
    while f"127.0.0.1:{port}" not in subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout:
        assert nginx.poll() is None and time.monotonic() < deadline, (tmp / "error.log").read_text()
        time.sleep(0.1)
    return nginx


def stop_nginx(nginx: subprocess.Popen) -> None:
    nginx.terminate()
    nginx.wait(timeout=10)


@pytest.fixture(scope="module")
def rtmp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx's RTMP module on a free loopback port: ``rtmp://127.0.0.1:PORT/live``."""
    port = free_port()
    nginx = start_nginx(tmp_path_factory.mktemp("nginx-rtmp"), port)
    yield f"rtmp://127.0.0.1:{port}/live"
    stop_nginx(nginx)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running_platform(tmp_path_factory.mktemp("streaming-outs")) as running:
        running.start_worker("media-1")
        yield running


def probe_streams(url: str) -> dict[str, dict]:
    completed = subprocess.run(
        ["ffprobe", "-v", "error", "-rw_timeout", "10000000", "-show_streams", "-of", "json", url],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert completed.returncode == 0, completed.stderr
    return {s["codec_type"]: s for s in json.loads(completed.stdout)["streams"]}


async def publish(platform, alice: ConferenceClient, room: str) -> str:
    await alice.join(platform.api.create_token(room, user="alice", role="presenter"))
    camera = await alice.publish([SyntheticAudioTrack(), SyntheticVideoTrack()])
    return camera.id


async def test_rtmp_to_nginx_is_h264_and_aac_at_the_requested_size(platform, rtmp_server, loopback_client):
    api = platform.api
    room = api.create_room("rtmp-out")["id"]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
        camera = await publish(platform, alice, room)
        url = f"{rtmp_server}/test"
        video = {"from": camera, "parameters": {"resolution": {"width": 320, "height": 240}, "keyFrameInterval": 1}}
        created = api.request(
            "POST",
            f"/v1/rooms/{room}/streaming-outs",
            json={"url": url, "media": {"audio": {"from": camera}, "video": video}},
        )
        assert created["protocol"] == "rtmp" and created["url"] == url
        path = f"/v1/rooms/{room}/streaming-outs/{created['id']}"
        await wait_state(api, path, {"running"})
        streams = await asyncio.to_thread(probe_streams, url)
        assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
        assert (streams["video"]["width"], streams["video"]["height"]) == (320, 240)
        # PATCH the resolution: a new encoder continues the same RTMP connection.
        api.request(
            "PATCH",
            path,
            json=[
                {"op": "replace", "path": "/media/video/parameters/resolution", "value": {"width": 640, "height": 480}}
            ],
        )
        await asyncio.sleep(2)
        resized = await asyncio.to_thread(probe_streams, url)
        assert (resized["video"]["width"], resized["video"]["height"]) == (640, 480)
        running = api.request("GET", path)
        assert running["progress"]["reconnects"] == 0 and running["progress"]["frames"]["video"] > 60
        api.request("DELETE", path)
        ended = await wait_state(api, path, {"finished", "failed"})
    assert ended["state"] == "finished", ended


async def test_an_unreachable_rtmp_server_fails_the_job_with_the_reason(platform, loopback_client):
    api = platform.api
    room = api.create_room("rtmp-refused")["id"]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
        camera = await publish(platform, alice, room)
        url = f"rtmp://127.0.0.1:{free_port()}/live/nobody"
        created = api.request(
            "POST",
            f"/v1/rooms/{room}/streaming-outs",
            json={"url": url, "media": {"audio": {"from": camera}, "video": False}},
        )
        started = time.monotonic()
        failed = await wait_state(api, f"/v1/rooms/{room}/streaming-outs/{created['id']}", {"failed", "finished"}, 15)
    assert failed["state"] == "failed" and failed["reason"] == f"cannot connect to {url}: Connection refused"
    assert time.monotonic() - started < 10


async def test_an_rtmp_server_that_restarts_gets_the_stream_again(platform, tmp_path, loopback_client):
    api, port = platform.api, free_port()
    nginx = start_nginx(tmp_path, port)
    room = api.create_room("rtmp-restart")["id"]
    try:
        async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
            camera = await publish(platform, alice, room)
            url = f"rtmp://127.0.0.1:{port}/live/again"
            video = {"from": camera, "parameters": {"keyFrameInterval": 1}}
            body = {"url": url, "media": {"audio": {"from": camera}, "video": video}}
            path = f"/v1/rooms/{room}/streaming-outs/{api.request('POST', f'/v1/rooms/{room}/streaming-outs', json=body)['id']}"
            await wait_state(api, path, {"running"})
            assert (await asyncio.to_thread(probe_streams, url))["video"]["codec_name"] == "h264"
            stop_nginx(nginx)
            await asyncio.sleep(2)
            nginx = start_nginx(tmp_path, port)
            deadline = time.monotonic() + 30
            while api.request("GET", path)["progress"].get("reconnects", 0) < 1:
                assert time.monotonic() < deadline, api.request("GET", path)
                await asyncio.sleep(0.5)
            await asyncio.sleep(2)
            streams = await asyncio.to_thread(probe_streams, url)
            assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
            assert api.request("GET", path)["state"] == "running"
            api.request("DELETE", path)
            await wait_state(api, path, {"finished"})
    finally:
        stop_nginx(nginx)


def media_sequence(playlist: str) -> int:
    return int(re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist)[1])


async def test_local_hls_is_served_with_cors_old_segments_go_and_delete_ends_the_playlist(platform, loopback_client):
    api = platform.api
    room = api.create_room("hls-out")["id"]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
        camera = await publish(platform, alice, room)
        created = api.request(
            "POST",
            f"/v1/rooms/{room}/streaming-outs",
            json={
                "protocol": "hls",
                "parameters": {"hlsTime": 1, "hlsListSize": 3},
                "media": {"audio": {"from": camera}, "video": {"from": camera, "parameters": {"keyFrameInterval": 1}}},
            },
        )
        url, path = created["url"], f"/v1/rooms/{room}/streaming-outs/{created['id']}"
        assert url == f"{platform.url}/media/streaming/{room}/{created['id']}/index.m3u8"
        await wait_state(api, path, {"running"})
        deadline = time.monotonic() + 30
        while (response := await asyncio.to_thread(api.http.get, url)).status_code != 200 or media_sequence(
            response.text
        ) < 5:
            assert time.monotonic() < deadline, f"playlist: {response.status_code} {response.text}"
            await asyncio.sleep(0.5)
        assert response.headers["Access-Control-Allow-Origin"] == "*"
        streams = await asyncio.to_thread(probe_streams, url)
        assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
        assert (streams["video"]["width"], streams["video"]["height"]) == (640, 480)
        folder = platform.var / "media" / "streaming" / room / created["id"]
        # 3 in the list, 1 kept past it for players still reading (hls_delete_threshold), 1 being written.
        assert len(list(folder.glob("*.ts"))) <= 5, sorted(p.name for p in folder.iterdir())
        assert not (folder / "index0.ts").exists()
        api.request("DELETE", path)
        await wait_state(api, path, {"finished"})
    assert (folder / "index.m3u8").read_text().rstrip().endswith("#EXT-X-ENDLIST")


async def test_rtsp_to_a_listening_ffmpeg(platform, tmp_path, loopback_client):
    """ffmpeg as the RTSP server the output pushes to (ANNOUNCE/RECORD); what it receives is probed."""
    api, port = platform.api, free_port()
    received = tmp_path / "received.mkv"
    listener = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-rtsp_flags", "listen", "-i", f"rtsp://127.0.0.1:{port}/out", "-t", "3"]
        + ["-c", "copy", "-y", str(received)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    room = api.create_room("rtsp-out")["id"]
    try:
        await asyncio.sleep(0.5)  # ffmpeg listening
        async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
            camera = await publish(platform, alice, room)
            body = {
                "url": f"rtsp://127.0.0.1:{port}/out",
                "media": {"audio": {"from": camera}, "video": {"from": camera}},
            }
            created = api.request("POST", f"/v1/rooms/{room}/streaming-outs", json=body)
            assert created["protocol"] == "rtsp"
            await asyncio.to_thread(listener.wait, 40)
            api.request("DELETE", f"/v1/rooms/{room}/streaming-outs/{created['id']}")
    finally:
        if listener.poll() is None:
            listener.kill()
    assert listener.returncode == 0, listener.stderr.read()
    streams = await asyncio.to_thread(probe_streams, str(received))
    assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"


async def test_local_dash_is_served_and_plays(platform, loopback_client):
    api = platform.api
    room = api.create_room("dash-out")["id"]
    async with ConferenceClient(f"{platform.url.replace('http', 'ws')}/ws/signaling/") as alice:
        camera = await publish(platform, alice, room)
        video = {"from": camera, "parameters": {"keyFrameInterval": 1}}
        body = {
            "protocol": "dash",
            "parameters": {"dashSegDuration": 1, "dashWindowSize": 3},
            "media": {"audio": {"from": camera}, "video": video},
        }
        created = api.request("POST", f"/v1/rooms/{room}/streaming-outs", json=body)
        url, path = created["url"], f"/v1/rooms/{room}/streaming-outs/{created['id']}"
        assert url.endswith(".mpd")
        await wait_state(api, path, {"running"})
        deadline = time.monotonic() + 30
        while (await asyncio.to_thread(api.http.get, url)).status_code != 200:
            assert time.monotonic() < deadline, "no DASH manifest"
            await asyncio.sleep(0.5)
        await asyncio.sleep(3)
        streams = await asyncio.to_thread(probe_streams, url)
        assert streams["video"]["codec_name"] == "h264" and streams["audio"]["codec_name"] == "aac"
        api.request("DELETE", path)
        await wait_state(api, path, {"finished"})
