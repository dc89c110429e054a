"""The platforms' own request log for the suite's egress audit (`--audit-log FILE`).

Every request is written down as it is received, before the application sees it: method,
request target (raw path and query) and the sha256 of the body, one line each, flushed at once.
Nothing else (no headers, no body) is kept.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class AuditLog:
    """ASGI middleware: one line per received request, appended to `path`."""

    def __init__(self, app: ASGIApp, path: Path) -> None:
        self.app = app
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        target = scope.get("raw_path") or scope["path"].encode()
        if scope.get("query_string"):
            target += b"?" + scope["query_string"]
        line = f"{scope['method']} {target.decode('latin-1')} {hashlib.sha256(body).hexdigest()}\n"
        os.write(self.fd, line.encode("latin-1"))
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)
