"""rxverify.legacy.xsdgen: hypothesis strategies from the XSD (issue 15, property-based generation from the XSD).

1. every global element of every XSD in contracts/riv (services.toml's requests and answers, and the
   core components'): generated documents validate, as sent (serialised and parsed again);
2. a synthetic schema (tests/unit/data/xsd/everything.xsd) with every facet and construct the
   generator supports: every document validates, and the boundaries are reached;
3. shrinking: a failing property comes back as the minimal document;
4. identities: slots typed PersonnummerType or named personnummer take registered test patients only,
   and no value or document holds an identity outside the registry, in the guard's reading;
5. violations: each labelled violation is invalid per xmlschema, at the element and for the rule it names.
"""

from __future__ import annotations

import tomllib
import unicodedata
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import xmlschema
from hypothesis import HealthCheck, Phase, find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import FailedHealthCheck, Unsatisfiable
from lxml import etree
from xmlschema.validators import XsdAttributeGroup

from rxverify.errors import UserError
from rxverify.legacy.xsdgen import (
    FACET_RULES,
    RULES,
    Settings,
    Slot,
    Violation,
    documents,
    elements,
    named,
    registry_overrides,
    rules,
    typed,
    violations,
)
from rxverify.legacy.xsdvalues import CannotGenerate, Values, rule_of
from rxverify.safety import decode
from rxverify.safety.identity import find_identities
from rxverify.safety.registry import Registry
from rxverify.strategies import contract_patients, differential_patients

from ..strategies import foreign_identities

ROOT = Path(__file__).resolve().parents[3]
RIV = ROOT / "contracts" / "riv"
OPERATIONS: dict[str, dict[str, Any]] = tomllib.loads((RIV / "services.toml").read_text(encoding="utf-8"))["operations"]
EVERYTHING = ROOT / "tests" / "unit" / "data" / "xsd" / "everything.xsd"
EV = "{urn:rxverify:test:everything:1}"
COMMON = "urn:riv:se.apotekensservice:common:1"
CORE = sorted((RIV / "core_components").glob("*.xsd"))

VALID = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
# looking for an example: generation only, the first one found (no shrinking)
SEARCH = settings(max_examples=2000, deadline=None, database=None, phases=[Phase.generate],
                  suppress_health_check=[HealthCheck.too_slow])
# shrinking without the explain phase (which only annotates a failure, at ten times the shrinking's cost)
SHRINK = settings(max_examples=2000, deadline=None, database=None, phases=[Phase.generate, Phase.shrink],
                  suppress_health_check=[HealthCheck.too_slow])


@cache
def schema_of(path: Path) -> xmlschema.XMLSchema10:
    """One compiled schema per file (so the generator's cache holds across tests)."""
    return xmlschema.XMLSchema10(str(path), allow="local")


def riv(operation: str) -> xmlschema.XMLSchema10:
    return schema_of(RIV / OPERATIONS[operation]["responder_xsd"])


def everything() -> xmlschema.XMLSchema10:
    return schema_of(EVERYTHING)


def errors_of(schema: xmlschema.XMLSchema10, document: bytes) -> list[Any]:
    """xmlschema's errors for the document as a receiver reads it: parsed from its bytes."""
    return list(schema.iter_errors(etree.fromstring(document)))


def path_of(element: Any) -> str:
    """/a/b[2]/c: local names from the document element, [n] among same-named siblings (the labels' notation)."""
    steps = []
    while element is not None:
        parent = element.getparent()
        step = etree.QName(element).localname
        if parent is not None:
            same = [c for c in parent if c.tag == element.tag]
            step += f"[{same.index(element) + 1}]" if len(same) > 1 else ""
        steps.append(step)
        element = parent
    return "/" + "/".join(reversed(steps))


def texts(document: bytes, local_name: str) -> list[str]:
    return [e.text or "" for e in etree.fromstring(document).iter() if etree.QName(e).localname == local_name]


RIV_ELEMENTS = [(op, name) for op in OPERATIONS for name in (op, f"{op}Response")]
REQUESTS = list(OPERATIONS)
SYNTHETIC = sorted(name for name, decl in everything().elements.items() if not decl.abstract)


# ---- 1. the project's contracts ----


