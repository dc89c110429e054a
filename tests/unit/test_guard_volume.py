"""Guard at volume: 100,000 requests with foreign identities hidden anywhere, none sent; as many with
test patients, none refused. The counts are printed with the test output.

The identities are enumerated, not drawn at random: every birth date from 1920 in steps of
three days, serial numbers cycling, both kinds (personnummer, samordningsnummer), each written
in every form (12 digits, 12 with '-', 10 with '-' or '+'), each hidden in every place (path,
query, header, JSON, nested FHIR identifier, form data, text). Nothing leaves the process: the
session's transport is replaced by one that counts what reaches it.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import requests
from requests.adapters import BaseAdapter

from rxverify.guard import Guard, GuardedSession, RequestRefused
from rxverify.identity import check_digit
from rxverify.registry import Registry

from .strategies import written

VOLUME = 100_000
FORMS = ("12", "12-", "10sep")
PLACES = ("path", "query", "header", "json", "nested-fhir", "form", "text")


class _Counting(BaseAdapter):
    """A transport that sends nothing and counts what reached it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent = 0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent += 1
        response = requests.Response()
        response.status_code = 204
        response.request = request
        return response

    def close(self) -> None:
        pass


def _foreign(registry: Registry) -> Iterator[str]:
    day, serial = date(1920, 1, 1), 0
    while True:
        for offset in (0, 60):  # personnummer, samordningsnummer
            nine = f"{day.year % 100:02d}{day.month:02d}{day.day + offset:02d}{serial % 1000:03d}"
            twelve = f"{day.year // 100}{nine}{check_digit(nine)}"
            if twelve not in registry:
                yield twelve
        day += timedelta(days=3)
        serial += 7
        if day.year > 2025:
            day = date(1920, 1, 2 + serial % 2)


def _send(session: requests.Session, place: str, ident: str) -> None:
    base = "http://127.0.0.1:9"
    if place == "path":
        session.get(f"{base}/patienter/{ident}")
    elif place == "query":
        session.get(f"{base}/MedicationRequest", params={"patient-identifier": f"x|{ident}"})
    elif place == "header":
        session.get(f"{base}/x", headers={"x-patientref": ident})
    elif place == "json":
        session.post(f"{base}/x", json={"personId": ident, "n": [1, {"deep": ident}]})
    elif place == "nested-fhir":
        body = {
            "resourceType": "Parameters",
            "parameter": [{"name": "personalIdentityNumber", "valueIdentifier": {"value": ident}}],
        }
        session.post(f"{base}/x", data=json.dumps(body))
    elif place == "form":
        session.post(f"{base}/x", data={"pnr": ident})
    else:
        session.post(f"{base}/x", data=f"patient {ident} said hello".encode())


def _session(registry: Registry) -> tuple[GuardedSession, _Counting]:
    session = GuardedSession(Guard(registry))
    adapter = _Counting()
    session.mount("http://", adapter)
    return session, adapter


def test_100000_foreign_identities_refused_none_sent(registry: Registry, capsys: Any) -> None:
    session, adapter = _session(registry)
    cases = zip(_foreign(registry), itertools.cycle(itertools.product(FORMS, PLACES)))
    refused = 0
    for twelve, (form, place) in itertools.islice(cases, VOLUME):
        try:
            _send(session, place, written(twelve, form))
        except RequestRefused:
            refused += 1
    with capsys.disabled():
        print(f"\nguard volume: {VOLUME} requests with a foreign identity: {refused} refused, {adapter.sent} sent")
    assert (refused, adapter.sent) == (VOLUME, 0)


def test_100000_test_patients_sent_none_refused(registry: Registry, capsys: Any) -> None:
    session, adapter = _session(registry)
    cases = itertools.product(registry.patients, FORMS, PLACES)
    refused = 0
    for patient, form, place in itertools.islice(itertools.cycle(cases), VOLUME):
        try:
            _send(session, place, written(patient.id, form))
        except RequestRefused:
            refused += 1
    with capsys.disabled():
        print(
            f"\nguard volume: {VOLUME} requests with a registered test patient: {adapter.sent} sent, {refused} refused"
        )
    assert (adapter.sent, refused) == (VOLUME, 0)
