"""The FHIR R4 REST API of the new platform (base /fhir), on top of the core's service functions."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlencode

from pydantic import ValidationError
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import refplatform
from refplatform.common.faults import register
from refplatform.common.tickets import Actor, TicketError, verify_ticket
from refplatform.common.validation import OpenApiValidator, RequestInvalid
from refplatform.new import timefmt
from refplatform.new.core import CoreError, FhirCore, Invalid, reference_id
from refplatform.new.primitives import format_problem

FAULT_DROPS_VALIDITY_PERIOD = register(
    "fhir-drops-validity-period", "new", "fhir-conformance",
    "MedicationRequest read and search leave out dispenseRequest.validityPeriod (required by NLLMedicationRequest)",
).name
FAULT_SEARCH_IGNORES_STATUS = register(
    "fhir-search-ignores-status", "new", "fhir-conformance",
    "MedicationRequest search silently ignores the status parameter (every status comes back)",
).name
FAULT_PAGING_REPEATS = register(
    "fhir-paging-repeats-entries", "new", "fhir-conformance",
    "search paging: the next link starts one entry early, so the last entry of a page repeats on the next",
).name
FAULT_ERROR_WITHOUT_OUTCOME = register(
    "fhir-404-without-operationoutcome", "new", "fhir-conformance",
    "a read of an unknown id answers 404 with {\"error\": ...} (application/json), not an OperationOutcome",
).name
FAULT_WRONG_CONTENT_TYPE = register(
    "fhir-read-wrong-content-type", "new", "fhir-conformance",
    "reads answer Content-Type application/json instead of application/fhir+json",
).name
FAULT_METADATA_OMITS_SEARCH_PARAM = register(
    "fhir-metadata-omits-search-param", "new", "fhir-conformance",
    "GET /metadata leaves the authoredon search parameter of MedicationRequest out (the search still works)",
).name
FAULT_METADATA_SEARCHSET = register(
    "fhir-metadata-searchset-bundle", "new", "fhir-conformance",
    "GET /metadata answers an empty searchset Bundle instead of the CapabilityStatement",
).name
FAULT_PHARMACY_MAY_PRESCRIBE = register(
    "fhir-pharmacy-may-prescribe", "new", "security",
    "MedicationRequest.create accepts a pharmacy ticket (the prescriber role is not required)",
).name
# blind batch (written without reading the suite): subtler regressions of the kinds a migration ships
FAULT_STALE_REPLICA = register(
    "fhir-read-stale-replica", "new", "fhir-conformance",
    "[intermittent] reads go through a read-through cache that writes do not invalidate; 1 read in 20 is "
    "answered from it: the version this server answered at the previous read of that resource",
).name
FAULT_LATER_PAGES_TOTAL = register(
    "fhir-later-pages-total-remaining", "new", "fhir-conformance",
    "[partial: second page] search pages after the first come from a cursor that counts only what remains: "
    "Bundle.total is the total minus _offset on every page but the first",
).name
FAULT_FEBRUARY_28_DAYS = register(
    "fhir-authoredon-february-28-days", "new", "fhir-conformance",
    "[data: leap year] authoredon at month precision takes month lengths from a table with a 28-day February: "
    "in a leap year YYYY-02 ends on the 28th, so prescriptions authored on 29 February are outside authoredon=YYYY-02 "
    "(and inside gt/outside le)",
).name
STALE_EVERY = 20  # one read in this many is answered from the stale cache (fhir-read-stale-replica)
MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)  # the faulty table of fhir-authoredon-february-28-days

FHIR_JSON = "application/fhir+json"
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
USER_AGENT = re.compile(r"^[A-Za-z0-9._/ -]{1,100}$")
DEFAULT_COUNT, MAX_COUNT = 20, 100  # the FHIR API spec: _count 1..100, default 20
MAX_OFFSET = 2**62  # below SQLite's 64-bit integer limit
MONITORING_MAX_PATIENTS = 50  # DOMAIN.md: $monitoring takes 1-50 personal identity numbers
MONITORING_MAX_RESULTS = 1000  # DOMAIN.md: at most 1,000 prescriptions back
PRESCRIBER, PHARMACY = "prescriber", "pharmacy"
BOTH = (PRESCRIBER, PHARMACY)
DATE_PREFIXES = ("eq", "ne", "gt", "lt", "ge", "le", "sa", "eb")
SEARCH_PARAMS = {
    "MedicationRequest": ("_id", "identifier", "patient-identifier", "status", "authoredon"),
    "MedicationDispense": ("_id", "identifier", "patient-identifier", "prescription", "status"),
    "Provenance": ("_id", "target"),
    "Consent": ("_id", "patient-identifier", "status"),
}

Handler = Callable[[Request, Actor, Any], Response]


class FhirResponse(Response):
    """A FHIR JSON answer."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        if isinstance(content, bytes):
            return content
        if isinstance(content, str):
            return content.encode("utf-8")
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def outcome(status: int, code: str, diagnostics: str, headers: dict[str, str] | None = None) -> FhirResponse:
    """An OperationOutcome with one error issue."""
    body = {"resourceType": "OperationOutcome",
            "issue": [{"severity": "error", "code": code, "diagnostics": diagnostics}]}
    return FhirResponse(body, status_code=status, headers=headers)


