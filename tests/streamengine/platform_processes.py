"""The whole platform as separate processes, for media-job tests: daphne portal, Celery data
and media worker(s) and beat, on embedded defaults in one temporary directory (SQLite, the folder
broker, in-process channel layer inside the portal), as ``bin/run`` starts them."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from owt.client import ManagementClient
from owt.localserver import ROOT, free_port, manage, portal_env, running_portal


@dataclass
class Platform:
    url: str
    env: dict
    api: ManagementClient
    var: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def start_worker(self, name: str, queue: str = "media") -> subprocess.Popen:
        command = [sys.executable, "-m", "celery", "-A", "owt", "worker", "-Q", queue, "-P", "solo"]
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


@contextmanager
def running_platform(var: Path, **overrides: str) -> Iterator[Platform]:
    port = free_port()
    env = portal_env(
        var,
        OWT_PORTAL_HOST=f"127.0.0.1:{port}",
        MEDIA_HOST_ADDRESSES="127.0.0.1",
        ICE_SERVERS="[]",
        **overrides,
    )
    manage(env, "migrate", "--noinput", "-v0")
    bootstrap = manage(env, "owt_bootstrap")
    service_id = re.search(r"service id: (\S+)", bootstrap)[1]
    key = re.search(r"service key: (\S+)", bootstrap)[1]
    beat_log = (var / "beat.log").open("ab")
    beat = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "owt",
            "beat",
            "-s",
            str(var / "beat-schedule"),
            "--loglevel",
            "WARNING",
        ],
        cwd=ROOT,
        env=env,
        stdout=beat_log,
        stderr=beat_log,
    )
    try:
        with (
            running_portal(env, migrate=False, port=port, log_path=var / "daphne.log") as portal,
            ManagementClient(portal.url, service_id, key) as api,
        ):
            platform = Platform(url=portal.url, env=env, api=api, var=var)
            # The data worker runs beat's jobs, the media-job reaper among them (as bin/run).
            platform.start_worker("data", queue="data")
            try:
                yield platform
            finally:
                for worker in platform.workers:
                    _stop(worker)
    finally:
        _stop(beat)
