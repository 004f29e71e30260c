"""Simulate a P2P-CDN audience that posts viewer reports over HTTP to a running portal."""

from __future__ import annotations

import json
import math
import os
import random
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from django.core.management.base import BaseCommand, CommandError

# (user agent, share of the audience, has WebRTC): IE viewers play CDN-only, as with Viblast.
BROWSER_MIX = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",
        58,
        True,
    ),
    ("Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0", 14, True),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Safari/605.1.15",
        15,
        True,
    ),
    ("Mozilla/5.0 (Windows NT 6.1; Trident/7.0; rv:11.0) like Gecko", 6, False),
    (
        "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 OPR/106.0",
        7,
        True,
    ),
)
BITRATES = (400, 975, 2000, 4000)  # kbps renditions of every simulated stream


@dataclass
class Viewer:
    session: str
    stream: int
    bitrate: int
    browser: str
    webrtc: bool
    leaves_at: float
    reported: bool = False


class Command(BaseCommand):
    help = (
        "Post realistic viewer reports to a running portal: viewers join (Poisson) and leave (exponential "
        "watch time) around a target concurrency, with a browser mix, WebRTC share, P2P offload, rendition "
        "switches and QoE. Registers the client and streams through the tracker-api first, with the "
        "client's write key (--key; not needed when the portal runs with PORTAL_STATS_OPEN=1)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000", help="portal base URL")
        parser.add_argument("--client-uuid", default="sim-tv", help="client uuid to register and report for")
        parser.add_argument(
            "--key",
            default=os.environ.get("PORTAL_WRITE_KEY"),
            help="the client's write key (default $PORTAL_WRITE_KEY; make one with manage.py portal_keys)",
        )
        parser.add_argument("--streams", type=int, default=3, help="number of live streams")
        parser.add_argument("--viewers", type=int, default=2000, help="target concurrent viewers")
        parser.add_argument("--watch-mean", type=float, default=600.0, help="mean watch time in seconds")
        parser.add_argument("--duration", type=float, default=120.0, help="how long to run, seconds")
        parser.add_argument("--interval", type=float, default=10.0, help="report interval per viewer, seconds")
        parser.add_argument(
            "--webrtc-share", type=float, default=0.9, help="share of WebRTC-capable browsers using P2P"
        )
        parser.add_argument("--offload", type=float, default=0.6, help="mean share of P2P viewers' bytes from peers")
        parser.add_argument("--batch", type=int, default=1000, help="reports per POST")
        parser.add_argument("--seed", type=int, default=None)

    def handle(self, *args, **options) -> None:
        self.base = options["url"].rstrip("/")
        self.headers = {"Content-Type": "application/json"}
        if options["key"]:
            self.headers["Authorization"] = f"Bearer {options['key']}"
        rng = random.Random(options["seed"])
        client = self._post("/portal/tracker-api/clients/", {"name": "Simulated TV", "uuid": options["client_uuid"]})
        streams = [
            self._post(
                "/portal/tracker-api/streams/",
                {"client": client["id"], "cdn_stream": f"https://cdn.example.com/live/sim-{n}/master.m3u8"},
            )["id"]
            for n in range(options["streams"])
        ]
        self.stdout.write(
            f"client {options['client_uuid']!r} (id {client['id']}), streams {streams}: their time series are at "
            f"{self.base}/portal/dashboard and "
            f"{self.base}/portal/api/stats/time/<from>-<until>/full.count/clients/{options['client_uuid']}"
            f"[/streams/<id>] (read key or staff); Ctrl-C stops"
        )
        totals = {"reports": 0, "joined": 0, "left": 0}
        try:
            self._simulate(options, streams, rng, totals)
        except KeyboardInterrupt:
            self.stdout.write("interrupted")
        self.stdout.write(
            self.style.SUCCESS(
                f"done: {totals['reports']} reports, {totals['joined']} joined, {totals['left']} left, "
                f"client {options['client_uuid']!r} (id {client['id']}), streams {streams}"
            )
        )

    def _simulate(self, options: dict, streams: list[int], rng: random.Random, totals: dict) -> None:
        interval, watch_mean = options["interval"], options["watch_mean"]
        start = time.monotonic()
        viewers: list[Viewer] = []
        counter = 0

        def join(now: float) -> None:
            nonlocal counter
            counter += 1
            ua, _, capable = rng.choices(BROWSER_MIX, [share for _, share, _ in BROWSER_MIX])[0]
            viewers.append(
                Viewer(
                    session=f"sim-{options['seed'] or 0}-{counter}-{rng.randrange(1 << 30):x}",
                    # A few popular streams: Zipf-like popularity.
                    stream=streams[min(int(rng.paretovariate(1.2)) - 1, len(streams) - 1)],
                    bitrate=rng.choice(BITRATES[1:]),
                    browser=ua,
                    webrtc=capable and rng.random() < options["webrtc_share"],
                    leaves_at=now + rng.expovariate(1 / watch_mean),
                )
            )

        for _ in range(options["viewers"]):
            join(start)
        totals["joined"] += options["viewers"]
        tick = 0
        while True:
            tick += 1
            due = start + tick * interval
            if due - start > options["duration"]:
                break
            time.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            # Arrivals that keep the concurrency steady: rate = viewers / mean watch time.
            arrivals = _poisson(rng, options["viewers"] / watch_mean * interval)
            for _ in range(arrivals):
                join(now)
            leaving = [v for v in viewers if v.leaves_at <= now]
            viewers = [v for v in viewers if v.leaves_at > now]
            reports = [self._report(v, interval, options["offload"], rng) for v in viewers + leaving]
            started = time.monotonic()
            for index in range(0, len(reports), options["batch"]):
                self._post("/portal/tracker-api/reports/", {"reports": reports[index : index + options["batch"]]})
            totals["reports"] += len(reports)
            totals["joined"] += arrivals
            totals["left"] += len(leaving)
            self.stdout.write(
                f"t={now - start:6.1f}s viewers={len(viewers):6d} joined={arrivals:4d} left={len(leaving):4d} "
                f"reports={len(reports):6d} posted in {1000 * (time.monotonic() - started):7.1f} ms"
            )

    def _report(self, viewer: Viewer, interval: float, offload: float, rng: random.Random) -> dict:
        if rng.random() < 0.03:  # ABR switches a rendition up or down
            index = BITRATES.index(viewer.bitrate) + rng.choice((-1, 1))
            viewer.bitrate = BITRATES[max(0, min(len(BITRATES) - 1, index))]
        downloaded = int(viewer.bitrate * 125 * interval * rng.uniform(0.9, 1.1))
        swarm = int(downloaded * min(1.0, max(0.0, rng.gauss(offload, 0.15)))) if viewer.webrtc else 0
        report = {
            "session": viewer.session,
            "stream": viewer.stream,
            "bitrate": viewer.bitrate,
            "browser": viewer.browser,
            "webrtc": viewer.webrtc,
            "down_cdn": downloaded - swarm,
            "down_swarm": swarm,
            "up_swarm": int(swarm * rng.uniform(0.6, 1.4)) if viewer.webrtc else 0,
            "rebuffer_ms": int(rng.expovariate(1 / 800)) if rng.random() < 0.02 else 0,
        }
        if not viewer.reported:
            report["startup_ms"] = int(rng.lognormvariate(6.8, 0.4))
            viewer.reported = True
        return report

    def _post(self, path: str, body: dict) -> dict:
        request = urllib.request.Request(self.base + path, data=json.dumps(body).encode(), headers=self.headers)
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise CommandError(f"POST {path} -> {exc.code}: {exc.read()[:500].decode(errors='replace')}") from exc
        except urllib.error.URLError as exc:
            raise CommandError(f"POST {path}: cannot reach {self.base} ({exc.reason})") from exc


def _poisson(rng: random.Random, mean: float) -> int:
    """Poisson sample (Knuth for small means, a rounded normal approximation for large ones)."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
