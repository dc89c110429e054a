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
    # --auth: "jwt" (HS256 tickets in Authorization, the stand-in) or "saml" (SAMBI assertions over mutual TLS)
    auth: str = "jwt"
    issuer_cert: bytes | None = None  # PEM of the ticket issuer whose assertions are trusted (--issuer-cert)
    tls: bool = False  # served over mutual TLS (--tls-dir): every request carries a client certificate
    token_lifetime_s: int = 300  # access tokens of the token endpoint (--token-lifetime)
    refresh_lifetime_s: int = 3600  # refresh tokens (--refresh-lifetime)
    token_key_file: Path | None = None  # PEM EC P-256 key the access tokens are signed with; None: a new one
