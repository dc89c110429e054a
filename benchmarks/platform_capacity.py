"""Capacity of the reference platforms on a read-heavy prescribing mix.

Prints requests per second of each platform as a ratio to a minimal Starlette endpoint served
the same way (uvicorn, one process, pinned to one core) in the same run, and the headroom over
the national peak-hour rate that loadtests/model.toml derives. Loopback only.

    python benchmarks/platform_capacity.py [--seconds 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

from _httpload import Req, Result, run_load
from rxverify.loadmodel import load_model
from rxverify.safety.registry import load_registry
from rxverify.target.credentials import TicketMinter, load_actors
from rxverify.target.local import local_platforms
from rxverify.target.run import Run

ROOT = Path(__file__).resolve().parents[1]
SERVER_CORE, GENERATOR_CORE = 0, 1


def _pin(pid: int, core: int) -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(pid, {core})


def _seed(run: Run, legacy: str, patients: list[str]) -> None:
    """Give every patient of the mix two prescriptions and one withdrawal, as a day would."""
    s = run.session()
    care = run.auth_headers("prescriber")
    pharmacy = run.auth_headers("pharmacy")
    ids = s.post(f"{legacy}/expeditionsid", json={"antal": 99}, headers=pharmacy, timeout=10).json()["expeditionsIdn"]
    for i, pid in enumerate(patients):
        for n in range(2):
            body = {
                "personId": pid,
                "lakemedel": {"nplPackId": f"1999010110{i:02d}{n:02d}", "namn": "Alvedon 500 mg"},
                "doseringstext": "1 tablett vid behov",
                "antalForpackningar": 1,
                "antalUttag": 3,
                "forskrivningstyp": "ELEKTRONISK",
            }
            r = s.post(f"{legacy}/ordinationer", json=body, headers=care, timeout=10)
            r.raise_for_status()
        oid = r.json()["ordinationId"]
        s.post(
            f"{legacy}/ordinationer/{oid}/uttag",
            json={"expeditionsId": ids[i % 99], "antalForpackningar": 1},
            headers=pharmacy,
            timeout=10,
        ).raise_for_status()


def _legacy_mix(run: Run, legacy: str, patients: list[str], units: list[str]) -> list[Req]:
    """Read-heavy mix in the proportions of the load model's reads (pharmacy and care lookups)."""
    auth = run.auth_headers("pharmacy") | {"Accept": "application/json"}
    mix: list[Req] = []
    for i, pid in enumerate(patients):
        mix += [Req("HamtaAktuellaOrdinationer", "GET", f"{legacy}/patienter/{pid}/ordinationer/aktuella", auth)] * 6
        mix.append(Req("HamtaPatientInfo", "GET", f"{legacy}/patienter/{pid}", auth))
        mix.append(Req("HamtaPatientInfo", "GET", f"{legacy}/patienter/{pid}", auth))
        mix.append(Req("HamtaOrdinationshistorik", "GET", f"{legacy}/patienter/{pid}/ordinationer/historik", auth))
        mix.append(Req("KontrolleraArbetsplatskod", "GET", f"{legacy}/arbetsplatskoder/{units[i % len(units)]}", auth))
    return mix