def _models() -> dict[str, Any]:
    # fhir.resources checks structure and primitive formats; codes are checked by the core. It
    # ships R4B, not R4, so R4 decides around it: a body reaches these models only after
    # fhir.yaml (JSON Schemas of the R4 profiles, additionalProperties false) has accepted it,
    # and primitives.format_problem re-checks what the models let through. The differences
    # between R4 and R4B that matter here (HL7's R4 and R4B StructureDefinitions compared over
    # these four resources and every data type they use):
    # - Extension.value[x]: R4 has valueMeta, R4B does not; R4B adds valueCodeableReference and
    #   valueRatioRange, which R4 lacks. The profiles allow the workplace-code extension only,
    #   with valueString, so neither direction can reach the model.
    # - R4B's models take `fhir_comments` on every element; R4 JSON has no such property
    #   (json.html), and fhir.yaml refuses it as an unknown property first.
    # - R4B's primitive patterns are searched, not matched whole (a uri with spaces passes): see
    #   primitives.py.
    # Otherwise MedicationRequest, MedicationDispense, Consent, Parameters and their data types
    # have the same elements, cardinalities, types and targets in both.
    from fhir.resources.R4B.consent import Consent
    from fhir.resources.R4B.medicationdispense import MedicationDispense
    from fhir.resources.R4B.medicationrequest import MedicationRequest
    from fhir.resources.R4B.parameters import Parameters

    return {"MedicationRequest": MedicationRequest, "MedicationDispense": MedicationDispense,
            "Consent": Consent, "Parameters": Parameters}


