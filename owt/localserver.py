"""Run the portal (daphne) on a free loopback port: for end-to-end tests, benchmarks and demos.

One place that knows how to start the real ASGI server in a child process with its own
environment, wait until it answers ``/health/``, and stop it cleanly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
