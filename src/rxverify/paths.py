"""Where the project's data lives: the contracts folder and the reports folder."""

from __future__ import annotations

import os
from pathlib import Path

from rxverify.errors import UserError


def contracts_dir(explicit: str | Path | None = None) -> Path:
    """The contracts/ folder: explicit, else $RXVERIFY_CONTRACTS, else ./contracts."""
    candidate = Path(explicit or os.environ.get("RXVERIFY_CONTRACTS") or "contracts")
    if not (candidate / "riv" / "services.toml").is_file():
        raise UserError(
            f"no contracts found at {candidate.resolve()} (run from the repository root or pass --contracts)"
        )
    return candidate


def reports_dir(explicit: str | Path | None = None) -> Path:
    """The reports/ folder (created on demand): explicit, else $RXVERIFY_REPORTS, else ./reports."""
    path = Path(explicit or os.environ.get("RXVERIFY_REPORTS") or "reports")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file in the way, no permission: the user's to fix, not a traceback
        raise UserError(f"cannot use reports folder {path}: {exc.strerror or exc}") from None
    return path
