"""Start the whole platform: portal (daphne, with the embedded media node), Celery workers and beat.

On the embedded defaults this needs no server at all (SQLite, in-memory channel layer,
kombu's filesystem broker). The same processes can be started one by one for scale-out
(README, "Running distributed"). Ctrl-C stops every child cleanly.

With the Redis channel layer the media node is a process of its own (``manage.py medianode``)
and ``--workers N`` runs N portal processes that accept on one listening socket, which this
command opens and hands to each daphne (``--fd``): the kernel spreads connections over them,
and signaling reaches participants on any of them through the channel layer.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from owt.secret_key import create_file

STOP_GRACE_SECONDS = 15
READY_PROBE_SECONDS = 0.5
# Bind addresses that mean "every interface": no client can connect to them as written.
WILDCARD_HOSTS = {"", "0.0.0.0", "::"}


def client_address(host: str, port: int) -> str:
    """The ``host:port`` a client on this machine reaches a server bound to ``host``/``port`` at."""
    if host in WILDCARD_HOSTS:
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"  # an IPv6 literal, as URLs write it
    return f"{host}:{port}"


def child_environment(environ: Mapping[str, str], host: str, port: int) -> dict[str, str]:
    """The environment of every process runplatform starts.

    Room tokens name ``OWT_PORTAL_HOST`` (and the CSP allows WebSockets to it), so unless the
    operator set it, it is where this portal listens; the children read it when their settings load.
    """
    env = {**environ, "DJANGO_SETTINGS_MODULE": "owt.settings"}
    if not env.get("OWT_PORTAL_HOST"):
        env["OWT_PORTAL_HOST"] = client_address(host, port)
    return env


def portal_answers(url: str) -> bool:
    """Whether the portal answers ``/health/`` (200, or 503 when a dependency is down) yet."""
    try:
        with urllib.request.urlopen(url, timeout=READY_PROBE_SECONDS):
            return True
    except urllib.error.HTTPError:
        return True  # it answered: the page says what is down
    except OSError:
        return False


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket listening on ``host``:``port`` for the portal processes to share (IPv4:
    daphne adopts a descriptor as an IPv4 socket)."""
    if ":" in host:
        raise CommandError("--workers above 1 listens on IPv4 addresses only (e.g. --host 0.0.0.0)")
    listener = socket.create_server((host, port), backlog=1024)
    listener.set_inheritable(True)
    return listener


