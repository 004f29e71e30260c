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
from streamengine.media.ice import use_host_addresses
from tests.streamengine.test_media_jobs import wait_state

pytestmark = [pytest.mark.timeout(120), pytest.mark.media, pytest.mark.worker]

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


@pytest.fixture(scope="module")
def rtmp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """nginx's RTMP module on a free loopback port: ``rtmp://127.0.0.1:PORT/live``."""
    if not RTMP_MODULE.exists():
        pytest.fail("nginx's RTMP module is missing: run bin/setup --test (libnginx-mod-rtmp)")
    tmp, port = tmp_path_factory.mktemp("nginx-rtmp"), free_port()
    (tmp / "nginx.conf").write_text(NGINX_CONF.format(module=RTMP_MODULE, tmp=tmp, port=port))
    log = (tmp / "stdout.log").open("ab")
    nginx = subprocess.Popen(
        ["nginx", "-c", str(tmp / "nginx.conf"), "-p", str(tmp), "-e", str(tmp / "error.log")], stdout=log, stderr=log
    )
    deadline = time.monotonic() + 10
    while f"127.0.0.1:{port}" not in subprocess.run(["ss", "-ltn"], capture_output=True, text=True).stdout:
        assert nginx.poll() is None and time.monotonic() < deadline, (tmp / "error.log").read_text()
        time.sleep(0.1)
    yield f"rtmp://127.0.0.1:{port}/live"
    nginx.terminate()
    nginx.wait(timeout=10)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory):
    with running_platform(tmp_path_factory.mktemp("streaming-outs")) as running:
        running.start_worker("media-1")
        yield running


@pytest.fixture
def loopback_client():
    use_host_addresses(["127.0.0.1"])
    yield
    use_host_addresses([])


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
