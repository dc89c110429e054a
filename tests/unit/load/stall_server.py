"""A test-only stand-in for the old platform's legacy interface that stalls on a fixed rhythm.

No fault of the reference platforms stalls the whole server, so the open-model test brings its
own: every STALL_EVERY_S seconds every request waits until STALL_FOR_S have passed, the way a
platform pausing (garbage collection, a lock, a failover) looks from outside. It answers each
legacy operation the locustfile sends with a minimal valid body. Loopback only.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

STALL_EVERY_S = 5.0
STALL_FOR_S = 1.0


async def _answer(request: Request) -> JSONResponse:
    phase = (time.monotonic() - START) % STALL_EVERY_S
    if phase > STALL_EVERY_S - STALL_FOR_S:  # inside the stall: wait until it ends
        await asyncio.sleep(STALL_EVERY_S - phase)
    path, method = request.url.path, request.method
    if path.endswith("/ordinationer/aktuella"):
        pid = path.split("/")[-3]
        items = [{"ordinationId": str(uuid.uuid4()), "status": "Aktiv", "uttagKvar": 3, "antalForpackningar": 1}]
        return JSONResponse({"personId": pid, "ordinationer": items})
    if path.endswith("/expeditionsid"):
        return JSONResponse({"expeditionsIdn": [str(uuid.uuid4()), str(uuid.uuid4())]})
    if path.endswith("/uttag"):
        return JSONResponse({"uttagId": str(uuid.uuid4())})
    if method == "POST" and path.endswith(("/ordinationer", "/expeditioner")):
        return JSONResponse({"ordinationId": str(uuid.uuid4()), "rapportId": str(uuid.uuid4())}, status_code=201)
    return JSONResponse({})


START = time.monotonic()
app = Starlette(routes=[Route("/{path:path}", _answer, methods=["GET", "POST", "PUT"])])


def serve() -> tuple[str, Any]:
    """Start the stand-in on a free loopback port in a thread; returns its base URL and the server."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    return f"http://127.0.0.1:{sock.getsockname()[1]}", server
