"""OWT management API under load: GET /v1/rooms and POST tokens (wrk; paced), MAuth verification cost.

Starts its own daphne on a free loopback port with a throw-away SQLite database (or the
``DATABASE_URL`` you export), creates a service and rooms, and drives it with ``wrk``
(saturated: throughput) or at a constant rate (``--mode rate``: latency at a given load,
counted from when each request was due, wrk2-style; ``bench/_constant_rate.py``).
Replay protection accepts each MAuth header once, so headers are signed in advance — one
per request, distinct cnonces — and the Lua script hands each wrk thread its own share
(nothing is relaxed on the server for the benchmark). ``GET /health/`` (no auth; it checks
the database, broker and channel layer) is the baseline the other rows are compared with.
``--workers N`` serves from ``manage.py runplatform --workers N`` (needs ``REDIS_URL``).

    python -m bench mgmt_api                       # ~25 s: 5 s per scenario, 16 connections
    python -m bench mgmt_api --mode both --rate 200
    DATABASE_URL=postgres://… REDIS_URL=redis://… python -m bench mgmt_api --mode rate --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from bench import _constant_rate as constant_rate
from bench.media_jobs import _tree_cpu_seconds
from bench.report import emit

LUA = r"""
local counter = 0
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end
function init(args)
  headers = {}
  local nthreads = tonumber(args[2])
  local i = 0
  for line in io.lines(args[1]) do
    if i % nthreads == tid then headers[#headers + 1] = line end
    i = i + 1
  end
  method, body, idx = args[3], args[4], 0
  if body == "" then body = nil end
end
function request()
  idx = idx + 1
  if idx > #headers then idx = 1 end  -- wrapping around would replay: size the file generously
  return wrk.format(method, nil, {["Authorization"] = headers[idx], ["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,"non2xx":%d,"socket_errors":%d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), latency.max,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def run_wrk(url: str, *, headers_file: Path, method: str, body: str, args: argparse.Namespace, lua: Path) -> dict:
    command = [
        shutil.which("wrk") or "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.duration}s",
        "--latency",
        "-s",
        str(lua),
        url,
        "--",
        str(headers_file),
        str(args.threads),
        method,
        body,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    return result


def mauth_microbench(service_id: str, key: str, n: int) -> dict:
    """µs per verification: parse + HMAC + compare alone, and the full check (DB lookup, replay cache)."""
    from owt import mauth

    headers = [mauth.build_header(service_id=service_id, key=key) for _ in range(n)]
    started = time.perf_counter()
    for header in headers:
        fields = mauth.parse_header(header)
        expected = mauth.signature(key, mauth.string_to_sign(fields["timestamp"], fields["cnonce"]))
        assert expected == fields["signature"]
    crypto_us = (time.perf_counter() - started) / n * 1e6
    started = time.perf_counter()
    for header in headers:
        mauth.verify(header)
    full_us = (time.perf_counter() - started) / n * 1e6
    return {"crypto_us": crypto_us, "full_us": full_us}


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench mgmt_api", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--mode",
        choices=("saturate", "rate", "both"),
        default="saturate",
        help="saturate: wrk as fast as it goes (throughput); rate: paced at --rate, latency corrected for "
        "coordinated omission; both (default saturate)",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="requests per second in rate mode (default 200)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per scenario (default 5)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rooms", type=int, default=10, help="rooms listed by GET /v1/rooms")
    parser.add_argument("--verify-samples", type=int, default=2000, help="MAuth microbenchmark iterations")
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="portal processes (manage.py runplatform --workers N); above 1 needs REDIS_URL, and DATABASE_URL "
        "(PostgreSQL) to be meaningful",
    )
    args = parser.parse_args(argv)
    if args.mode != "rate" and not shutil.which("wrk"):
        raise SystemExit("wrk is required (apt-get install wrk)")
    if args.workers > 1 and not os.environ.get("REDIS_URL"):
        raise SystemExit("--workers above 1 needs REDIS_URL: the portal processes share the Redis channel layer")

    workdir = Path(tempfile.mkdtemp(prefix="owt-bench-mgmt-"))
    env = {**os.environ, "OWT_VAR_DIR": str(workdir), "DJANGO_SETTINGS_MODULE": "owt.settings", "LOG_LEVEL": "WARNING"}
    # The benchmark measures throughput past any per-service rate limit, so that limit is off.
    env["THROTTLE_OWT_SERVICE"] = ""
    # This process creates the service the portals check: both encrypt its key under one SECRET_KEY.
    env.setdefault("SECRET_KEY", "bench-mgmt-api-" + "k" * 40)
    os.environ.update({k: env[k] for k in ("OWT_VAR_DIR", "DJANGO_SETTINGS_MODULE", "LOG_LEVEL", "SECRET_KEY")})
    # Imported only now: importing owt (DRF) reads the settings, which must see OWT_VAR_DIR.
    from owt.localserver import running_portal, running_portal_workers

    if args.workers > 1:
        server = running_portal_workers(env, args.workers, log_path=workdir / "runplatform.log")
    else:
        server = running_portal(env)
    try:
        with server as portal:
            pids = portal.pids if args.workers > 1 else [portal.process.pid]
            return run_scenarios(portal.url, portal.port, pids, workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


COLUMNS = (
    "scenario",
    "load",
    "req/s",
    "p50 ms",
    "p99 ms",
    "max ms",
    "send lag p99 ms",
    "server CPU ms/req",
    "requests",
    "non-2xx",
    "errors",
)


def server_cpu_seconds(pids: list[int]) -> float:
    return sum(_tree_cpu_seconds(pid) for pid in pids)


def run_scenarios(base: str, port: int, pids: list[int], workdir: Path, args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from conference.services import service_create
    from owt.client import ManagementClient
    from owt.mauth import build_header

    service = service_create(name=f"bench-{port}-{os.getpid()}", key="bench-key")
    api = ManagementClient(base, service.id, "bench-key")
    room_id = [api.create_room(f"room{i}")["_id"] for i in range(max(args.rooms, 1))][0]

    def sign(count: int) -> list[str]:
        return [build_header(service_id=service.id, key="bench-key") for _ in range(count)]

    token_body = json.dumps({"user": "bench", "role": "presenter"})
    scenarios = [
        ("GET /health/ (baseline, no auth)", "/health/", "GET", ""),
        (f"GET /v1/rooms ({args.rooms} rooms)", "/v1/rooms", "GET", ""),
        ("POST /v1/rooms/{id}/tokens", f"/v1/rooms/{room_id}/tokens", "POST", token_body),
    ]
    rows = []
    if args.mode in ("saturate", "both"):
        # Enough one-time headers for a fast server: 3000 req/s per scenario second, x2 margin.
        count = max(20000, 6000 * args.duration)
        headers_file = workdir / "headers.txt"
        lua = workdir / "mauth.lua"
        lua.write_text(LUA)
        for name, path, method, body in scenarios:
            # Each scenario gets fresh headers: a previous run used (and burned) its share.
            headers_file.write_text("\n".join(sign(count)))
            cpu = server_cpu_seconds(pids)
            result = run_wrk(f"{base}{path}", headers_file=headers_file, method=method, body=body, args=args, lua=lua)
            rows.append(
                {
                    "scenario": name,
                    "load": f"saturated, {args.connections} conn.",
                    "req/s": result["rps"],
                    "p50 ms": result["p50_us"] / 1000,
                    "p99 ms": result["p99_us"] / 1000,
                    "max ms": result["max_us"] / 1000,
                    "send lag p99 ms": "",
                    "server CPU ms/req": (server_cpu_seconds(pids) - cpu) * 1000 / max(result["requests"], 1),
                    "requests": result["requests"],
                    "non-2xx": result["non2xx"],
                    "errors": result["socket_errors"],
                }
            )
    if args.mode in ("rate", "both"):
        for name, path, method, body in scenarios:
            headers = sign(int(args.rate * args.duration) + 1)
            cpu = server_cpu_seconds(pids)
            result = asyncio.run(
                constant_rate.run(
                    "127.0.0.1",
                    port,
                    rate=args.rate,
                    seconds=args.duration,
                    connections=args.connections,
                    request=lambda i, path=path, method=method, body=body, headers=headers: constant_rate.http_request(
                        method,
                        path,
                        host=f"127.0.0.1:{port}",
                        headers={"Authorization": headers[i], "Content-Type": "application/json"},
                        body=body.encode(),
                    ),
                )
            )
            rows.append(
                {
                    "scenario": name,
                    "load": f"{args.rate:g} req/s paced, {args.connections} conn.",
                    "req/s": result.achieved,
                    "p50 ms": result.p50_ms,
                    "p99 ms": result.p99_ms,
                    "max ms": result.max_ms,
                    "send lag p99 ms": result.send_lag_p99_ms,
                    "server CPU ms/req": (server_cpu_seconds(pids) - cpu) * 1000 / result.sent,
                    "requests": result.sent,
                    "non-2xx": result.non2xx,
                    "errors": result.errors,
                }
            )
    micro = mauth_microbench(service.id, "bench-key", args.verify_samples)
    notes: dict = {}
    saturated = [row for row in rows if row["load"].startswith("saturated")]
    if saturated:
        baseline = saturated[0]["req/s"]
        notes["GET /v1/rooms throughput / baseline"] = saturated[1]["req/s"] / baseline
        notes["POST tokens throughput / baseline"] = saturated[2]["req/s"] / baseline
    processes = f"{args.workers} portal processes (runplatform --workers)" if args.workers > 1 else "daphne (1 process)"
    notes.update(
        {
            "MAuth parse+HMAC+compare (us/request)": micro["crypto_us"],
            "MAuth full verify incl. service lookup + replay cache (us/request)": micro["full_us"],
            "setup": (
                f"{processes} on loopback, {args.connections} connections, {args.duration}s per scenario, "
                f"database {os.environ.get('DATABASE_URL', 'SQLite (temp file)')}, "
                f"channel layer {'Redis' if os.environ.get('REDIS_URL') else 'in-memory'}"
            ),
        }
    )
    emit("mgmt_api", rows, notes=notes, columns=COLUMNS)
    return {"rows": rows, "notes": notes}