def test_services_toml_names_every_global_element_of_the_responder_schemas() -> None:
    """The walk below covers the contracts: each responder XSD declares exactly its request and its answer."""
    for operation in OPERATIONS:
        assert sorted(riv(operation).elements) == sorted([operation, f"{operation}Response"])


@pytest.mark.parametrize(("operation", "element"), RIV_ELEMENTS, ids=[e for _, e in RIV_ELEMENTS])
def test_every_riv_element_generates_valid_documents(operation: str, element: str, registry: Registry) -> None:
    """services.toml (every operation, request and answer): each generated document validates against its XSD."""
    schema = riv(operation)

    @VALID
    @given(documents(schema, element, registry=registry))
    def check(document: bytes) -> None:
        assert errors_of(schema, document) == []
        assert etree.QName(etree.fromstring(document)).namespace == OPERATIONS[operation]["namespace"]

    check()


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_every_core_component_element_generates_valid_documents(path: Path, registry: Registry) -> None:
    """core_components (faults, headers): each global element's generated documents validate."""
    schema = schema_of(path)
    for element in schema.elements:

        @VALID
        @given(documents(schema, element, registry=registry))
        def check(document: bytes) -> None:
            assert errors_of(schema, document) == []

        check()


def test_the_validity_oracle_refuses_what_the_facets_refuse() -> None:
    """The properties above can fail: a value outside the facets (forced in by an override) is an error."""
    schema = everything()
    for element, value in (("small", "8"), ("code3", "ABCD"), ("year2020", "2021-01-01"), ("weekday", "monday")):
        document = find(documents(schema, element, overrides={named(element): st.just(value)}), lambda _: True,
                        settings=SEARCH)
        assert errors_of(schema, document), (element, value)


# ---- 2. every facet and construct, at its boundaries ----


@pytest.mark.parametrize("element", SYNTHETIC)
def test_every_synthetic_element_generates_valid_documents(element: str) -> None:
    """everything.xsd (each facet and construct): each generated document validates, parsed from its bytes."""
    schema = everything()

    @VALID
    @given(documents(schema, element, settings=Settings(wildcards="foreign")))
    def check(document: bytes) -> None:
        assert errors_of(schema, document) == []

    check()


def reaches(element: str, condition: Callable[[Any], bool], **options: Any) -> Any:
    """Some generated `element` meets `condition` (hypothesis searches for it), and it is valid."""
    found = find(elements(everything(), element, **options), condition, settings=SEARCH)
    assert list(everything().iter_errors(found)) == []
    return found


def reaches_all(element: str, conditions: dict[str, Callable[[Any], bool]], **options: Any) -> None:
    """Generated `element`s meet every one of `conditions` (each by some example), in one search."""
    missing = dict(conditions)

    def all_seen(generated: Any) -> bool:
        for name, condition in list(missing.items()):
            if condition(generated):
                del missing[name]
        return not missing

    try:
        find(elements(everything(), element, **options), all_seen, settings=SEARCH)
    finally:
        assert not missing, f"never generated: {sorted(missing)}"


def text_is(value: str) -> Callable[[Any], bool]:
    return lambda e: e.text == value


BOUNDARIES = [
    ("small", "-2"),  # minExclusive -3: the lowest value
    ("small", "7"),  # maxInclusive reached
    ("amount", "0"),  # minInclusive reached
    ("amount", "999.99"),  # maxExclusive 1000 with fractionDigits 2: the highest value; totalDigits 5 exactly
    ("huge", "123456789012345678901234567890"),  # maxInclusive beyond 64 bits
    ("huge", "1"),  # positiveInteger's own lower bound
    ("byte", "-128"),
    ("byte", "127"),
    ("unsignedShort", "65535"),
    ("negative", "-1"),
    ("year2020", "2020-01-01"),
    ("year2020", "2020-12-31"),
    ("coded", "300"),
    ("fourDigits", "9.999"),  # totalDigits 4 and fractionDigits 3 exactly
    ("fourDigits", "-9999"),
    ("weekday", "SUNDAY"),
    ("flag", "false"),
]


@pytest.mark.parametrize(("element", "value"), BOUNDARIES, ids=[f"{e}={v}" for e, v in BOUNDARIES])
def test_boundaries_are_reached(element: str, value: str) -> None:
    """min/max inclusive/exclusive, totalDigits, fractionDigits, enumeration: the edge value is generated."""
    reaches(element, text_is(value))


