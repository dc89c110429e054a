"""The baseline server of the benchmarks: a minimal Starlette endpoint on uvicorn, one process."""

from __future__ import annotations

import socket
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def ping(request: Request) -> JSONResponse:
    """The smallest JSON answer."""
    return JSONResponse({"ok": True})


app = Starlette(routes=[Route("/ping", ping)])

if __name__ == "__main__":
    # IPPROTO_TCP as the platforms bind (refplatform.cli.bind): asyncio sets TCP_NODELAY only on
    # accepted sockets whose proto is TCP; without it every answer waits ~40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"READY baseline http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    server.run(sockets=[sock])
    sys.exit(0)