class FhirApi:
    """The FHIR handlers: the order of checks, search, create, read, $monitoring, metadata."""

    def __init__(self, core: FhirCore, validator: OpenApiValidator | None) -> None:
        self.core = core
        self.validator = validator
        self.key = core.config.ticket_key
        self.faults = core.config.faults
        self.models = _models()
        self._capability: bytes | None = None
        self.read_cache: dict[tuple[str, str], str] = {}  # fault fhir-read-stale-replica only
        self.reads = 0

    # ---- the order of checks ----

    def endpoint(
        self, operation_id: str, roles: tuple[str, ...], handler: Handler
    ) -> Callable[[Request], Awaitable[Response]]:
        """Ticket (401), required headers (400), request validation (400), role (403), then the handler."""
        key = self.key

        async def run(request: Request) -> Response:
            try:
                actor = verify_ticket(request.headers.get("authorization"), key)
            except TicketError as exc:
                return outcome(401, "security", exc.message, {"WWW-Authenticate": "Bearer"})
            problem = _header_problem(request)
            if problem:
                return outcome(400, "required", problem)
            body = await request.body()
            try:
                parsed = self._validate(operation_id, request, body)
            except RequestInvalid as exc:
                # fhir.yaml declares 400 (not 415) for every malformed request, a wrong content type included.
                return outcome(400, "invalid", exc.message)
            try:
                actor.require(*roles)
            except TicketError as exc:
                return outcome(403, "forbidden", exc.message)
            try:
                return handler(request, actor, parsed)
            except CoreError as exc:
                return outcome(exc.status, exc.code, exc.message)

        run.__name__ = operation_id.replace(".", "_").replace("$", "")
        return run

    def _validate(self, operation_id: str, request: Request, body: bytes) -> Any:
        content_type = request.headers.get("content-type")
        if self.validator is not None and operation_id in self.validator.operations:
            query = {k: request.query_params.getlist(k) for k in request.query_params}
            return self.validator.validate(operation_id, request.path_params, query, request.headers, body,
                                           content_type)
        if request.method != "POST":
            return None
        media = (content_type or "").split(";")[0].strip().lower()
        if media not in ("application/fhir+json", "application/json"):
            raise RequestInvalid(f"content type {media or 'missing'} not accepted", status=415)
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise RequestInvalid("body: not valid JSON") from None

    def _structure(self, rtype: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or body.get("resourceType") != rtype:
            raise Invalid(f"the body must be a {rtype} resource")
        try:
            parsed = self.models[rtype].model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first.get("loc", ()))
            raise Invalid(f"{rtype}.{where}: {first.get('msg')}") from None
        problem = format_problem(parsed, rtype)  # what the models let through (primitives.py)
        if problem:
            raise Invalid(problem)
        return body

    # ---- handlers ----

    def create(self, rtype: str) -> Handler:
        """POST [base]/{rtype}: the server sets id and meta; 201 with Location."""

        def handle(request: Request, actor: Actor, body: Any) -> Response:
            resource = self._structure(rtype, body)
            with self.core.store.write() as conn:
                created = self.core.create(conn, resource, actor)
            version = created["meta"]["versionId"]
            # Location without /_history/: this server reads current versions only (no vread).
            headers = {"Location": f"{_base(request)}/{rtype}/{created['id']}",
                       "ETag": f'W/"{version}"', "Last-Modified": created["meta"]["lastUpdated"]}
            # fhir.yaml: a create answers with the created resource whatever `prefer` says.
            return FhirResponse(created, status_code=201, headers=headers)

        return handle

    def read(self, rtype: str) -> Handler:
        """GET [base]/{rtype}/{id}."""

        def handle(request: Request, _: Actor, __: Any) -> Response:
            rid = request.path_params["id"]
            text = self.core.read_text(rtype, rid)
            if text is None:
                if self.faults.on(FAULT_ERROR_WITHOUT_OUTCOME):
                    return JSONResponse({"error": f"{rtype}/{rid} not found"}, status_code=404)
                return outcome(404, "not-found", f"{rtype}/{rid} is not known")
            if self.faults.on(FAULT_STALE_REPLICA):
                self.reads += 1
                cached = self.read_cache.get((rtype, rid))
                self.read_cache[(rtype, rid)] = text
                if cached is not None and self.reads % STALE_EVERY == 0:
                    text = cached
            version = json.loads(text)["meta"]["versionId"]
            text = self._served(rtype, text)
            if self.faults.on(FAULT_WRONG_CONTENT_TYPE):
                return Response(text, media_type="application/json", headers={"ETag": f'W/"{version}"'})
            return FhirResponse(text, headers={"ETag": f'W/"{version}"'})

        return handle

    def _served(self, rtype: str, text: str) -> str:
        """A stored resource as the API serves it."""
        if rtype == "MedicationRequest" and self.faults.on(FAULT_DROPS_VALIDITY_PERIOD):
            resource = json.loads(text)
            resource.get("dispenseRequest", {}).pop("validityPeriod", None)
            return json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
        return text

    def search(self, rtype: str) -> Handler:
        """GET [base]/{rtype}?...: a searchset Bundle, newest first, paged by _count/_offset."""
        allowed = SEARCH_PARAMS[rtype]

        def handle(request: Request, _: Actor, __: Any) -> Response:
            q = request.query_params
            count = _int_param(q.get("_count"), "_count", DEFAULT_COUNT, 1, MAX_COUNT)
            # an offset past any possible result is an empty page, not an integer SQLite cannot bind
            offset = min(_int_param(q.get("_offset"), "_offset", 0, 0, None), MAX_OFFSET)
            where: list[str] = []
            args: list[Any] = []
            used: list[tuple[str, str]] = []
            for name in allowed:
                if name == "status" and rtype == "MedicationRequest" and self.faults.on(FAULT_SEARCH_IGNORES_STATUS):
                    continue
                for value in q.getlist(name):
                    clause, clause_args = _criterion(rtype, name, value,
                                                     february_28=self.faults.on(FAULT_FEBRUARY_28_DAYS))
                    where.append(clause)
                    args.extend(clause_args)
                    used.append((name, value))
            page = self.core.search(rtype, where, args, count, offset)
            base = _base(request)
            links = [("self", offset)]
            if offset + count < page.total:
                step = count - 1 if count > 1 and self.faults.on(FAULT_PAGING_REPEATS) else count
                links.append(("next", offset + step))
            if offset > 0:
                links.append(("previous", max(0, offset - count)))
            link_json = ",".join(
                json.dumps({"relation": rel, "url": f"{base}/{rtype}?"
                            + urlencode([*used, ("_count", str(count)), ("_offset", str(at))])})
                for rel, at in links
            )
            items = [(rid, self._served(rtype, text)) for rid, text in page.items]
            total = page.total
            if offset > 0 and self.faults.on(FAULT_LATER_PAGES_TOTAL):
                total = max(0, page.total - offset)
            return FhirResponse(_bundle(base, rtype, total, items, link_json))

        return handle

    def monitoring(self, request: Request, _: Actor, body: Any) -> Response:
        """POST [base]/MedicationRequest/$monitoring: the prescriptions of 1-50 patients."""
        params = self._structure("Parameters", body).get("parameter") or []
        identities: list[tuple[str | None, str]] = []
        for p in params:
            ident = p.get("valueIdentifier") or {}
            if p.get("name") != "personalIdentityNumber" or not ident.get("value"):
                raise Invalid("every parameter must be personalIdentityNumber with a valueIdentifier")
            identities.append((ident.get("system"), ident["value"]))
        if not 1 <= len(identities) <= MONITORING_MAX_PATIENTS:
            raise Invalid(f"$monitoring takes 1 to {MONITORING_MAX_PATIENTS} personalIdentityNumber parameters, "
                          f"got {len(identities)}")
        items = self.core.monitoring(identities, MONITORING_MAX_RESULTS)
        base = _base(request)
        link = json.dumps({"relation": "self", "url": f"{base}/MedicationRequest/$monitoring"})
        return FhirResponse(_bundle(base, "MedicationRequest", len(items), items, link))

    async def metadata(self, request: Request) -> Response:
        """GET [base]/metadata: this server's CapabilityStatement (kind instance), made from the contract's."""
        if self.faults.on(FAULT_METADATA_SEARCHSET):
            return FhirResponse(_bundle(_base(request), "CapabilityStatement", 0, [], json.dumps(
                {"relation": "self", "url": f"{_base(request)}/metadata"})))
        if self._capability is None:
            files = sorted(Path(self.core.config.contracts, "fhir").glob("CapabilityStatement-*.json"))
            if not files:
                return outcome(404, "not-found", "no CapabilityStatement in the contracts")
            statement = _instance_statement(json.loads(files[0].read_bytes()), _base(request))
            if self.faults.on(FAULT_METADATA_OMITS_SEARCH_PARAM):
                for resource in statement["rest"][0]["resource"]:
                    if resource["type"] == "MedicationRequest":
                        resource["searchParam"] = [p for p in resource["searchParam"] if p["name"] != "authoredon"]
            self._capability = json.dumps(statement, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        return FhirResponse(self._capability)

    def routes(self) -> list[Route]:
        """The FHIR routes (mounted under /fhir): one route per path, so 405 lists every method."""
        ep = self.endpoint
        paths: dict[str, dict[str, Any]] = {
            "/metadata": {"GET": self.metadata},
            "/MedicationRequest/$monitoring": {"POST": ep("MedicationRequest.monitoring", BOTH, self.monitoring)},
        }
        creators = {"MedicationRequest": (PRESCRIBER,), "MedicationDispense": (PHARMACY,), "Consent": BOTH}
        if self.faults.on(FAULT_PHARMACY_MAY_PRESCRIBE):
            creators["MedicationRequest"] = BOTH
        for rtype in ("MedicationRequest", "MedicationDispense", "Provenance", "Consent"):
            paths[f"/{rtype}"] = {"GET": ep(f"{rtype}.search", BOTH, self.search(rtype))}
            if rtype in creators:
                paths[f"/{rtype}"]["POST"] = ep(f"{rtype}.create", creators[rtype], self.create(rtype))
            # a logical id never starts with '$', so /MedicationRequest/$monitoring is not a read
            paths[f"/{rtype}/{{id:fhirid}}"] = {"GET": ep(f"{rtype}.read", BOTH, self.read(rtype))}
        return [Route(path, _by_method(handlers), methods=list(handlers)) for path, handlers in paths.items()]


def _instance_statement(contract: dict[str, Any], base: str) -> dict[str, Any]:
    """The contract's statement (kind requirements) as this server's own: kind instance, software, implementation.

    capabilitystatement-kind: instance "is the kind returned by /metadata for a FHIR server end-point";
    cpb-14: an instance has an implementation. Only the fields fhir.yaml's CapabilityStatement allows.
    """
    kept = ("fhirVersion", "format", "rest", "status", "experimental", "date", "publisher")
    statement: dict[str, Any] = {"resourceType": "CapabilityStatement", "id": "ecp-fhir-server"}
    statement.update({k: contract[k] for k in kept if k in contract})
    statement.update({
        "name": "ECPFhirServer",
        "title": "The new platform (ECP): its FHIR R4 server",
        "description": f"The reference ECP's FHIR server; it implements the contract {contract.get('url')}.",
        "kind": "instance",
        "software": {"name": "rxverify reference ECP", "version": refplatform.__version__},
        "implementation": {"description": "The reference ECP (rxverify)", "url": base},
    })
    return statement


def _by_method(handlers: dict[str, Any]) -> Any:
    """One endpoint serving several methods of a path."""
    if len(handlers) == 1:
        return next(iter(handlers.values()))

    async def dispatch(request: Request) -> Response:
        return cast(Response, await handlers[request.method](request))

    return dispatch


class _FhirIdConvertor(Convertor[str]):
    regex = r"[A-Za-z0-9\-\.]{1,64}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("fhirid", _FhirIdConvertor())


def _header_problem(request: Request) -> str | None:
    headers = request.headers
    for name in ("x-request-id", "x-context-id"):
        value = headers.get(name)
        if value is None:
            return f"header {name}: required"
        if not UUID.match(value):
            return f"header {name}: must be a UUID"
    agent = headers.get("x-user-agent")
    if agent is None:
        return "header x-user-agent: required"
    if not USER_AGENT.match(agent):
        return "header x-user-agent: 1 to 100 characters of letters, digits, '.', '_', '/', ' ' or '-'"
    prefer = headers.get("prefer")
    if prefer is not None and prefer.strip() not in ("return=minimal", "return=representation"):
        return "header prefer: return=minimal or return=representation"
    return None


def _base(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}/fhir"


def _int_param(raw: str | None, name: str, default: int, low: int, high: int | None) -> int:
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise Invalid(f"{name} must be an integer") from None
    if value < low or (high is not None and value > high):
        raise Invalid(f"{name} must be between {low} and {high}" if high else f"{name} must be at least {low}")
    return value


def _token(value: str) -> tuple[str | None, str | None]:
    if "|" not in value:
        return None, value
    system, _, code = value.partition("|")
    return system, code or None


def _criterion(rtype: str, name: str, value: str, *, february_28: bool = False) -> tuple[str, list[Any]]:
    """One search criterion as SQL (values separated by commas are alternatives).

    `february_28`: month lengths from a table without leap years (seeded fault fhir-authoredon-february-28-days).
    """
    if not value:
        raise Invalid(f"search parameter {name} has no value")
    alternatives = value.split(",")
    if name == "_id":
        return f"id IN ({','.join('?' * len(alternatives))})", alternatives
    if name == "status":
        return f"status IN ({','.join('?' * len(alternatives))})", alternatives
    if name in ("identifier", "patient-identifier"):
        system_col, value_col = ("system", "value") if name == "identifier" else ("patient_system", "patient_value")
        parts, args = [], []
        for alt in alternatives:
            system, code = _token(alt)
            terms = []
            if system is not None:
                terms.append(f"{system_col} = ?")
                args.append(system)
            if code is not None:
                terms.append(f"{value_col} = ?")
                args.append(code)
            parts.append("(" + " AND ".join(terms or ["1"]) + ")")
        if name == "identifier":
            return f"id IN (SELECT id FROM identifiers WHERE type = '{rtype}' AND ({' OR '.join(parts)}))", args
        return "(" + " OR ".join(parts) + ")", args
    if name == "prescription":
        ids = [reference_id(a, "MedicationRequest") or "" for a in alternatives]
        return f"prescription IN ({','.join('?' * len(ids))})", ids
    if name == "target":
        parts, args = [], []
        for alt in alternatives:
            if "/" in alt:
                parts.append("target = ?")
                args.append("/".join(alt.rstrip("/").split("/")[-2:]))
            else:
                parts.append("target LIKE ?")
                args.append(f"%/{alt}")
        return "(" + " OR ".join(parts) + ")", args
    if name == "authoredon":
        return _date_criterion(alternatives, february_28)
    raise Invalid(f"search parameter {name} is not supported")  # pragma: no cover - names come from SEARCH_PARAMS


def _date_criterion(alternatives: list[str], february_28: bool = False) -> tuple[str, list[Any]]:
    parts, args = [], []
    for alt in alternatives:
        prefix, date_value = ("eq", alt)
        if alt[:2] in DATE_PREFIXES:
            prefix, date_value = alt[:2], alt[2:]
        try:
            lo, hi = timefmt.interval(date_value)
        except ValueError:
            raise Invalid(f"authoredon: {alt!r} is not a date or dateTime") from None
        if february_28 and len(date_value) == 7 and date_value[5:] == "02" and not date_value.startswith("0000"):
            start = timefmt.parse_datetime(date_value)  # only February's length differs from the table's
            hi = timefmt.utc_instant(start + timedelta(days=MONTH_DAYS[start.month - 1]))
        clause = {
            "eq": ("authored_on >= ? AND authored_on < ?", [lo, hi]),
            "ne": ("NOT (authored_on >= ? AND authored_on < ?)", [lo, hi]),
            "ge": ("authored_on >= ?", [lo]),
            "gt": ("authored_on >= ?", [hi]),
            "sa": ("authored_on >= ?", [hi]),
            "le": ("authored_on < ?", [hi]),
            "lt": ("authored_on < ?", [lo]),
            "eb": ("authored_on < ?", [lo]),
        }[prefix]
        parts.append("(" + clause[0] + ")")
        args.extend(clause[1])
    return "(" + " OR ".join(parts) + ")", args


def _bundle(base: str, rtype: str, total: int, items: list[tuple[str, str]], link_json: str) -> str:
    # Stored resources are spliced in as they are stored, without parsing them again.
    entries = ",".join(
        f'{{"fullUrl":{json.dumps(f"{base}/{rtype}/{rid}")},"resource":{text},"search":{{"mode":"match"}}}}'
        for rid, text in items
    )
    stamp = timefmt.utc_instant(timefmt.now())
    entry = f',"entry":[{entries}]' if entries else ""
    return (f'{{"resourceType":"Bundle","meta":{{"lastUpdated":"{stamp}"}},"type":"searchset","total":{total},'
            f'"link":[{link_json}]{entry}}}')