LENGTHS = [("bounded", 2), ("bounded", 5), ("consonants", 2), ("consonants", 6), ("tokenised", 10),
           ("normalised", 2), ("hex", 8), ("base64", 8)]


@pytest.mark.parametrize(("element", "length"), LENGTHS, ids=[f"{e}:{n}" for e, n in LENGTHS])
def test_length_boundaries_are_reached(element: str, length: int) -> None:
    """length, minLength, maxLength (characters; octets of hexBinary and base64Binary): the edge length is generated."""
    reaches(element, lambda e: len(e.text or "") == length)


def test_length_with_a_pattern_is_constructed_exactly() -> None:
    """length 3 with [A-Z]+: every value is three capitals (constructed, so no health check trips)."""
    schema = everything()

    @VALID
    @given(elements(schema, "code3"))
    def check(element: Any) -> None:
        assert len(element.text) == 3 and element.text.isupper()

    check()


def test_one_length_over_several_variable_repetitions_is_built_to_size() -> None:
    """length 6 with [a-z]+-?[0-9]*: every split of the six characters is generated, none filtered away."""
    reaches_all("split", {
        "letters only": lambda e: e.text.isalpha(),
        "a dash": lambda e: "-" in e.text,
        "digits, no dash": lambda e: e.text[-1].isdigit() and "-" not in e.text,
    })

    @settings(max_examples=200, deadline=None, database=None)  # the filter_too_much health check stays on
    @given(elements(everything(), "split"))
    def check(element: Any) -> None:
        assert len(element.text) == 6

    check()


def test_patterns_of_one_step_are_alternatives_and_steps_all_apply() -> None:
    """TwoSteps: either pattern of its own step ([a-z]+[0-9]* or [0-9]+) and its base's [a-z0-9]{4}."""
    reaches_all("twoSteps", {"letters then digits": lambda e: e.text[0].isalpha(),
                             "digits": lambda e: e.text.isdigit()})


def test_class_subtraction_and_xsd_escapes_mean_what_xsd_says() -> None:
    """[a-z-[aeiou]] has no vowel; \\w is never _ or punctuation (Python's \\w would allow _); \\s? and \\p{Lu}."""
    schema = everything()

    @VALID
    @given(elements(schema, "consonants"), elements(schema, "words"), elements(schema, "escapes"))
    def check(consonants: Any, words: Any, escapes: Any) -> None:
        assert not set(consonants.text) & set("aeiou")
        assert all(unicodedata.category(c)[0] in "LN" for c in words.text)  # XSD \w and Python's, both
        assert unicodedata.category(escapes.text[-1]) == "Lu"

    check()
    reaches("escapes", lambda e: e.text[3] in " \t\n\r")
    reaches("words", lambda e: not e.text.isascii())


def test_dates_and_times_come_with_and_without_a_time_zone() -> None:
    """dateTime: no zone, Z and an offset are all generated; a pattern that demands Z gets Z only."""
    reaches_all("dateTime", {
        "Z": lambda e: e.text.endswith("Z"),
        "an offset": lambda e: e.text[-6] in "+-" and e.text[-3] == ":",
        "no zone": lambda e: e.text[-1].isdigit() and e.text[-6] not in "+-",
    })

    @VALID
    @given(elements(everything(), "utc"))
    def check(element: Any) -> None:
        assert element.text.endswith("Z")

    check()


def test_lists_and_unions() -> None:
    """NameList (1..3 NCNames) reaches 1 and 3 items; DayOrNumber gives each member type."""
    reaches_all("nameList", {"1 item": lambda e: len(e.text.split()) == 1,
                             "3 items": lambda e: len(e.text.split()) == 3})
    reaches_all("dayOrNumber", {"unsignedByte": lambda e: e.text.isdigit(), "Weekday": lambda e: e.text.isalpha()})


def children(element: Any) -> list[str]:
    return [etree.QName(c).localname for c in element]


