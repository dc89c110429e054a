"""A small closed-loop HTTP/1.1 keep-alive load generator for the benchmarks (loopback only).

Python's `requests` tops out near the servers under test, so the benchmarks drive them with
raw asyncio streams: many connections, each sending its next request as soon as the previous
answer arrived, for a fixed time. The same generator drives the baseline and the subject in
the same run, so the ratios compare like with like.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class Req:
    """One request of the mix."""

    name: str
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@dataclass
class Result:
    """What one timed run measured."""

    seconds: float
    ok: int
    failed: int
    by_status: Counter[int]

    @property
    def per_second(self) -> float:
        """Successful responses per second."""
        return self.ok / self.seconds if self.seconds else 0.0


def _raw(req: Req) -> tuple[str, int, bytes]:
    parts = urlsplit(req.url)
    if parts.hostname not in LOOPBACK:
        raise SystemExit(f"benchmark refuses non-loopback host {parts.hostname}")
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    lines = [f"{req.method} {target} HTTP/1.1", f"Host: {parts.netloc}", "Connection: keep-alive"]
    lines += [f"{k}: {v}" for k, v in req.headers.items()]
    if req.body:
        lines.append(f"Content-Length: {len(req.body)}")
    return parts.hostname or "127.0.0.1", parts.port or 80, ("\r\n".join(lines) + "\r\n\r\n").encode() + req.body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    chunked = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        lname = name.strip().lower()
        if lname == b"content-length":
            length = int(value.strip())
        elif lname == b"transfer-encoding" and b"chunked" in value.lower():
            chunked = True
    if chunked:
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    elif length:
        await reader.readexactly(length)
    return status


async def _worker(mix: Sequence[tuple[str, int, bytes]], offset: int, stop: float, counts: Counter[int]) -> None:
    host, port = mix[0][0], mix[0][1]
    reader, writer = await asyncio.open_connection(host, port)
    try:
        for _host, _port, payload in itertools.islice(itertools.cycle(mix), offset, None):
            if time.perf_counter() >= stop:
                break
            writer.write(payload)
            counts[await _read_response(reader)] += 1
    finally:
        writer.close()


def run_load(mix: Sequence[Req], seconds: float, connections: int = 32) -> Result:
    """Drive `mix` round-robin over `connections` keep-alive connections for `seconds`."""
    raw = [_raw(r) for r in mix]
    counts: Counter[int] = Counter()

    async def main() -> float:
        start = time.perf_counter()
        stop = start + seconds
        await asyncio.gather(*(_worker(raw, i * 7 % len(raw), stop, counts) for i in range(connections)))
        return time.perf_counter() - start

    elapsed = asyncio.run(main())
    ok = sum(n for s, n in counts.items() if 200 <= s < 300)
    return Result(elapsed, ok, sum(counts.values()) - ok, counts)
