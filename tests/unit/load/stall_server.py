"""A test-only stand-in for the old platform's legacy interface that stalls on a fixed rhythm.

No fault of the reference platforms stalls the whole server, so the open-model test brings its
own: every STALL_EVERY_S seconds every request waits until STALL_FOR_S have passed, the way a
platform pausing (garbage collection, a lock, a failover) looks from outside. It answers each
legacy service the locustfile sends with a minimal SOAP answer (the elements its work reads). Loopback only.
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
from starlette.responses import Response
from starlette.routing import Route

STALL_EVERY_S = 5.0
STALL_FOR_S = 1.0


def _ids(name: str, count: int = 1) -> str:
    return "".join(f"<r:{name}>{uuid.uuid4()}</r:{name}>" for _ in range(count))


# the answer elements' children the locustfile's work reads, per service (any other service: an empty answer)
ANSWERS = {
    "HamtaAktuellaOrdinationer": lambda: "<r:ordination>" + _ids("ordinationsId")
    + "<r:status>Aktiv</r:status><r:antalForpackningar>1</r:antalForpackningar><r:uttagKvar>3</r:uttagKvar>"
    "</r:ordination>",
    "HamtaExpeditionsId": lambda: _ids("expeditionsId", 2),
    "GodkannUttag": lambda: _ids("uttagId") + _ids("ordinationsId") + _ids("expeditionsId")
    + "<r:antalForpackningar>1</r:antalForpackningar>",
    "SkapaOrdinationVard": lambda: _ids("ordinationsId"),
}


async def _answer(request: Request) -> Response:
    phase = (time.monotonic() - START) % STALL_EVERY_S
    if phase > STALL_EVERY_S - STALL_FOR_S:  # inside the stall: wait until it ends
        await asyncio.sleep(STALL_EVERY_S - phase)
    # <legacy base>/<Service>Responder/V<major>: answer <Service>Response (SOAP 1.1)
    service = request.url.path.rstrip("/").split("/")[-2].removesuffix("Responder")
    children = ANSWERS.get(service, lambda: "")()
    body = (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            f'<r:{service}Response xmlns:r="urn:stall">{children}</r:{service}Response></s:Body></s:Envelope>')
    return Response(body, media_type="text/xml; charset=utf-8")


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
