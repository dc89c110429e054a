"""An independent SOAP client, zeep, built from our WSDL files, calls every operation on both platforms.

Nobody here wrote zeep: if it accepts our contracts and the platforms' answers, both are SOAP as the
field knows it. The WSDL and its schemas load from local files only (the transport refuses any
other URL while they load); the calls go to the started platform on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import requests
import zeep
from zeep.exceptions import Fault
from zeep.transports import Transport

from .conftest import CONTRACTS, RunningPlatform
from .soap_calls import ALVEDON, COMMON, DOSAGE, SERVICES, url

Mint = Callable[..., dict[str, str]]
HEADERS = {"LogicalAddress": "ehalsomyndigheten-test", "ArgosHeader": {"requestId": "zeep-1", "systemnamn": "zeep"}}


class LocalTransport(Transport):
    """Loads documents from files only; posts through the session it was given (loopback)."""

    def load(self, url: str) -> bytes:
        if "://" in url and not url.startswith("file://"):
            raise AssertionError(f"zeep tried to fetch {url} while loading our WSDL")
        return super().load(url)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def clients() -> dict[str, zeep.Client]:
    """One zeep client per service, from the WSDL files in contracts/riv."""
    return {name: zeep.Client(str(CONTRACTS / "riv" / spec["wsdl"]), transport=LocalTransport())
            for name, spec in SERVICES.items()}


@contextmanager
def service(clients: dict[str, zeep.Client], name: str, platform: RunningPlatform,
            ticket: dict[str, str]) -> Iterator[Any]:
    """The service proxy of `name`, pointed at the platform, its session carrying the ticket."""
    with requests.Session() as session:
        session.headers.update(ticket)
        client = clients[name]
        client.transport.session = session
        [port] = next(iter(client.wsdl.services.values())).ports.values()
        yield client.create_service(port.binding.name, url(platform, name))


def send(clients: dict[str, zeep.Client], name: str, platform: RunningPlatform, ticket: dict[str, str],
         **fields: Any) -> Any:
    with service(clients, name, platform, ticket) as proxy:
        return getattr(proxy, name)(**fields, _soapheaders=HEADERS)


def test_zeep_calls_every_operation(clients: dict[str, zeep.Client], legacy_platform: RunningPlatform, mint: Mint,
                                    patients: list[dict[str, Any]], actors: dict[str, Any]) -> None:
    p, pid = legacy_platform, patients[50]["id"]
    prescriber, pharmacy = mint("prescriber", 0), mint("pharmacy", 0)
    rx = send(clients, "SkapaOrdinationVard", p, prescriber, personnummer=pid, lakemedel=ALVEDON,
              doseringstext=DOSAGE, antalForpackningar=1, antalUttag=2, forskrivningstyp="ELEKTRONISK")
    assert rx.personnummer == pid and rx.status == "Aktiv" and rx.lakemedel.namn == ALVEDON["namn"]
    current = send(clients, "HamtaAktuellaOrdinationer", p, pharmacy, personnummer=pid)
    assert [o.ordinationsId for o in current.ordination] == [rx.ordinationsId]
    ids = send(clients, "HamtaExpeditionsId", p, pharmacy, antal=2).expeditionsId
    assert len(ids) == 2
    uttag = send(clients, "GodkannUttag", p, pharmacy, ordinationsId=rx.ordinationsId, expeditionsId=ids[0],
                 antalForpackningar=1)
    assert uttag.uttagKvar == 1 and uttag.apotekGln == actors["pharmacies"][0]["gln"]
    history = send(clients, "HamtaOrdinationshistorik", p, prescriber, personnummer=pid)
    assert [u.uttagId for u in history.historikpost[0].uttag] == [uttag.uttagId]
    receipt = send(clients, "RapporteraExpeditionLF", p, pharmacy, expeditionsId=ids[0], personnummer=pid,
                   ordinationsId=rx.ordinationsId, antalForpackningar=1)
    assert receipt.ordinationsId == rx.ordinationsId
    assert send(clients, "UppdateraSamtycke", p, prescriber, personnummer=pid, samtycke=True).samtycke is True
    [post] = send(clients, "HamtaLakemedelsforteckning", p, prescriber, personnummer=pid).post
    assert post.rapportId == receipt.rapportId
    info = send(clients, "HamtaPatientInfo", p, pharmacy, personnummer=pid)
    assert info.identitetstyp == "PERSONNUMMER" and info.samtycke is True
    code = actors["careUnits"][0]["arbetsplatskod"]
    assert send(clients, "KontrolleraArbetsplatskod", p, prescriber, arbetsplatskod=code).giltig is True
    cancelled = send(clients, "MakuleraOrdinationVard", p, prescriber, ordinationsId=rx.ordinationsId,
                     orsak="FEL_LAKEMEDEL")
    assert cancelled.status == "Makulerad" and cancelled.makuleringsorsak == "FEL_LAKEMEDEL"
    other = send(clients, "SkapaOrdinationVard", p, prescriber, personnummer=pid, lakemedel=ALVEDON,
                 doseringstext=DOSAGE, antalForpackningar=1, antalUttag=1, forskrivningstyp="TELEFON")
    assert send(clients, "MakuleraOrdinationApotek", p, pharmacy, ordinationsId=other.ordinationsId,
                orsak="OVRIGT").status == "Makulerad"

    # a business rule says no: zeep raises the fault the WSDL declares, with our detail
    with pytest.raises(Fault) as refused:
        send(clients, "GodkannUttag", p, pharmacy, ordinationsId=rx.ordinationsId, expeditionsId=ids[1],
             antalForpackningar=1)
    assert refused.value.code == "soap:Client"  # as the answer wrote it: the prefix bound to SOAP 1.1
    detail = refused.value.detail
    assert detail is not None and detail[0].tag == f"{{{COMMON}}}ApplicationException"
    assert detail[0].findtext(f"{{{COMMON}}}kod") == "MAKULERAD"


def test_zeep_reads_the_served_wsdl(legacy_platform: RunningPlatform, mint: Mint,
                                    patients: list[dict[str, Any]]) -> None:
    """GET ?wsdl is enough for a client: zeep loads it and its ?xsd= schemas from the platform and calls."""
    endpoint = url(legacy_platform, "HamtaPatientInfo")
    with requests.Session() as session:
        session.headers.update(mint("pharmacy", 0))
        client = zeep.Client(endpoint + "?wsdl", transport=Transport(session=session))
        [port] = next(iter(client.wsdl.services.values())).ports.values()
        assert port.binding_options["address"] == endpoint
        info = client.service.HamtaPatientInfo(personnummer=patients[51]["id"])
    assert info.personnummer == patients[51]["id"]