def test_order_reaches_every_occurrence_choice_branch_and_option() -> None:
    """OrderType: occurrences min and max, each choice branch, optional absent and present, substitution members."""

    def has(name: str) -> Callable[[Any], bool]:
        return lambda e: e.find(name) is not None

    reaches_all("order", {
        "2 lines (minOccurs)": lambda e: len(e.findall(f"{EV}line")) == 2,
        "4 lines (maxOccurs)": lambda e: len(e.findall(f"{EV}line")) == 4,
        "3 tags (unbounded, capped by Settings.unbounded)": lambda e: len(e.findall(f"{EV}tag")) == 3,
        "no tag": lambda e: not e.findall(f"{EV}tag"),
        "choice byPost": has(f"{EV}byPost"),
        "choice byMail": has(f"{EV}byMail"),
        "choice sequence pickupAt, pickupBy": has(f"{EV}pickupBy"),
        "substitution memberOne": has(f"{EV}memberOne"),
        "substitution memberTwo": has(f"{EV}memberTwo"),
        "group pair": lambda e: e.find(f"{EV}left") is not None and e.find(f"{EV}right") is not None,
        "note present": has(f"{EV}note"),
        "note absent": lambda e: e.find(f"{EV}note") is None,
        "optional attribute present": lambda e: e.get("channel") is not None,
        "optional attribute absent": lambda e: e.get("channel") is None,
        "unqualified local element": has("plain"),
        "simple content with attribute": lambda e: e.find(f"{EV}measured") is not None
        and e.find(f"{EV}measured").get("unit") is not None,
        "empty element with a required attribute": lambda e: e.find(f"{EV}marker") is not None
        and e.find(f"{EV}marker").get("kind") is not None,
    })


def test_nillable_elements_are_sometimes_nil() -> None:
    """unknown (nillable): xsi:nil="true" and empty, or a value; never nil with Settings(nil=False)."""
    nil = "{http://www.w3.org/2001/XMLSchema-instance}nil"
    found = reaches("order", lambda e: e.find(f"{EV}unknown") is not None and e.find(f"{EV}unknown").get(nil))
    assert found.find(f"{EV}unknown").text is None
    reaches("order", lambda e: e.find(f"{EV}unknown") is not None and e.find(f"{EV}unknown").text is not None)

    @VALID
    @given(documents(everything(), "order", settings=Settings(nil=False)))
    def check(document: bytes) -> None:
        assert b"nil=" not in document

    check()


def test_all_groups_come_in_any_order() -> None:
    """unordered (xs:all of a, b, c?): b before a is generated, c present and absent."""
    reaches_all("unordered", {
        "b before a": lambda e: children(e)[:2] == ["b", "a"],
        "c present": lambda e: "c" in children(e),
        "c absent": lambda e: "c" not in children(e),
    })


def test_attributes_and_simple_content() -> None:
    """measure: required unit always, optional precision present and absent, fixed scheme only as SI."""
    schema = everything()

    @VALID
    @given(elements(schema, "measure"))
    def check(element: Any) -> None:
        assert element.get("unit") is not None and element.get("scheme") in (None, "SI")

    check()
    reaches_all("measure", {
        "precision and scheme": lambda e: e.get("precision") is not None and e.get("scheme") == "SI",
        "no precision": lambda e: e.get("precision") is None,
    })


def test_wildcards_absent_by_default_and_foreign_when_asked() -> None:
    """xs:any: beyond minOccurs absent by default; Settings(wildcards="foreign") fills them with foreign elements."""
    schema = everything()

    @VALID
    @given(elements(schema, "order"), elements(schema, "open"))
    def check(order: Any, open_: Any) -> None:
        extension = order.find(f"{EV}extension")
        assert extension is None or len(extension) == 0
        assert len(open_) == 2  # first + the one required (minOccurs 1) foreign element

    check()
    foreign = Settings(wildcards="foreign")
    reaches("open", lambda e: len(e) == 3, settings=foreign)
    reaches("order", lambda e: e.find(f"{EV}extension") is not None and len(e.find(f"{EV}extension")) == 3,
            settings=foreign)


def test_recursive_types_nest() -> None:
    """TreeType contains itself: nested trees are generated (and stay finite)."""
    reaches("tree", lambda e: e.find(f"{EV}tree/{EV}tree") is not None)