class Command(BaseCommand):
    help = "Run portal + worker + beat in one command (migrating and bootstrapping on first start)."
    # Checked in handle(), once the first start has its own SECRET_KEY.
    requires_system_checks: list[str] = []

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--host",
            default=os.environ.get("OWT_BIND_HOST", "127.0.0.1"),
            help=(
                "Address the portal listens on; room tokens point at it (127.0.0.1 for 0.0.0.0 or ::). "
                "Set OWT_PORTAL_HOST to the public host:port clients should use instead"
            ),
        )
        parser.add_argument(
            "--port",
            type=int,
            default=int(os.environ.get("OWT_PORT", "8000")),
            help="Port the portal listens on; room tokens point at it unless OWT_PORTAL_HOST is set",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=int(os.environ.get("OWT_PORTAL_WORKERS", "1")),
            help="Portal processes sharing the listening socket (more than 1 needs the Redis channel layer, "
            "REDIS_URL; socket.io long-polling then needs sticky routing, docs/signaling.md)",
        )
        parser.add_argument(
            "--no-media-node",
            action="store_true",
            help="Do not start a media node process (Redis channel layer: nodes run elsewhere)",
        )
        parser.add_argument("--no-worker", action="store_true", help="Do not start the Celery workers")
        parser.add_argument("--no-beat", action="store_true", help="Do not start Celery beat")
        parser.add_argument("--concurrency", type=int, default=1, help="Processes of the data worker")
        parser.add_argument(
            "--media-concurrency",
            type=int,
            default=int(os.environ.get("MEDIA_WORKER_CONCURRENCY", "2")),
            help="Media jobs (recordings, streaming-outs/-ins) the media worker runs at once, one process each; "
            "MEDIA_JOB_CPU_BUDGET caps what they may cost together",
        )

    def handle(self, *args, **options) -> None:
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        if options["workers"] > 1 and settings.CHANNEL_LAYER != "redis":
            raise CommandError(
                "--workers above 1 needs the Redis channel layer (set REDIS_URL): the in-memory layer only "
                "reaches its own process, so signaling could not cross portal processes"
            )
        if not os.environ.get("SECRET_KEY") and not settings.SECRET_KEY_FILE.exists():
            self.generate_secret_key()
        self.check()
        # Runtime state (admin password, beat schedule) and the static root WhiteNoise serves
        # from: made here on a fresh checkout, not at settings import.
        for folder in (settings.VAR_DIR, settings.STATIC_ROOT):
            Path(folder).mkdir(parents=True, exist_ok=True)
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("database migrated")
        admin_line = self.bootstrap_admin()
        call_command("owt_bootstrap")  # prints the OWT super service id and key

        # Before the first child exists: a Ctrl-C during start-up must stop them too, not orphan them.
        self.stopping = False
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        python = sys.executable
        base = str(settings.BASE_DIR)
        children: dict[str, subprocess.Popen] = {}
        env = child_environment(os.environ, options["host"], options["port"])
        if options["workers"] == 1:
            portal = [python, "-m", "daphne", "-b", options["host"], "-p", str(options["port"]), "owt.asgi:application"]
            children["portal"] = subprocess.Popen(portal, cwd=base, env=env)
        else:
            # Opened here, so every portal accepts on it and a restart of one loses no connections.
            with listening_socket(options["host"], options["port"]) as listener:
                portal = [python, "-m", "daphne", "--fd", str(listener.fileno()), "owt.asgi:application"]
                for number in range(1, options["workers"] + 1):
                    children[f"portal-{number}"] = subprocess.Popen(
                        portal, cwd=base, env=env, pass_fds=(listener.fileno(),)
                    )
        if not settings.MEDIA_NODE_EMBEDDED and not options["no_media_node"]:
            children["media-node"] = subprocess.Popen([python, "manage.py", "medianode"], cwd=base, env=env)
        if not options["no_worker"]:
            celery_worker = [python, "-m", "celery", "-A", "owt", "worker", "--loglevel", "INFO"]
            # One worker per queue: a long media job never holds up rollups and summaries.
            media = ["-Q", "media", "-n", "media@%h", "-c", str(options["media_concurrency"])]
            media += ["--prefetch-multiplier", "1"]
            data = ["-Q", "data", "-n", "data@%h", "-c", str(options["concurrency"])]
            children["media-worker"] = subprocess.Popen(celery_worker + media, cwd=base, env=env)
            children["data-worker"] = subprocess.Popen(celery_worker + data, cwd=base, env=env)
        if not options["no_beat"]:
            schedule = Path(settings.VAR_DIR) / "celerybeat-schedule"
            beat = [python, "-m", "celery", "-A", "owt", "beat", "-s", str(schedule), "--loglevel", "INFO"]
            children["beat"] = subprocess.Popen(beat, cwd=base, env=env)

        url = f"http://{client_address(options['host'], options['port'])}"
        self.stdout.write(
            self.style.SUCCESS(
                "\n".join(
                    [
                        "",
                        "OWT media platform is starting:",
                        f"  portal        {url}/",
                        f"  admin         {url}/admin/   ({admin_line})",
                        f"  API schema    {url}/api/schema/  (Swagger UI {url}/api/docs/)",
                        f"  health        {url}/health/",
                        f"  room tokens   for {env['OWT_PORTAL_HOST']} (OWT_PORTAL_HOST)",
                        f"  processes     {', '.join(f'{name} pid {p.pid}' for name, p in children.items())}",
                        "Press Ctrl-C to stop.",
                        "",
                    ]
                )
            )
        )
        self.supervise(children, ready_url=f"{url}/health/")

    def generate_secret_key(self) -> None:
        """First embedded start: a random SECRET_KEY kept in var/secret_key (0600), reused afterwards.

        This process read its settings before the file existed, so it starts again on the new key
        before anything (the super service's key) is encrypted under the development one.
        """
        create_file(settings.SECRET_KEY_FILE)
        self.stdout.write(f"generated SECRET_KEY in {settings.SECRET_KEY_FILE} (keep it: it encrypts the service keys)")
        sys.stdout.flush()
        os.execv(sys.executable, [sys.executable, *sys.argv])

    def bootstrap_admin(self) -> str:
        """Create the first superuser once; its password is printed then and kept under var/."""
        user_model = get_user_model()
        password_file = Path(settings.VAR_DIR) / "admin-password.txt"
        if not user_model.objects.filter(is_superuser=True).exists():
            password = os.environ.get("OWT_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
            user_model.objects.create_superuser("admin", "admin@localhost", password)
            password_file.write_text(password + "\n")
            password_file.chmod(0o600)
            return f"user admin, password {password}"
        if password_file.exists():
            return f"user admin, password {password_file.read_text().strip()}"
        return "existing superuser"

    def request_stop(self, signum: int, frame: object) -> None:
        self.stopping = True

    def supervise(self, children: dict[str, subprocess.Popen], ready_url: str) -> None:
        exit_code = 0
        started = time.monotonic()
        ready = False
        while not self.stopping:
            if not ready and portal_answers(ready_url):
                ready = True
                self.stdout.write(
                    self.style.SUCCESS(
                        f"OWT media platform is ready ({time.monotonic() - started:.1f} s): "
                        f"{ready_url.removesuffix('health/')}"
                    )
                )
            for name, child in children.items():
                if child.poll() is not None:
                    self.stderr.write(f"{name} exited with code {child.returncode}; stopping the platform")
                    exit_code = child.returncode or 1
                    self.stopping = True
                    break
            time.sleep(0.5)
        self.stdout.write("stopping…")
        for child in children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for name, child in children.items():
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in {STOP_GRACE_SECONDS}s; killing it")
                child.kill()
                child.wait()
        self.stdout.write("stopped")
        if exit_code:
            sys.exit(exit_code)
