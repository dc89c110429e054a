"""What a running reference platform is told at start."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from refplatform.common.faults import FaultSet


@dataclass(frozen=True)
class PlatformConfig:
    """Start-up settings of one platform process."""

    data_dir: Path  # the run directory; the SQLite file lives here, so a restart keeps the data
    ticket_key: bytes  # HS256 key the access tickets are signed with
    contracts: Path  # the contracts/ folder (OpenAPI, FHIR conformance resources, test data)
    faults: FaultSet
    admin_key: bytes | None = None  # the local operator key of /admin/... (--admin-key-file); None: no /admin