def test_alphabet_setting_limits_free_text() -> None:
    """Settings(alphabet=...): free text uses only those characters."""

    @VALID
    @given(elements(everything(), "bounded", settings=Settings(alphabet="abcö")))
    def check(element: Any) -> None:
        assert set(element.text) <= set("abcö")

    check()


def test_xsd11_assertion_and_explicit_timezone_facets_are_met() -> None:
    """XSD 1.1 simple-type assertion and explicitTimezone facets: met by filtering on xmlschema's check."""
    schema = xmlschema.XMLSchema11("""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:element name="local"><xs:simpleType><xs:restriction base="xs:dateTime">
        <xs:explicitTimezone value="prohibited"/></xs:restriction></xs:simpleType></xs:element>
      <xs:element name="even"><xs:simpleType><xs:restriction base="xs:int">
        <xs:assertion test="$value mod 2 = 0"/></xs:restriction></xs:simpleType></xs:element>
    </xs:schema>""")

    @VALID
    @given(documents(schema, "local"), documents(schema, "even"))
    def check(local: bytes, even: bytes) -> None:
        assert errors_of(schema, local) == [] and errors_of(schema, even) == []

    check()


def test_unsupported_constructs_and_unknown_names_are_one_clear_error() -> None:
    """xs:key, xs:ID, an unknown element: CannotGenerate (a UserError: one line, exit 2) naming what and where."""
    keyed = xmlschema.XMLSchema10("""<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:element name="list"><xs:complexType><xs:sequence>
        <xs:element name="item" type="xs:string" maxOccurs="unbounded"/></xs:sequence></xs:complexType>
        <xs:unique name="once"><xs:selector xpath="item"/><xs:field xpath="."/></xs:unique>
      </xs:element>
      <xs:element name="ident" type="xs:ID"/>
    </xs:schema>""")
    with pytest.raises(CannotGenerate, match="element list: identity constraints"):
        elements(keyed, "list")
    with pytest.raises(CannotGenerate, match="xs:ID is not supported"):
        elements(keyed, "ident")
    with pytest.raises(CannotGenerate, match="no global element 'nothing'"):
        documents(riv("GodkannUttag"), "nothing")
    with pytest.raises(CannotGenerate, match="unknown violation rule"):
        violations(riv("GodkannUttag"), "GodkannUttag", rules={"spelling"})
    assert issubclass(CannotGenerate, UserError)


# ---- 3. shrinking ----


def test_a_failing_property_shrinks_to_the_minimal_document() -> None:
    """quantity > 5 in an order: found as quantity 6, every optional part absent, repetitions at their minimum."""
    found = find(elements(everything(), "order"), lambda e: int(e.findtext(f"{EV}quantity")) > 5, settings=SHRINK)
    assert found.findtext(f"{EV}quantity") == "6"
    assert children(found) == ["id", "quantity", "line", "line", "byPost"]  # first choice branch, 2 lines
    assert dict(found.attrib) == {"version": "0"}  # optional channel absent; version shrunk to zero
    assert [len(c.text or "") for c in found] == [4, 1, 3, 3, 3]


def test_a_failing_property_on_a_riv_request_shrinks_too(registry: Registry) -> None:
    """SkapaOrdinationVard with antalForpackningar > 5: 6, no giltigTom, no extension, a one-character text."""
    ns = "{" + OPERATIONS["SkapaOrdinationVard"]["namespace"] + "}"
    found = find(elements(riv("SkapaOrdinationVard"), "SkapaOrdinationVard", registry=registry),
                 lambda e: int(e.findtext(f"{ns}antalForpackningar")) > 5, settings=SHRINK)
    assert found.findtext(f"{ns}antalForpackningar") == "6"
    assert children(found) == ["personnummer", "lakemedel", "doseringstext", "antalForpackningar", "antalUttag",
                               "forskrivningstyp"]
    assert len(found.findtext(f"{ns}doseringstext")) == 1
    assert found.findtext(f"{ns}personnummer") == contract_patients(registry)[0].id  # the registry's first


# ---- 4. identities only from the registry ----


def guard_reading_identities(document: bytes) -> set[str]:
    """Every identity number the guard reads in a body (all decodings)."""
    return {f.twelve for _, text in decode.body_places(document, {"Content-Type": "text/xml"})
            for f in find_identities(text)}


