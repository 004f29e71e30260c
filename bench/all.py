"""Every benchmark in a quick run, one after another: one Markdown summary table and JSON under bench/results/.

Each benchmark runs as its own ``python -m bench NAME`` process (they set up Django and
their servers differently) with the short arguments in ``QUICK`` below; what it wrote to
``bench/results/`` is gathered into ``all-<timestamp>.md`` (one row per measured case, so two
runs can be compared side by side) and ``all-<timestamp>.json`` (everything, with each
benchmark's arguments, exit status and the machine's load). A benchmark that fails is
reported as failed and the others still run. Quick runs are for comparing runs on one
machine; the figures in the docs come from each benchmark's own default run.

    python -m bench all                         # every benchmark (~10 min on 2 cores)
    python -m bench all --only mgmt_api,metrics_ingest
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.__main__ import available
from bench.report import RESULTS_DIR, format_value

ROOT = Path(__file__).resolve().parent.parent
# Short arguments per benchmark; one missing here runs with its own defaults.
QUICK: dict[str, list[str]] = {
    "celery_round_trip": ["--tasks", "50"],
    "media_jobs": ["--recordings", "1,4", "--window", "4"],
    "metrics_ingest": ["--seconds", "3"],
    "mgmt_api": ["--mode", "both", "--duration", "3"],
    "mixer": ["--subscribers", "1,4", "--window", "4", "--flips", "4"],
    "portal_stats": ["--batches", "10", "--queries", "30"],
    "sfu": ["--passthrough-steps", "1,8", "--relay-steps", "1,2", "--window", "3"],
    "signaling": ["--joins", "3", "--subscriptions", "3"],
}


def results_written(since: float) -> list[dict]:
    """The result files written since ``since`` (benchmarks run one at a time, and some write
    several tables: ``portal_stats_ingest-…``, ``signaling-join-…``), oldest first."""
    paths = [
        path
        for path in RESULTS_DIR.glob("*.json")
        if not path.name.startswith("all-") and path.stat().st_mtime >= since
    ]
    return [json.loads(path.read_text()) for path in sorted(paths, key=lambda path: path.stat().st_mtime)]


def run_one(name: str, timeout: float) -> dict:
    arguments = QUICK.get(name, [])
    started = time.time()
    record: dict = {"name": name, "args": arguments, "loadavg_before": os.getloadavg()}
    try:
        completed = subprocess.run(
            [sys.executable, "-m", "bench", name, *arguments],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        record["status"] = "ok" if completed.returncode == 0 else f"failed (exit {completed.returncode})"
        record["stdout"] = completed.stdout[-20000:]
        if completed.returncode:
            record["stderr"] = completed.stderr[-4000:]
    except subprocess.TimeoutExpired:
        record["status"] = f"failed (no end within {timeout:.0f} s)"
    record["seconds"] = time.time() - started
    record["results"] = results_written(started)
    return record


def _rows(result: dict) -> list[dict]:
    rows = result.get("rows")
    if isinstance(rows, list):
        return rows
    # A benchmark that emits several tables writes one file each; a dict of tables is flattened.
    return [row for table in (rows or {}).values() if isinstance(table, list) for row in table]


def cell(value: object) -> str:
    return format_value(value).replace("|", "\\|")


def markdown(records: list[dict], *, at: str) -> str:
    lines = [
        f"# Benchmarks, quick run {at}",
        "",
        "| benchmark | case | figures |",
        "|---|---|---|",
    ]
    for record in records:
        name = record["name"]
        if record["status"] != "ok" or not record["results"]:
            lines.append(f"| {name} | {record['status']} | {record['seconds']:.0f} s; no results |")
            continue
        for result in record["results"]:
            for row in _rows(result):
                values = list(row.items())
                case = cell(values[0][1]) if values else ""
                figures = "; ".join(f"{key} {cell(value)}" for key, value in values[1:] if value != "")
                lines.append(f"| {result.get('name', name)} | {case} | {figures} |")
            notes = "; ".join(f"{key}: {cell(value)}" for key, value in result.get("notes", {}).items())
            if notes:
                lines.append(f"| {result.get('name', name)} | notes | {notes} |")
    lines += [
        "",
        "Load average (1 min) before each: "
        + ", ".join(f"{record['name']} {record['loadavg_before'][0]:.1f}" for record in records),
    ]
    return "\n".join(line.replace("\n", " ") for line in lines) + "\n"


def main(argv: list[str]) -> dict:
    parser = argparse.ArgumentParser(prog="python -m bench all", description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run (default: all)")
    parser.add_argument("--skip", default="", help="comma-separated benchmarks to leave out")
    parser.add_argument("--timeout", type=float, default=900, help="seconds one benchmark may take (default 900)")
    args = parser.parse_args(argv)
    names = [name for name in available() if name != "all"]
    if args.only:
        wanted = set(args.only.split(","))
        unknown = wanted - set(names)
        if unknown:
            raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
        names = [name for name in names if name in wanted]
    names = [name for name in names if name not in set(args.skip.split(","))]

    at = time.strftime("%Y%m%dT%H%M%S")
    records = []
    for name in names:
        print(f"== {name} {' '.join(QUICK.get(name, []))}", flush=True)
        record = run_one(name, args.timeout)
        print(f"   {record['status']} in {record['seconds']:.0f} s", flush=True)
        records.append(record)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    summary = markdown(records, at=at)
    (RESULTS_DIR / f"all-{at}.md").write_text(summary)
    (RESULTS_DIR / f"all-{at}.json").write_text(json.dumps({"at": at, "benchmarks": records}, indent=2, default=str))
    print()
    print(summary)
    print(f"results: {RESULTS_DIR / f'all-{at}.md'} and .json")
    return {"benchmarks": records}
