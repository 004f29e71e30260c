"""runplatform: the room tokens its portal hands out point where it listens (--host/--port)."""

import base64
import json
import subprocess
import sys

import pytest

from owt.localserver import ROOT, portal_env
from owt.management.commands.runplatform import Command, child_environment, client_address


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1:9000"),
        ("0.0.0.0", "127.0.0.1:9000"),
        ("::", "127.0.0.1:9000"),
        ("::1", "[::1]:9000"),
        ("owt.local", "owt.local:9000"),
    ],
)
def test_client_address_is_reachable(host, expected):
    assert client_address(host, 9000) == expected


def test_an_explicit_portal_host_wins():
    assert child_environment({"OWT_PORTAL_HOST": "owt.example.org"}, "0.0.0.0", 9000)["OWT_PORTAL_HOST"] == (
        "owt.example.org"
    )
    assert child_environment({"OWT_PORTAL_HOST": ""}, "0.0.0.0", 9000)["OWT_PORTAL_HOST"] == "127.0.0.1:9000"


@pytest.mark.embedded
def test_children_hand_out_tokens_for_the_port_given(tmp_path):
    """A child started with runplatform's environment for ``--port 9000`` mints tokens for
    port 9000 and lets the page's WebSocket reach it (CSP connect-src, served over TLS)."""
    options = vars(Command().create_parser("manage.py", "runplatform").parse_args(["--port", "9000"]))
    parent = portal_env(tmp_path, OWT_TLS="1")
    parent.pop("OWT_PORTAL_HOST", None)
    env = child_environment(parent, options["host"], options["port"])
    code = (
        "import json, django; django.setup()\n"
        "from django.conf import settings; from django.core.management import call_command\n"
        "from conference.services import room_create, service_bootstrap_super\n"
        "from streamengine.services import token_create\n"
        "call_command('migrate', verbosity=0)\n"
        "room = room_create(service=service_bootstrap_super()[0], name='r', options={})\n"
        "token = token_create(domain_id=room.id, user='alice', role='presenter')\n"
        "csp = settings.CONTENT_SECURITY_POLICY['DIRECTIVES']['connect-src']\n"
        "print(json.dumps({'token': token, 'connect_src': csp}))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True
    )
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert json.loads(base64.b64decode(result["token"]))["host"] == "127.0.0.1:9000"
    assert "wss://127.0.0.1:9000" in result["connect_src"]


@pytest.mark.embedded
def test_run_port_n_is_ready_and_hands_out_tokens_for_port_n(tmp_path):
    """``bin/run --port N`` as a user runs it: it says when it is ready, and the room tokens that
    its printed super service gets from the management API point at port N."""
    import queue
    import re
    import signal
    import threading

    from owt.client import ManagementClient
    from owt.localserver import free_port

    port = free_port()
    env = portal_env(tmp_path, LOG_LEVEL="WARNING")
    env.pop("OWT_PORTAL_HOST", None)
    env.pop("SECRET_KEY", None)
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runplatform", "--port", str(port), "--no-worker", "--no-beat"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True).start()
    output = ""
    try:
        while "is ready" not in output:
            output += lines.get(timeout=120)
        service_id = re.search(r"super service id: (\S+)", output)[1]
        service_key = re.search(r"super service key: (\S+)", output)[1]
        assert "ready" in output and f"http://127.0.0.1:{port}/" in output
        api = ManagementClient(f"http://127.0.0.1:{port}", service_id, service_key)
        room = api.create_room("port-test", {})
        token = api.create_token(room["_id"], user="alice", role="presenter")
        assert json.loads(base64.b64decode(token))["host"] == f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)


def test_several_portal_processes_need_the_redis_channel_layer(tmp_path):
    """On the in-memory channel layer signaling could not cross processes: refused before anything starts."""
    completed = subprocess.run(
        [sys.executable, "manage.py", "runplatform", "--workers", "2"],
        cwd=ROOT,
        env=portal_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode != 0
    assert "--workers above 1 needs the Redis channel layer" in completed.stderr
    assert not (tmp_path / "owt.sqlite3").exists()  # nothing migrated, nothing started
