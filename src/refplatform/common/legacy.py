"""The legacy operations independent of their binding: a handler, the roles that may call it, its faults.

A handler takes the actor and the call (every input of the operation under the REST/JSON names of
contracts/openapi/legacy.yaml: path parameters and body merged) and returns the answer as the same
JSON-shaped dict; the REST binding (rest.py) and the SOAP binding (soap_binding.py) only carry it.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from refplatform.common.tickets import Actor

Answer = dict[str, Any]
Handler = Callable[[Actor, dict[str, Any]], Answer | Awaitable[Answer]]
# Reads the caller: (operation, HTTP headers, parsed SOAP envelope or None on REST) -> Actor, or TicketError.
ActorReader = Callable[[str, Mapping[str, str], Any], Actor]


class LegacyFault(Exception):
    """A refusal of the legacy interface: the REST rendering's HTTP status, kod, meddelande.

    `charset` is the charset the answer's Content-Type declares (None: the binding's UTF-8); a
    seeded fault declares another one over the same UTF-8 body.
    """

    def __init__(self, status: int, kod: str, meddelande: str, charset: str | None = None) -> None:
        super().__init__(meddelande)
        self.status = status
        self.kod = kod
        self.meddelande = meddelande
        self.charset = charset


@dataclass(frozen=True)
class LegacyOperation:
    """One operation as a platform implements it."""

    roles: tuple[str, ...]  # ticket roles that may call it
    handler: Handler


async def answer(handler: Handler, actor: Actor, call: dict[str, Any]) -> Answer:
    """Run a handler that may or may not be a coroutine."""
    result = handler(actor, call)
    if inspect.isawaitable(result):
        return await result
    return result
