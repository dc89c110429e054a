"""The service window on the old platform: an operator control that makes it read-only.

From the opening of the window the old platform accepts no more writes: the migration takes
its store as it is then, and a write accepted after that would not reach the new platform.
Reads are still served (the reconciliation reads the old platform inside the window). After a
No-go and its rollback the operator closes the window and writes are accepted again.

A refused write answers 503 with the legacy fault body, kod TJANSTEFEL. The RIV services
answer a platform that cannot serve a call with a SystemException rather than an
ApplicationException (no business rule said no), and 503 tells an HTTP caller to come back
later. The check comes after the ticket, the request and the role (401, 400 and 403 stay what
they are) and right before the operation, so a refused write has changed nothing.

Operator endpoints (with the operator key, see refplatform.common.operator):
  GET  /admin/window                    {"open": false, "changed": null}
  POST /admin/window  {"open": true}    opens it; {"open": false} closes it; answers the state

The state lives in the old store (table service_window): a restarted platform is still
read-only inside the window.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from refplatform.common.operator import is_operator, not_operator
from refplatform.common.store import Store

# The legacy operations that change the old store (HamtaExpeditionsId reserves ids).
WRITE_OPERATIONS = frozenset({
    "SkapaOrdinationVard", "MakuleraOrdinationVard", "MakuleraOrdinationApotek", "GodkannUttag",
    "HamtaExpeditionsId", "RapporteraExpeditionLF", "UppdateraSamtycke",
})  # the services (contracts/riv/services.toml) that write
REFUSAL_STATUS = 503
REFUSAL_KOD = "TJANSTEFEL"
REFUSAL_MESSAGE = "servicefönstret är öppet: plattformen tar bara emot läsningar"

SCHEMA = """
CREATE TABLE IF NOT EXISTS service_window (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    open INTEGER NOT NULL,
    changed TEXT NOT NULL
);
"""


class ServiceWindow:
    """Whether the window is open, kept in the platform's store and cached in memory."""

    def __init__(self, store: Store) -> None:
        self.store = store
        conn = store.conn()
        conn.executescript(SCHEMA)
        row = conn.execute("SELECT open, changed FROM service_window WHERE id = 1").fetchone()
        self._open = bool(row and row["open"])
        self._changed: str | None = row["changed"] if row else None

    @property
    def is_open(self) -> bool:
        """Whether writes are refused."""
        return self._open

    def refuses(self, operation_id: str) -> bool:
        """Whether the window refuses this operation now."""
        return self._open and operation_id in WRITE_OPERATIONS

    def state(self) -> dict[str, Any]:
        """The window as the operator endpoint shows it."""
        return {"open": self._open, "changed": self._changed}

    def set_open(self, open_: bool) -> dict[str, Any]:
        """Open or close the window; the state after it."""
        stamp = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO service_window (id, open, changed) VALUES (1, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET open = excluded.open, changed = excluded.changed",
                (1 if open_ else 0, stamp),
            )
        self._open, self._changed = open_, stamp
        return self.state()


def window_routes(window: ServiceWindow, key: bytes) -> list[Route]:
    """GET and POST /admin/window, for the holder of the operator key only."""

    async def endpoint(request: Request) -> Response:
        if not is_operator(request, key):
            return not_operator()
        if request.method == "GET":
            return JSONResponse(window.state())
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("open"), bool) or len(body) != 1:
            return JSONResponse({"error": 'the body must be {"open": true} or {"open": false}'}, status_code=400)
        return JSONResponse(window.set_open(body["open"]))

    return [Route("/admin/window", endpoint, methods=["GET", "POST"])]