@pytest.mark.parametrize("operation", REQUESTS)
def test_identity_slots_take_only_registered_test_patients(operation: str, registry: Registry) -> None:
    """Every request (property): personnummer is a contract-run test patient; no other identity anywhere."""
    schema = riv(operation)
    allowed = {p.id for p in contract_patients(registry)}

    @VALID
    @given(documents(schema, operation, registry=registry))
    def check(document: bytes) -> None:
        assert set(texts(document, "personnummer")) <= allowed
        assert guard_reading_identities(document) <= allowed

    check()


def test_registry_overrides_bind_the_type_and_the_name(registry: Registry) -> None:
    """Slots typed (or derived from) PersonnummerType in any spelling, or named personnummer, are identity slots."""
    seen: list[Slot] = []

    def record(slot: Slot) -> bool:
        seen.append(slot)
        return False

    elements(riv("GodkannUttag"), "GodkannUttagResponse", overrides={record: st.just("x")})
    [slot] = [s for s in seen if s.local_name == "personnummer"]
    for spelling in ("common:PersonnummerType", f"{{{COMMON}}}PersonnummerType", "PersonnummerType"):
        assert typed(spelling)(slot), spelling
    assert not typed("or:PersonnummerType")(slot)
    assert named("personnummer")(slot) and slot.path == ("GodkannUttagResponse", "personnummer")
    [[predicate, _]] = registry_overrides(registry).items()
    assert predicate(slot)
    assert not any(predicate(s) for s in seen if s.local_name != "personnummer")


def test_an_override_before_the_registry_decides(registry: Registry) -> None:
    """overrides come first: the differential's patients where the caller asks for them."""
    mine = differential_patients(registry)
    schema = riv("HamtaPatientInfo")

    @VALID
    @given(documents(schema, "HamtaPatientInfo", registry=registry,
                     overrides=registry_overrides(registry, mine)))
    def check(document: bytes) -> None:
        assert set(texts(document, "personnummer")) <= {p.id for p in mine}

    check()


def test_without_a_registry_no_identity_is_generated_at_all() -> None:
    """identity (a plausible date, 4 digits): the pattern alone makes Luhn-valid identities; the filter leaves none."""
    schema = everything()
    raw = Values(None, (1, 9999)).valid(schema.types["Identity"])
    find(raw, lambda text: bool(find_identities(text)), settings=SEARCH)  # the fault the filter exists for

    @settings(max_examples=300, deadline=None, database=None)
    @given(documents(schema, "identity"))
    def check(document: bytes) -> None:
        assert guard_reading_identities(document) == set()

    check()


def test_a_foreign_identity_split_over_two_elements_is_never_generated(registry: Registry) -> None:
    """front + back hold halves of a foreign identity: the guard reads the joined text, so no document passes."""
    foreign = find(foreign_identities(registry), lambda _: True, settings=settings(database=None))
    halves = {named("front"): st.just(foreign[:8]), named("back"): st.just(foreign[8:])}
    with pytest.raises((Unsatisfiable, FailedHealthCheck)):
        find(documents(everything(), "halves", overrides=halves), lambda _: True, settings=SEARCH)
    mine = contract_patients(registry)[0].id  # the same split of a registered patient is fine
    found = find(documents(everything(), "halves", registry=registry,
                           overrides={named("front"): st.just(mine[:8]), named("back"): st.just(mine[8:])}),
                 lambda _: True, settings=SEARCH)
    assert guard_reading_identities(found) == {mine}


def test_a_foreign_identity_from_an_override_is_filtered(registry: Registry) -> None:
    """An override cannot bring a foreign identity in: the value filter rejects it."""
    foreign = find(foreign_identities(registry), lambda _: True, settings=settings(database=None))
    with pytest.raises((Unsatisfiable, FailedHealthCheck)):
        find(documents(riv("HamtaPatientInfo"), "HamtaPatientInfo", registry=registry,
                       overrides={named("personnummer"): st.just(foreign)}), lambda _: True, settings=SEARCH)


# ---- 5. violations ----


