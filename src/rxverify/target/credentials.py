"""Access tickets for test actors: minted from the local key, or taken from the environment."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from rxverify.errors import UserError

ISSUER = "rxverify-local"
TICKET_LIFETIME_S = 3600  # one hour: longer than any bounded run of the suite


@dataclass(frozen=True)
class TestActors:
    """Prescribers, care units and pharmacies from contracts/testdata/test-actors.json."""

    __test__ = False

    prescribers: list[dict[str, Any]]
    care_units: list[dict[str, Any]]
    pharmacies: list[dict[str, Any]]


def load_actors(path: Path) -> TestActors:
    """Read the test actors; bad input is one UserError."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return TestActors(data["prescribers"], data["careUnits"], data["pharmacies"])
    except OSError as exc:
        raise UserError(f"cannot read test actors {path}: {exc.strerror}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise UserError(f"test actors file {path} is malformed: {exc}") from None


class TicketMinter:
    """Signs tickets for test actors with the key only the local target knows."""

    def __init__(self, key: bytes, actors: TestActors) -> None:
        self._key = key
        self.actors = actors

    def claims(self, role: str, index: int = 0) -> dict[str, Any]:
        """The claims of test actor `index` of `role` (prescriber or pharmacy)."""
        if role == "prescriber":
            p = self.actors.prescribers[index % len(self.actors.prescribers)]
            return {
                "sub": p["id"],
                "role": role,
                "hsaId": p["hsaId"],
                "forskrivarkod": p["forskrivarkod"],
                "arbetsplatskod": p["careUnit"],
            }
        if role == "pharmacy":
            ph = self.actors.pharmacies[index % len(self.actors.pharmacies)]
            return {"sub": ph["id"], "role": role, "gln": ph["gln"]}
        raise UserError(f"unknown actor role {role!r} (prescriber or pharmacy)")

    def ticket(self, role: str, index: int = 0, **override: Any) -> str:
        """A signed ticket for a test actor; `override` changes claims (for negative tests)."""
        now = int(time.time())
        claims = {**self.claims(role, index), "iss": ISSUER, "iat": now, "exp": now + TICKET_LIFETIME_S, **override}
        return jwt.encode(claims, self._key, algorithm="HS256")


class EnvironmentTickets:
    """Tickets of a real environment, read from the environment variables targets.toml names."""

    def __init__(self, variables: dict[str, str], target: str) -> None:
        self.variables = variables
        self.target = target

    def ticket(self, role: str, index: int = 0, **override: Any) -> str:
        """The configured ticket for `role` (one actor per role on real targets)."""
        if override:
            raise UserError("tickets of a real target cannot be altered; negative ticket tests run on local targets")
        variable = self.variables.get(role)
        if not variable:
            raise UserError(f"target {self.target!r} configures no ticket for role {role!r} (tickets.{role})")
        value = os.environ.get(variable)
        if not value:
            raise UserError(f"target {self.target!r}: environment variable {variable} (ticket for {role}) is not set")
        return value
