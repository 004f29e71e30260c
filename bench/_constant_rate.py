"""Open-loop HTTP load at a constant rate, latency corrected for coordinated omission (wrk2's model).

Request ``i`` is due at ``start + i / rate``, whatever happened to the ones before it; the
requests are spread round-robin over keep-alive connections, each sending its next request
when it is due (or at once, if the previous answer came late). A request's latency is
counted from when it was *due*, not from when it could be sent: a server that stalls for
100 ms is charged for every request that should have gone out meanwhile, which a closed-loop
tool (wrk, ab) would simply not have sent. ``send lag`` (sent − due) shows how much of that
was the server making a connection wait, or this client falling behind.

A plain asyncio client (HTTP/1.1, Content-Length or chunked bodies): a few tens of µs of CPU
per request, so at a few hundred requests per second it leaves the machine to the server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from bench.report import percentile


@dataclass(frozen=True)
class Result:
    rate: float  # requested, per second
    sent: int
    achieved: float  # answers per second over the run
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    send_lag_p99_ms: float
    non2xx: int
    errors: int


async def _read_response(reader: asyncio.StreamReader) -> int:
    """Read one response; returns its status code."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])}
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def run(
    host: str,
    port: int,
    *,
    rate: float,
    seconds: float,
    connections: int,
    request: Callable[[int], bytes],
) -> Result:
    """Send ``rate × seconds`` requests (``request(i)``: the bytes of request ``i``) and measure them."""
    loop = asyncio.get_running_loop()
    total = max(1, int(rate * seconds))
    latencies: list[float] = []
    lags: list[float] = []
    counts = {"non2xx": 0, "errors": 0}
    streams = [await asyncio.open_connection(host, port) for _ in range(connections)]
    start = loop.time() + 0.1

    async def connection(number: int) -> None:
        reader, writer = streams[number]
        for index in range(number, total, connections):
            due = start + index / rate
            if due > loop.time():
                await asyncio.sleep(due - loop.time())
            lags.append(loop.time() - due)
            try:
                writer.write(request(index))
                status = await _read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                counts["errors"] += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            latencies.append(loop.time() - due)
            if not 200 <= status < 300:
                counts["non2xx"] += 1
        writer.close()

    await asyncio.gather(*(connection(number) for number in range(connections)))
    elapsed = loop.time() - start
    ms = [latency * 1000 for latency in latencies] or [float("nan")]
    return Result(
        rate=rate,
        sent=total,
        achieved=len(latencies) / elapsed,
        p50_ms=percentile(ms, 0.50),
        p90_ms=percentile(ms, 0.90),
        p99_ms=percentile(ms, 0.99),
        max_ms=max(ms),
        send_lag_p99_ms=percentile([lag * 1000 for lag in lags], 0.99),
        non2xx=counts["non2xx"],
        errors=counts["errors"],
    )


def http_request(method: str, path: str, *, host: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
