"""Run the portal (daphne) on a free loopback port, or the whole platform as processes:
for end-to-end tests, benchmarks and demos.

One place that knows how to start the real ASGI server in a child process with its own
environment, wait until it answers ``/health/``, and stop it cleanly; and, for media jobs,
the Celery data and media workers and beat beside it (:func:`running_platform`), as
``bin/run`` starts them.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from owt.client import ManagementClient

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@contextmanager
def serving_directory(root: Path) -> Iterator[str]:
    """Serve ``root``'s files over HTTP on a free loopback port from a thread; yields the base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietFileHandler, directory=str(root))
    )
    threading.Thread(target=server.serve_forever, name="serving-directory", daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Portal:
    url: str
    port: int
    process: subprocess.Popen
    env: dict


def manage(env: dict, *args: str) -> str:
    """Run ``manage.py ARGS`` with ``env``; returns its standard output."""
    completed = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if completed.returncode:
        raise RuntimeError(f"manage.py {' '.join(args)} exited {completed.returncode}: {completed.stderr[-2000:]}")
    return completed.stdout


# What makes a portal share the caller's services instead of running on embedded defaults.
SHARED_SERVICE_VARIABLES = (
    "DATABASE_URL",
    "REDIS_URL",
    "CELERY_BROKER_URL",
    "CELERY_RESULT_BACKEND",
    "CHANNEL_LAYER",
    "CHANNEL_REDIS_URL",
)


def portal_env(var_dir: Path | None = None, **overrides: str) -> dict:
    """The environment of a child portal: this one's or, given ``var_dir``, the embedded defaults
    in that directory (its own SQLite file, broker folder and in-process channel layer)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "owt.settings", "LOG_LEVEL": "WARNING"}
    if var_dir is not None:
        env["OWT_VAR_DIR"] = str(var_dir)
        for name in SHARED_SERVICE_VARIABLES:
            env.pop(name, None)
    env.update(overrides)
    return env


@contextmanager
def running_portal(
    env: dict, *, migrate: bool = True, port: int | None = None, log_path: Path | None = None, timeout: float = 60
) -> Iterator[Portal]:
    """Start daphne with ``env`` on 127.0.0.1 (a free port unless given) and yield it once ``/health/`` answers."""
    if migrate:
        manage(env, "migrate", "--noinput", "-v0")
    port = port or free_port()
    log = log_path.open("wb") if log_path else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "owt.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(f"{url}/health/", process, timeout, log_path)
        yield Portal(url=url, port=port, process=process, env=env)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log_path:
            log.close()


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float, log_path: Path | None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            detail = log_path.read_text(errors="replace")[-2000:] if log_path else ""
            raise RuntimeError(f"daphne exited with code {process.returncode}. {detail}")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"daphne did not answer {url} within {timeout:.0f}s")


@dataclass(frozen=True)
class PortalWorkers:
    """``manage.py runplatform --workers N``: N portal processes on one port, and its super service."""

    url: str
    port: int
    pids: list[int]  # the portal processes (daphne), in start order
    service_id: str
    key: str


@contextmanager
def running_portal_workers(env: dict, workers: int, *, log_path: Path, timeout: float = 120) -> Iterator[PortalWorkers]:
    """``manage.py runplatform --workers N --no-worker --no-beat`` on a free loopback port with
    ``env`` (which must configure the Redis channel layer), yielded once a portal answers ``/health/``;
    its media node too, unless ``env`` embeds one. Stopped (SIGTERM, as Ctrl-C) on exit."""
    port = free_port()
    command = [sys.executable, "manage.py", "runplatform", "--workers", str(workers), "--no-worker", "--no-beat"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1"}, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_up(f"{url}/health/", process, timeout, log_path)
            output = log_path.read_text(errors="replace")
            yield PortalWorkers(
                url=url,
                port=port,
                pids=[int(pid) for pid in re.findall(r"portal-\d+ pid (\d+)", output)],
                service_id=re.search(r"service id: (\S+)", output)[1],
                key=re.search(r"service key: (\S+)", output)[1],
            )
        finally:
            _stop(process)


@dataclass
class Platform:
    url: str
    env: dict
    api: ManagementClient
    var: Path
    portal_pid: int = 0  # daphne's (the embedded media node runs in it)
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, name: str, queue: str = "media", concurrency: int = 0) -> subprocess.Popen:
        """A Celery worker on ``queue``: one process (solo pool), or ``concurrency`` forked children."""
        pool = (
            ["-P", "prefork", "-c", str(concurrency), "--prefetch-multiplier", "1"] if concurrency else ["-P", "solo"]
        )
        command = [sys.executable, "-m", "celery", "-A", "owt", "worker", "-Q", queue, *pool]
        command += ["-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
        log = (self.var / f"{name}.log").open("ab")
        worker = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=log, stderr=log)
        self.workers.append(worker)
        return worker

    def kill(self, worker: subprocess.Popen) -> None:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Bootstrapped:
    """A running portal with its super service: ``api`` signs management requests."""

    portal: Portal
    api: ManagementClient
    env: dict
    service_id: str
    key: str


@contextmanager
def bootstrapped_portal(var: Path, **overrides: str) -> Iterator[Bootstrapped]:
    """A daphne portal on embedded defaults in ``var`` (loopback media, no ICE servers), migrated,
    with its super service bootstrapped (``manage.py owt_bootstrap``) and a client for it."""
    port = free_port()
    env = portal_env(
        var, OWT_PORTAL_HOST=f"127.0.0.1:{port}", MEDIA_HOST_ADDRESSES="127.0.0.1", ICE_SERVERS="[]", **overrides
    )
    manage(env, "migrate", "--noinput", "-v0")
    bootstrap = manage(env, "owt_bootstrap")
    service_id = re.search(r"service id: (\S+)", bootstrap)[1]
    key = re.search(r"service key: (\S+)", bootstrap)[1]
    with (
        running_portal(env, migrate=False, port=port, log_path=var / "daphne.log") as portal,
        ManagementClient(portal.url, service_id, key) as api,
    ):
        yield Bootstrapped(portal, api, env, service_id, key)


@contextmanager
def running_platform(var: Path, **overrides: str) -> Iterator[Platform]:
    """:func:`bootstrapped_portal` plus Celery beat, a data worker and the media workers a caller starts."""
    with bootstrapped_portal(var, **overrides) as running:
        beat_log = (var / "beat.log").open("ab")
        beat = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "owt", "beat", "-s", str(var / "beat-schedule")]
            + ["--loglevel", "WARNING"],
            cwd=ROOT,
            env=running.env,
            stdout=beat_log,
            stderr=beat_log,
        )
        try:
            platform = Platform(
                url=running.portal.url, env=running.env, api=running.api, var=var, portal_pid=running.portal.process.pid
            )
            # The data worker runs beat's jobs, the media-job reaper among them (as bin/run).
            platform.start_worker("data", queue="data")
            try:
                yield platform
            finally:
                for worker in platform.workers:  # all at once: each takes seconds to shut down
                    if worker.poll() is None:
                        worker.terminate()
                for worker in platform.workers:
                    _stop(worker)
        finally:
            _stop(beat)
