"""OWT management API under load: GET /v1/rooms and POST tokens (wrk), MAuth verification cost.

Starts its own daphne on a free loopback port with a throw-away SQLite database (or the
``DATABASE_URL`` you export), creates a service and rooms, and drives it with ``wrk``.
Replay protection accepts each MAuth header once, so headers are signed in advance — one
per request, distinct cnonces — and the Lua script hands each wrk thread its own share
(nothing is relaxed on the server for the benchmark). ``GET /health/`` (no auth, no DB) is
the baseline the other rows are compared with.

    python -m bench mgmt_api                       # ~25 s: 5 s per scenario, 16 connections
    python -m bench mgmt_api --duration 20 --connections 64
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

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
    parser.add_argument("--duration", type=int, default=5, help="seconds per scenario (default 5)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--rooms", type=int, default=10, help="rooms listed by GET /v1/rooms")
    parser.add_argument("--verify-samples", type=int, default=2000, help="MAuth microbenchmark iterations")
    args = parser.parse_args(argv)
    if not shutil.which("wrk"):
        raise SystemExit("wrk is required (apt-get install wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="owt-bench-mgmt-"))
    env = {**os.environ, "OWT_VAR_DIR": str(workdir), "DJANGO_SETTINGS_MODULE": "owt.settings", "LOG_LEVEL": "WARNING"}
    # The benchmark measures throughput past any per-service rate limit, so that limit is off.
    env["THROTTLE_OWT_SERVICE"] = ""
    os.environ.update({k: env[k] for k in ("OWT_VAR_DIR", "DJANGO_SETTINGS_MODULE", "LOG_LEVEL")})
    # Imported only now: importing owt (DRF) reads the settings, which must see OWT_VAR_DIR.
    from owt.localserver import running_portal

    try:
        with running_portal(env) as portal:
            return run_scenarios(portal.url, portal.port, workdir, args)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run_scenarios(base: str, port: int, workdir: Path, args: argparse.Namespace) -> dict:
    import django

    django.setup()
    from conference.services import service_create
    from owt.client import ManagementClient
    from owt.mauth import build_header

    service = service_create(name=f"bench-{port}", key="bench-key")
    api = ManagementClient(base, service.id, "bench-key")
    room_id = [api.create_room(f"room{i}")["_id"] for i in range(max(args.rooms, 1))][0]

    # Enough one-time headers for a fast server: 3000 req/s per scenario second, x2 margin.
    count = max(20000, 6000 * args.duration)
    headers_file = workdir / "headers.txt"
    lua = workdir / "mauth.lua"
    lua.write_text(LUA)
    token_body = json.dumps({"user": "bench", "role": "presenter"})
    scenarios = [
        ("GET /health/ (baseline, no auth)", f"{base}/health/", "GET", ""),
        (f"GET /v1/rooms ({args.rooms} rooms)", f"{base}/v1/rooms", "GET", ""),
        ("POST /v1/rooms/{id}/tokens", f"{base}/v1/rooms/{room_id}/tokens", "POST", token_body),
    ]
    rows = []
    for name, url, method, body in scenarios:
        # Each scenario gets fresh headers: a previous run used (and burned) its share.
        headers_file.write_text("\n".join(build_header(service_id=service.id, key="bench-key") for _ in range(count)))
        result = run_wrk(url, headers_file=headers_file, method=method, body=body, args=args, lua=lua)
        rows.append(
            {
                "scenario": name,
                "req/s": result["rps"],
                "p50 ms": result["p50_us"] / 1000,
                "p99 ms": result["p99_us"] / 1000,
                "max ms": result["max_us"] / 1000,
                "requests": result["requests"],
                "non-2xx": result["non2xx"],
                "socket errors": result["socket_errors"],
            }
        )
    micro = mauth_microbench(service.id, "bench-key", args.verify_samples)
    baseline = rows[0]["req/s"]
    notes = {
        "GET /v1/rooms throughput / baseline": rows[1]["req/s"] / baseline,
        "POST tokens throughput / baseline": rows[2]["req/s"] / baseline,
        "MAuth parse+HMAC+compare (us/request)": micro["crypto_us"],
        "MAuth full verify incl. service lookup + replay cache (us/request)": micro["full_us"],
        "setup": (
            f"daphne (1 process) on loopback, {args.connections} connections, {args.threads} wrk threads, "
            f"{args.duration}s per scenario, database {os.environ.get('DATABASE_URL', 'SQLite (temp file)')}"
        ),
    }
    emit("mgmt_api", rows, notes=notes)
    return {"rows": rows, "notes": notes}