def expected_error(violation: Violation) -> tuple[str, Callable[[Any], bool]]:
    """Where xmlschema must report the violation, and how it must name it."""
    element_path = violation.path.split("/@")[0]
    if violation.rule in FACET_RULES:
        return element_path, lambda e: rule_of(e) == violation.rule
    if violation.rule in ("required-attribute", "unexpected-attribute"):
        return element_path, lambda e: isinstance(e.validator, XsdAttributeGroup)
    if violation.rule == "nillable":
        return violation.path, lambda e: "not nillable" in str(e.reason)
    if violation.path.count("/") == 1:  # the document element itself
        return violation.path, lambda e: "not an element of the schema" in str(e.reason)
    return violation.path.rsplit("/", 1)[0], lambda e: True  # the content model of the parent says no


def assert_reported(schema: xmlschema.XMLSchema10, violation: Violation) -> None:
    errors = errors_of(schema, violation.document())
    assert errors, f"{violation.label} ({violation.detail}) is valid:\n{violation.document().decode()}"
    where, named_right = expected_error(violation)
    reported = [(path_of(e.elem), rule_of(e), e.reason) for e in errors]
    assert any(path_of(e.elem) == where and named_right(e) for e in errors), (violation.label, reported)
    assert violation.label == f"{violation.path}: {violation.rule}" and violation.rule in RULES


def test_a_wrong_label_or_a_valid_document_is_caught() -> None:
    """assert_reported can fail: a valid document, or a label naming another element or rule, is refused."""
    schema = everything()
    valid = find(elements(schema, "order"), lambda _: True, settings=SEARCH)
    with pytest.raises(AssertionError, match="is valid"):
        assert_reported(schema, Violation("maxInclusive", "/order/quantity", "nothing done", valid))
    broken = find(violations(schema, "order", rules={"required-attribute"}), lambda _: True, settings=SEARCH)
    assert_reported(schema, broken)
    with pytest.raises(AssertionError):
        assert_reported(schema, Violation("pattern", broken.path, broken.detail, broken.element))
    with pytest.raises(AssertionError):
        assert_reported(schema, Violation("required-attribute", "/order/line[1]/@version", "", broken.element))


@pytest.mark.parametrize("operation", REQUESTS)
def test_each_riv_request_violation_is_invalid_where_its_label_says(operation: str, registry: Registry) -> None:
    """Every request (property): each violation is refused by xmlschema at the element and for the rule it names."""
    schema = riv(operation)

    @VALID
    @given(violations(schema, operation, registry=registry))
    def check(violation: Violation) -> None:
        assert_reported(schema, violation)
        assert guard_reading_identities(violation.document()) <= {p.id for p in contract_patients(registry)}

    check()


SYNTHETIC_RULES = [(element, rule) for element in ("order", "measure", "fourDigits", "ratio", "year2020", "hex",
                                                   "nameList", "duration", "unordered", "open", "tree")
                   for rule in rules(everything(), element)]


@pytest.mark.parametrize(("element", "rule"), SYNTHETIC_RULES, ids=[f"{e}-{r}" for e, r in SYNTHETIC_RULES])
def test_every_rule_each_element_offers_is_broken_alone(element: str, rule: str) -> None:
    """everything.xsd (each rule `rules()` names): a violation of it is generated, invalid, and labelled right."""
    schema = everything()
    violation = find(violations(schema, element, rules={rule}), lambda _: True, settings=SEARCH)
    assert violation.rule == rule
    assert_reported(schema, violation)


def test_the_synthetic_schema_offers_every_rule() -> None:
    """Between them the elements above offer every rule violations() knows, so every rule is tested above."""
    assert {rule for _, rule in SYNTHETIC_RULES} == set(RULES)


def test_riv_requests_offer_the_wire_faults_of_issue_15() -> None:
    """An element renamed or dropped, a namespace version changed, an order the XSD fixes changed."""
    offered = set(rules(riv("SkapaOrdinationVard"), "SkapaOrdinationVard"))
    assert {"minOccurs", "namespace", "order", "unexpected-element", "pattern", "maxInclusive"} <= offered
    violation = find(violations(riv("SkapaOrdinationVard"), "SkapaOrdinationVard", rules={"namespace"}),
                     lambda v: v.path == "/SkapaOrdinationVard", settings=SEARCH)
    assert etree.QName(violation.element).namespace == "urn:riv:se.apotekensservice:or:SkapaOrdinationVardResponder:7"
