"""The gateway over mutual TLS: it terminates the caller's TLS and forwards the caller's certificate (RFC 9440).

Requirement: behind the callers' one address the holder-of-key binding still holds (DOMAIN.md,
security solution 17.1): an assertion is bound to the certificate of the caller, not of the gateway.
The gateway forwards the certificate its caller presented in `Client-Cert`, never one its caller
wrote; a platform believes `Client-Cert` only on a connection of the gateway's own certificate
(`--trusted-proxy-cert`). Each rule is shown holding on the correct platform and gateway, and
each test fails when the rule is broken (the commit that brought them says how it was shown).
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import ROOT, stop_process
from .secure_calls import ENTRIES, SecurePlatform, Trust, assertion, ready_entries, security_header, start_secure
from .soap_calls import body, envelope, ok, post, refused


@pytest.fixture(scope="module")
def trust(tmp_path_factory: pytest.TempPathFactory) -> Trust:
    return Trust(tmp_path_factory.mktemp("trust"))


@pytest.fixture(scope="module")
def old(tmp_path_factory: pytest.TempPathFactory, ticket_key_file: Path, trust: Trust) -> Iterator[SecurePlatform]:
    p = start_secure("old", tmp_path_factory.mktemp("old"), ticket_key_file, trust,
                     extra=["--trusted-proxy-cert", str(trust.client("gateway").cert_file)])
    yield p
    p.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, trust: Trust, old: SecurePlatform) -> Iterator[SecurePlatform]:
    """The reference gateway on both entry points, in front of `old` (over old's internet entry point)."""
    admin = tmp_path_factory.mktemp("gateway") / "operator.key"
    admin.write_bytes(base64.b64encode(os.urandom(32)))
    own = trust.client("gateway")
    cmd = [sys.executable, "-m", "refplatform", "gateway", "--route", "old", "--upstream", f"old={old.base_url}",
           "--admin-key-file", str(admin), "--tls-dir", str(trust.tls_dir("gateway")), "--client-cert",
           str(own.cert_file), "--client-key", str(own.key_file), "--upstream-ca", str(trust.ca_file("internet")),
           *(a for e in ENTRIES for a in ("--entry", f"{e}=0"))]
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    yield SecurePlatform("gateway", ready_entries(proc, "the gateway"), proc, trust)
    stop_process(proc)


def _forwarded(der: bytes) -> str:
    return ":" + base64.b64encode(der).decode("ascii") + ":"


def _read(p: SecurePlatform, entry: str, client: Any, signed: Any, pid: str,
          headers: dict[str, str] | None = None) -> Any:
    with p.session(client, entry) as s:
        payload = envelope(body("HamtaPatientInfo", {"personnummer": pid}), security_header(signed))
        return post(s, p.at(entry), "HamtaPatientInfo", payload, headers)  # type: ignore[arg-type]


def test_through_the_gateway_an_assertion_is_bound_to_the_callers_certificate(
        gateway: SecurePlatform, trust: Trust, actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    """On each of the gateway's entry points: the caller's own certificate and its assertion are served."""
    for entry in ENTRIES:
        client = trust.client("pharmacy-1", entry)
        signed = assertion(trust, actors["pharmacies"][0], "pharmacy", client)
        assert ok(_read(gateway, entry, client, signed, patients[0]["id"]))["personnummer"] == patients[0]["id"]


def test_the_gateway_forwards_the_certificate_its_caller_presented_not_one_its_caller_wrote(
        gateway: SecurePlatform, trust: Trust, actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    """pharmacy-1 over its own certificate, with pharmacy-2's assertion and a Client-Cert naming pharmacy-2."""
    other = trust.client("pharmacy-2")
    signed = assertion(trust, actors["pharmacies"][0], "pharmacy", other)
    answer = _read(gateway, "internet", trust.client("pharmacy-1"), signed, patients[0]["id"],
                   {"Client-Cert": _forwarded(other.der)})
    assert "annat klientcertifikat" in refused(answer, "EJ_AUTENTISERAD")


def test_a_platform_believes_client_cert_only_from_the_gateways_certificate(
        old: SecurePlatform, trust: Trust, actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    """Straight to the platform: a caller's Client-Cert header is ignored; the gateway's names the caller."""
    other = trust.client("pharmacy-2")
    signed = assertion(trust, actors["pharmacies"][0], "pharmacy", other)
    answer = _read(old, "internet", trust.client("pharmacy-1"), signed, patients[0]["id"],
                   {"Client-Cert": _forwarded(other.der)})
    assert "annat klientcertifikat" in refused(answer, "EJ_AUTENTISERAD")
    # the same header over the gateway's certificate: pharmacy-2 is the caller
    answer = _read(old, "internet", trust.client("gateway"), signed, patients[0]["id"],
                   {"Client-Cert": _forwarded(other.der)})
    assert ok(answer)["personnummer"] == patients[0]["id"]


def test_the_gateways_own_certificate_is_never_a_caller(
        old: SecurePlatform, trust: Trust, actors: dict[str, Any], patients: list[dict[str, Any]]) -> None:
    """An assertion bound to the gateway's certificate, over it, with no Client-Cert (or a malformed one): refused."""
    own = trust.client("gateway")
    signed = assertion(trust, actors["pharmacies"][0], "pharmacy", own)
    for headers in ({}, {"Client-Cert": "not-a-certificate"}, {"Client-Cert": _forwarded(b"\x30\x03abc")}):
        answer = _read(old, "internet", own, signed, patients[0]["id"], headers)
        assert "klientcertifikat" in refused(answer, "EJ_AUTENTISERAD"), headers


# ---- bad start-up input: one line, exit 2 ----


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "refplatform", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})


def test_bad_proxy_and_gateway_tls_input_is_one_line_and_exit_2(tmp_path: Path, ticket_key_file: Path,
                                                                trust: Trust) -> None:
    from .conftest import CONTRACTS

    platform = ["--platform", "old", "--data-dir", str(tmp_path / "d"), "--ticket-key-file", str(ticket_key_file),
                "--contracts", str(CONTRACTS)]
    tls, missing, own = trust.tls_dir("bad-gateway"), tmp_path / "nowhere", trust.client("gateway")
    admin = tmp_path / "operator.key"
    admin.write_bytes(base64.b64encode(os.urandom(32)))
    gateway = ["gateway", "--route", "old", "--upstream", "old=https://127.0.0.1:9", "--admin-key-file", str(admin)]
    client = ["--client-cert", str(own.cert_file), "--client-key", str(own.key_file)]
    cases = {
        "--trusted-proxy-cert needs --tls-dir": [*platform, "--trusted-proxy-cert", str(own.cert_file)],
        "cannot read trusted proxy certificate": [*platform, "--tls-dir", str(tls), "--trusted-proxy-cert",
                                                  str(missing)],
        "is not a PEM certificate": [*platform, "--tls-dir", str(tls), "--trusted-proxy-cert", str(ticket_key_file)],
        "go together": [*gateway, *client],
        "cannot use --client-cert": [*gateway, *client, "--upstream-ca", str(missing)],
        "--entry needs --tls-dir": [*gateway, "--entry", "internet=0"],
        "cannot read server certificate": [*gateway, "--tls-dir", str(missing)],
    }
    for expected, args in cases.items():
        out = _run(*args)
        assert out.returncode == 2, (expected, out.stderr)
        lines = out.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (expected, lines)