def _soap(legacy: str, service: str, major: int, ns: str, child: str, auth: dict[str, str]) -> Req:
    namespace = f"urn:riv:se.apotekensservice:{ns}:{service}Responder:{major}"
    body = (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><r:{service} '
            f'xmlns:r="{namespace}">{child}</r:{service}></s:Body></s:Envelope>').encode()
    headers = auth | {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{namespace}:{service}"'}
    return Req(service, "POST", f"{legacy}/{service}Responder/V{major}", headers, body)


def _soap_mix(run: Run, legacy: str, patients: list[str], units: list[str]) -> list[Req]:
    """The legacy mix above, the same operations and proportions, as RIV-TA SOAP (contracts/riv)."""
    auth = run.auth_headers("pharmacy")
    mix: list[Req] = []
    for i, pid in enumerate(patients):
        pnr = f"<r:personnummer>{pid}</r:personnummer>"
        mix += [_soap(legacy, "HamtaAktuellaOrdinationer", 5, "or", pnr, auth)] * 6
        mix += [_soap(legacy, "HamtaPatientInfo", 5, "axs", pnr, auth)] * 2
        mix.append(_soap(legacy, "HamtaOrdinationshistorik", 4, "or", pnr, auth))
        code = f"<r:arbetsplatskod>{units[i % len(units)]}</r:arbetsplatskod>"
        mix.append(_soap(legacy, "KontrolleraArbetsplatskod", 1, "folk", code, auth))
    return mix


def _fhir_mix(run: Run, fhir: str, patients: list[str]) -> list[Req]:
    headers = run.auth_headers("pharmacy") | {
        "Accept": "application/fhir+json",
        "x-request-id": "6f1c1f2e-0b7e-4c1e-9a57-3d1f0e0c9b11",
        "x-context-id": "0b8e6a52-54c5-4b8a-b7b8-0f3a8d3b9a44",
        "x-user-agent": "rxverify-benchmark/1",
    }
    system = "http://electronichealth.se/identifier/personnummer"
    return [
        Req(
            "MedicationRequest?patient", "GET", f"{fhir}/MedicationRequest?patient-identifier={system}%7C{pid}", headers
        )
        for pid in patients
    ]


def _line(label: str, result: Result, baseline: Result, peak: float) -> str:
    ratio = result.per_second / baseline.per_second if baseline.per_second else 0.0
    errors = f", {result.failed} non-2xx {dict(result.by_status)}" if result.failed else ""
    return (
        f"{label:<40} {result.per_second:8.0f} req/s   ratio to baseline {ratio:5.2f}   "
        f"headroom over national peak {result.per_second / peak:6.1f}x{errors}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    os.chdir(ROOT)
    contracts = ROOT / "contracts"
    model = load_model(ROOT / "loadtests" / "model.toml")
    peak = model.total_per_second
    registry = load_registry(contracts / "testdata" / "test-patients.json")
    actors = load_actors(contracts / "testdata" / "test-actors.json")
    patients = [p.id for p in registry.patients if p.kind == "personnummer"][:40]
    units = [u["arbetsplatskod"] for u in actors.care_units]
    _pin(os.getpid(), GENERATOR_CORE)

    baseline_proc = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "_baseline_app.py")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert baseline_proc.stdout is not None
        base_url = baseline_proc.stdout.readline().split()[2]
        _pin(baseline_proc.pid, SERVER_CORE)
        with local_platforms() as running:
            from rxverify.safety.guard import Guard

            run = Run(running.target(), registry, actors, TicketMinter(running.key, actors), Guard(registry))
            assert running.old and running.new
            for p in (running.old, running.new):
                _pin(p.process.pid, SERVER_CORE)
            targets = running.target().platforms
            old_legacy, new_legacy, fhir = targets["old"].legacy, targets["new"].legacy, targets["new"].fhir
            assert old_legacy and new_legacy and fhir
            _seed(run, old_legacy, patients)
            _seed(run, new_legacy, patients)
            print(f"national peak-hour rate (loadtests/model.toml): {peak:.1f} req/s; aim: 10x on one core")
            print(
                f"mix: read-heavy legacy lookups over {len(patients)} test patients; {args.connections} connections, "
                f"{args.seconds:.0f} s each; servers pinned to core {SERVER_CORE}, generator to core {GENERATOR_CORE}"
            )
            baseline_mix = [Req("ping", "GET", f"{base_url}/ping")]
            run_load(baseline_mix, 1.0, args.connections)  # warm-up
            baseline = run_load(baseline_mix, args.seconds, args.connections)
            print(f"{'baseline (minimal Starlette GET)':<40} {baseline.per_second:8.0f} req/s")
            for label, mix in (
                ("old platform, legacy mix", _legacy_mix(run, old_legacy, patients, units)),
                ("new platform, legacy mix (transformer)", _legacy_mix(run, new_legacy, patients, units)),
                ("old platform, legacy mix over SOAP", _soap_mix(run, old_legacy, patients, units)),
                ("new platform, legacy mix over SOAP", _soap_mix(run, new_legacy, patients, units)),
                ("new platform, FHIR search", _fhir_mix(run, fhir, patients)),
            ):
                run_load(mix, 1.0, args.connections)
                print(_line(label, run_load(mix, args.seconds, args.connections), baseline, peak), flush=True)
    finally:
        baseline_proc.terminate()
        baseline_proc.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
