"""National prescribing load on the prescription services: one Locust User per caller.

    locust -f loadtests/locustfile.py --headless --config loadtests/profiles/smoke.conf

Task weights come from the load model (loadtests/model.toml, `rxverify loadmodel`): each task
is the work the model names and is weighted by that work's national peak-hour rate; think
times are the model's. Every request passes the guard (registered test patients only, writes
in the ledger). `--platform old|new|fhir` picks the interface, `--arrival open|closed` the
model, `--config loadtests/profiles/NAME.conf` the profile (shapes.py); the project's options
are listed under "rxverify" in `locust -f loadtests/locustfile.py --help`.
"""

from __future__ import annotations

from typing import Any

from locust import events, task

import shapes  # loadtests/ is on the path Locust imports the locustfile from
from rxverify.load import runtime
from rxverify.load.interfaces import Dispensable, Withdrawal
from rxverify.load.runtime import Caller, work

DISPENSING_IDS_PER_VISIT = 2  # ids one reservation asks for (model: about 2.2 items per pickup visit)
KEEP = 20  # prescriptions, ids and withdrawals a VU remembers


class PharmacySystem(Caller):
    """A pharmacy system at the counter: current prescriptions, dispensing ids, withdrawals, reports."""

    caller = "pharmacy"
    role = "pharmacy"

    def on_start(self) -> None:
        """Nothing found, reserved or withdrawn yet."""
        self.dispensable: list[Dispensable] = []
        self.dispensing_ids: list[str] = []
        self.withdrawn: list[Withdrawal] = []
        super().on_start()

    @task
    @work("HamtaAktuellaOrdinationer")
    def find_current_prescriptions(self) -> None:
        """Look up the patient's current prescriptions."""
        self.dispensable = self.work.current_prescriptions(self, self.patient())[-KEEP:]

    @task
    @work("HamtaExpeditionsId")
    def reserve_dispensing_ids(self) -> None:
        """Reserve the dispensing ids of a visit."""
        self.dispensing_ids = (self.dispensing_ids + self.work.reserve_dispensing_ids(self, DISPENSING_IDS_PER_VISIT))[
            -KEEP:
        ]

    @task
    @work("GodkannUttag")
    def withdraw(self) -> None:
        """Withdraw against a current prescription (finding one or reserving ids first when needed)."""
        if not self.dispensable:
            return self.find_current_prescriptions()
        if not self.dispensing_ids:
            self.dispensing_ids = self.work.reserve_dispensing_ids(self, DISPENSING_IDS_PER_VISIT)
            if self.work.name == "legacy":  # that was this iteration's request
                return None
        item = self.dispensable.pop()
        done = self.work.withdraw(self, item, self.dispensing_ids.pop())
        if done is not None:
            self.withdrawn = [*self.withdrawn, done][-KEEP:]
        return None

    @task
    @work("RapporteraExpeditionLF")
    def report_dispensing(self) -> None:
        """Report a withdrawal to the medication list (withdrawing first when none is waiting)."""
        if not self.withdrawn:
            return self.withdraw()
        self.work.report(self, self.withdrawn.pop(0))
        return None

    @task
    @work("UppdateraSamtycke")
    def record_consent(self) -> None:
        """Record the patient's consent to the medication list."""
        self.work.record_consent(self, self.patient())


class CareSystem(Caller):
    """A care record system (vårdsystem): patient, current prescriptions, prescribing, medication list."""

    caller = "care"
    role = "prescriber"

    def on_start(self) -> None:
        """Nothing written yet; the workplace code is the test prescriber's care unit."""
        self.written: list[str] = []
        run = self.load.run
        assert run is not None
        prescribers = run.actors.prescribers
        self.workplace_code = str(prescribers[self._actor % len(prescribers)]["careUnit"])
        super().on_start()

    @task
    @work("HamtaPatientInfo")
    def look_up_patient(self) -> None:
        """Look up the patient."""
        self.work.patient_info(self, self.patient())

    @task
    @work("HamtaAktuellaOrdinationer")
    def view_current_prescriptions(self) -> None:
        """View the patient's current prescriptions before writing."""
        self.work.current_prescriptions(self, self.patient())

    @task
    @work("SkapaOrdinationVard")
    def write_prescription(self) -> None:
        """Write a prescription."""
        written = self.work.write_prescription(self, self.patient())
        if written:
            self.written = [*self.written, written][-KEEP:]

    @task
    @work("MakuleraOrdination")
    def cancel_prescription(self) -> None:
        """Cancel a prescription this system wrote (writing one first when it has none)."""
        if not self.written:
            return self.write_prescription()
        self.work.cancel(self, self.written.pop())
        return None

    @task
    @work("HamtaLakemedelsforteckning")
    def read_medication_list(self) -> None:
        """Read the patient's medication list (the patient has consented)."""
        self.work.medication_list(self, self.patient())

    @task
    @work("KontrolleraArbetsplatskod")
    def check_workplace_code(self) -> None:
        """Check the prescriber's workplace code."""
        self.work.check_workplace_code(self, self.workplace_code)

    @task
    @work("UppdateraSamtycke")
    def record_consent(self) -> None:
        """Record the patient's consent to the medication list."""
        self.work.record_consent(self, self.patient())


class PrescriberInForskrivningskollen(Caller):
    """A prescriber in Förskrivningskollen: views a patient's prescriptions and dispensings, sometimes prescribes."""

    caller = "forskrivningskollen"
    role = "prescriber"

    @task
    @work("HamtaOrdinationshistorik")
    def view_prescription_history(self) -> None:
        """View the patient's prescriptions and dispensings."""
        self.work.history(self, self.patient())

    @task
    @work("SkapaOrdinationVard")
    def prescribe(self) -> None:
        """Write a prescription."""
        self.work.write_prescription(self, self.patient())


CALLERS: list[type[Caller]] = [PharmacySystem, CareSystem, PrescriberInForskrivningskollen]


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    runtime.add_options(parser, shapes.PROFILES)


@events.init.add_listener
def _init(environment: Any, runner: Any, **_: Any) -> None:
    runtime.on_init(environment, runner, list(CALLERS), dict(shapes.PROFILES))


events.test_start.add_listener(runtime.on_test_start)
events.spawning_complete.add_listener(runtime.on_spawning_complete)
events.test_stop.add_listener(runtime.on_test_stop)
events.request.add_listener(runtime.on_request)
events.report_to_master.add_listener(runtime.on_report_to_master)
events.worker_report.add_listener(runtime.on_worker_report)
events.quitting.add_listener(runtime.on_quitting)
