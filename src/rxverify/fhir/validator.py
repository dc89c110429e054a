"""Validate FHIR resources against the base specification and the profiles of a package, offline.

Driven only by the conformance resources (package.py): nothing here knows a profile by name.

Base level: structure and primitive formats through the fhir.resources R4B models (fhir.resources
8.3 has no R4 models). The R4/R4B differences that matter for the resources used here:

- MedicationRequest, MedicationDispense, Consent, Provenance, Bundle, OperationOutcome and
  Parameters have the same elements, cardinalities and primitive formats in R4 (4.0.1) and
  R4B (4.3.0); the R4B models are a faithful base for them.
- R4B adds the data types CodeableReference and RatioRange to the open types (Extension.value[x],
  and the models accept them wherever an open choice appears). An R4 resource cannot carry them,
  so a choice element spelt `...CodeableReference` or `...RatioRange` is reported here as a
  structure error before the models see the document.
- R4B fixes the reported FHIR version at 4.3.0; the profiles declare fhirVersion 4.0.1. Nothing
  is checked against the version string.
- The models accept any string for a required-binding code (e.g. MedicationRequest.status); the
  bindings are checked here against the package's ValueSets (the base ValueSets are not in the
  package, so base-only bindings are left to the profiles that restate them).

Profile level, from the snapshot: cardinality (also of choice types and slices), types and
reference target profiles (`#id` must resolve to a contained resource), fixed[x], pattern[x],
required and extensible bindings (compose.include of the package's CodeSystems: concept lists,
whole systems, other ValueSets; compose.exclude), maxLength, minValue/maxValue, mustSupport
(information when absent), constraints (FHIRPath, fhirpathpy; `matches('re')` on the element
itself runs as a Python regex, as fhirpathpy would), slicing by value/pattern discriminators
(identifier.system, coding.system, extension url, ...), open and closed, and contained resources
against their profiles.

Choices made where FHIR leaves room: an invariant whose result is empty is satisfied (a missing
element is reported once, by its cardinality, not again by every invariant that reads it); an
invariant fhirpathpy cannot evaluate is a warning naming its key; slicing by another
discriminator type (type, profile, exists) is not evaluated and says so as a warning. Each
profile is compiled once into a plan of nodes (cached per Validator).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fhirpathpy import compile as fhirpath_compile
from pydantic import ValidationError

from rxverify.errors import UserError
from rxverify.fhir import fastpath
from rxverify.fhir.package import BASE_PREFIX, Package, default_package

SEVERITIES = ("error", "warning", "information")
# Data types R4B added to the open types; no R4 resource may use them (see the docstring).
R4B_ONLY_TYPES = ("CodeableReference", "RatioRange")
_MATCHES = re.compile(r"^\s*(?:\$this\s*\.\s*)?matches\(\s*'((?:[^'\\]|\\.)*)'\s*\)\s*$")
_REFERENCE = re.compile(r"^(?:.*/)?([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$")
_FHIRPATH_ESCAPES = {"\\'": "'", '\\"': '"', "\\`": "`", "\\\\": "\\", "\\/": "/", "\\f": "\f", "\\n": "\n"}


@dataclass(frozen=True)
class Issue:
    """One finding, as an OperationOutcome issue: severity, code, FHIRPath-like location, message."""

    severity: str  # error | warning | information
    code: str  # OperationOutcome issue type: structure, required, value, code-invalid, invariant, ...
    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.severity.capitalize()} @ {self.location}: [{self.code}] {self.message}"


def fhirpath_string(literal: str) -> str:
    """The value of a FHIRPath string literal's body (escapes resolved)."""
    return re.sub(r"\\(?:u[0-9a-fA-F]{4}|.)", lambda m: _unescape(m.group(0)), literal)


def _unescape(escape: str) -> str:
    if escape.startswith("\\u"):
        return chr(int(escape[2:], 16))
    return _FHIRPATH_ESCAPES.get(escape, escape[1:])


@dataclass(eq=False)
class Constraint:
    """A constraint (invariant) of an element: FHIRPath compiled once, `matches()` as a regex.

    FHIRPath runs on the fast path (fastpath.py) where it covers the expression and the input,
    otherwise on fhirpathpy; both give the same result.
    """

    key: str
    severity: str
    human: str
    expression: str
    on_root: bool
    regex: re.Pattern[str] | None = None
    _compiled: Callable[..., Any] | None = None
    _fast: Callable[[Any], list[Any]] | None = None
    broken: str | None = None

    @classmethod
    def build(cls, raw: dict[str, Any], on_root: bool) -> Constraint:
        """Compile one ElementDefinition.constraint."""
        expression = str(raw.get("expression") or "")
        constraint = cls(
            str(raw.get("key", "?")),
            str(raw.get("severity", "error")),
            str(raw.get("human", "")),
            expression,
            on_root,
        )
        if not expression:
            constraint.broken = "no expression"
            return constraint
        found = _MATCHES.match(expression)
        if found:
            try:
                constraint.regex = re.compile(fhirpath_string(found.group(1)), re.DOTALL)
            except re.error as exc:
                constraint.broken = f"bad regular expression ({exc})"
            return constraint
        try:
            text = expression if on_root else f"x.select({expression})"
            constraint._compiled = fhirpath_compile(text)
            constraint._fast = fastpath.compile(text)
        except Exception as exc:  # fhirpathpy raises bare Exceptions for syntax errors
            constraint.broken = str(exc) or type(exc).__name__
        return constraint

    def holds(self, value: Any, resource: Any) -> bool:
        """Whether the constraint holds for `value` (an empty result holds); raises when unevaluable."""
        if self.broken:
            raise ValueError(self.broken)
        if self.regex is not None and isinstance(value, str):
            return self.regex.search(value) is not None
        compiled = self._compiled
        if compiled is None:  # a regex constraint on a non-string: FHIRPath gives empty
            return True
        subject = value if self.on_root else {"x": value}
        if self._fast is None:
            result = compiled(subject, {"resource": resource})
        else:
            try:
                result = self._fast(subject)
            except fastpath.Unsupported:
                result = compiled(subject, {"resource": resource})
        if not result:
            return True
        if all(isinstance(r, bool) for r in result):
            return all(result)
        return len(result) == 1


@dataclass(frozen=True)
class TypeRef:
    """One ElementDefinition.type: code, profiles, target profiles."""

    code: str
    profiles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()


@dataclass(eq=False)
class Node:
    """One element of a profile's snapshot, with its children and slices."""

    id: str
    name: str
    choice: bool
    min: int
    max: int | None
    types: tuple[TypeRef, ...]
    is_array: bool
    has_fixed: bool = False
    fixed: Any = None
    has_pattern: bool = False
    pattern: Any = None
    binding_strength: str | None = None
    binding_set: str | None = None
    max_length: int | None = None
    min_value: Any = None
    max_value: Any = None
    must_support: bool = False
    constraints: list[Constraint] = field(default_factory=list)
    slice_name: str | None = None
    slicing_rules: str | None = None
    discriminators: tuple[tuple[str, str], ...] = ()
    slices: dict[str, Node] = field(default_factory=dict)
    children: dict[str, Node] = field(default_factory=dict)
    choice_keys: dict[str, str] = field(default_factory=dict)  # JSON suffix -> type code
    # slice matching, resolved on first use: slice name -> [(path, kind, value)]
    _matchers: dict[str, list[tuple[str, str, Any]]] | None = None

    def type_codes(self) -> list[str]:
        """The type codes allowed here."""
        return [t.code for t in self.types]


@dataclass(eq=False)
class Plan:
    """A profile compiled for validation and generation."""

    url: str
    type: str
    kind: str
    root: Node
    definition: dict[str, Any]


def _max(text: Any) -> int | None:
    return None if text in (None, "*") else int(text)


def _split_id(element_id: str) -> list[tuple[str, str | None]]:
    parts: list[tuple[str, str | None]] = []
    for segment in element_id.split("."):
        name, _, slice_name = segment.partition(":")
        parts.append((name, slice_name or None))
    return parts


def _prefixed(element: dict[str, Any], prefix: str) -> tuple[bool, Any]:
    for key, value in element.items():
        if key.startswith(prefix) and len(key) > len(prefix) and key[len(prefix)].isupper():
            return True, value
    return False, None


def _node(element: dict[str, Any], name: str, slice_name: str | None, on_root: bool) -> Node:
    types = tuple(
        TypeRef(
            str(t.get("code", "")),
            tuple(t.get("profile", []) or []),
            tuple(t.get("targetProfile", []) or []),
        )
        for t in element.get("type", []) or []
    )
    base_max = (element.get("base") or {}).get("max", element.get("max"))
    choice = name.endswith("[x]")
    node = Node(
        id=str(element.get("id") or element.get("path")),
        name=name[:-3] if choice else name,
        choice=choice,
        min=int(element.get("min", 0) or 0),
        max=_max(element.get("max", "*")),
        types=types,
        is_array=base_max != "1" and base_max != "0",
        must_support=bool(element.get("mustSupport")),
        slice_name=slice_name,
    )
    node.has_fixed, node.fixed = _prefixed(element, "fixed")
    node.has_pattern, node.pattern = _prefixed(element, "pattern")
    _, node.min_value = _prefixed(element, "minValue")
    _, node.max_value = _prefixed(element, "maxValue")
    if isinstance(element.get("maxLength"), int):
        node.max_length = element["maxLength"]
    binding = element.get("binding") or {}
    if binding.get("strength") in ("required", "extensible") and binding.get("valueSet"):
        node.binding_strength = binding["strength"]
        node.binding_set = binding["valueSet"]
    node.constraints = [Constraint.build(c, on_root) for c in element.get("constraint", []) or []]
    slicing = element.get("slicing")
    if slicing:
        node.slicing_rules = slicing.get("rules", "open")
        node.discriminators = tuple((d.get("type", ""), d.get("path", "")) for d in slicing.get("discriminator", []))
    if choice:
        node.choice_keys = {t.code[:1].upper() + t.code[1:]: t.code for t in types}
    return node


def compile_plan(definition: dict[str, Any]) -> Plan:
    """Compile a StructureDefinition's snapshot into a tree of nodes."""
    url = str(definition.get("url"))
    elements = (definition.get("snapshot") or {}).get("element")
    if not elements:
        raise UserError(f"StructureDefinition {url} has no snapshot (generate it with the IG publisher or sushi)")
    root = _node(elements[0], elements[0].get("path", ""), None, on_root=True)
    for element in elements[1:]:
        parts = _split_id(str(element.get("id") or element.get("path")))
        node = root
        for name, slice_name in parts[1:-1]:
            child = node.children.get(name[:-3] if name.endswith("[x]") else name)
            if child is None:  # an id whose parent is absent: nothing to attach to
                break
            node = child.slices.get(slice_name, child) if slice_name else child
        else:
            name, slice_name = parts[-1]
            new = _node(element, name, slice_name, on_root=False)
            key = new.name
            if slice_name is None:
                node.children[key] = new
            elif key in node.children:
                parent = node.children[key]
                if parent.choice:  # a type slice (value[x]:valueString) restates the choice: not a slice
                    continue
                new.is_array = parent.is_array
                parent.slices[slice_name] = new
    return Plan(url, str(definition.get("type")), str(definition.get("kind")), root, definition)


def _contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern[x] semantics: every property of the pattern is present in the value."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_contains(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        if not isinstance(value, list):
            return False
        return all(any(_contains(v, p) for v in value) for p in pattern)
    return bool(value == pattern)


def _values_at(value: Any, path: str) -> list[Any]:
    current = value if isinstance(value, list) else [value]
    if path in ("", "$this"):
        return current
    for step in path.split("."):
        found: list[Any] = []
        for item in current:
            if isinstance(item, dict) and step in item:
                got = item[step]
                found.extend(got if isinstance(got, list) else [got])
        current = found
    return current


class _Run:
    """The state of one validation: the issues so far and the root's contained resources."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.issues: list[Issue] = []
        self.seen: set[tuple[str, str, str, str]] = set()
        self.contained: dict[str, tuple[str, dict[str, Any]]] = {}
        self.checked: set[tuple[int, str]] = set()
        contained = resource.get("contained")
        if isinstance(contained, list):
            for i, item in enumerate(contained):
                if isinstance(item, dict) and isinstance(item.get("id"), str):
                    self.contained[item["id"]] = (f"{resource.get('resourceType')}.contained[{i}]", item)

    def add(self, severity: str, code: str, location: str, message: str) -> None:
        key = (severity, code, location, message)
        if key not in self.seen:
            self.seen.add(key)
            self.issues.append(Issue(severity, code, location, message))


class Validator:
    """Validates resources against a package's profiles; plans and expansions are cached."""

    def __init__(self, package: Package) -> None:
        self.package = package
        self._plans: dict[str, Plan] = {}
        self._expansions: dict[str, frozenset[tuple[str, str]]] = {}
        self._models: dict[str, Any] = {}

    # ------------------------------------------------------------------ conformance resources

    def plan(self, url: str, referrer: str = "") -> Plan:
        """The compiled profile with canonical `url` (a UserError when the package lacks it)."""
        plan = self._plans.get(url)
        if plan is None:
            definition = self.package.resolve(url, "StructureDefinition", referrer)
            plan = compile_plan(definition)
            self._check_references(plan)
            self._plans[url] = plan
        return plan

    def _check_references(self, plan: Plan) -> None:
        """Every profile, target profile and ValueSet a plan refers to must be resolvable."""
        stack = [plan.root]
        while stack:
            node = stack.pop()
            for t in node.types:
                for url in (*t.profiles, *t.targets):
                    if not url.startswith(BASE_PREFIX) and self.package.find(url) is None:
                        raise UserError(
                            f"FHIR package {self.package.source} has no StructureDefinition {url} "
                            f"(referenced by {plan.url} at {node.id})"
                        )
            if node.binding_set:
                self.expansion(node.binding_set, f"{plan.url} at {node.id}")
            stack.extend(node.children.values())
            stack.extend(node.slices.values())

    def target_type(self, url: str) -> str:
        """The resource type a (target) profile constrains."""
        found = self.package.find(url)
        if found is not None and found.get("resourceType") == "StructureDefinition":
            return str(found.get("type"))
        return url.rsplit("/", 1)[-1].split("|")[0]

    def expansion(self, url: str, referrer: str = "") -> frozenset[tuple[str, str]]:
        """The (system, code) pairs of a ValueSet, expanded from compose over the package's CodeSystems."""
        cached = self._expansions.get(url)
        if cached is not None:
            return cached
        value_set = self.package.resolve(url, "ValueSet", referrer)
        codes: set[tuple[str, str]] = set()
        if value_set.get("expansion", {}).get("contains"):
            codes.update(self._flatten_expansion(value_set["expansion"]["contains"]))
        compose = value_set.get("compose") or {}
        for include in compose.get("include", []):
            codes.update(self._include(include, url))
        for exclude in compose.get("exclude", []):
            codes.difference_update(self._include(exclude, url))
        result = frozenset(codes)
        self._expansions[url] = result
        return result

    def _flatten_expansion(self, contains: list[dict[str, Any]]) -> Iterable[tuple[str, str]]:
        for entry in contains:
            if "code" in entry:
                yield str(entry.get("system", "")), str(entry["code"])
            yield from self._flatten_expansion(entry.get("contains", []))

    def _include(self, include: dict[str, Any], value_set: str) -> set[tuple[str, str]]:
        system = include.get("system")
        codes: set[tuple[str, str]] | frozenset[tuple[str, str]] = set()
        if system and include.get("concept"):
            codes = {(system, str(c["code"])) for c in include["concept"] if "code" in c}
        elif system:
            if include.get("filter"):
                raise UserError(f"ValueSet {value_set}: compose filters are not supported (include of {system})")
            version = include.get("version")
            key = f"{system}|{version}" if version else system
            code_system = self.package.resolve(key, "CodeSystem", f"ValueSet {value_set}")
            codes = {(system, code) for code in _all_codes(code_system.get("concept", []))}
        for other in include.get("valueSet", []):
            imported = self.expansion(other, f"ValueSet {value_set}")
            codes = imported if not system and not codes else codes & imported
        return set(codes)

    def profiles_for(self, resource: dict[str, Any], explicit: list[str] | None = None) -> list[str]:
        """Explicit profiles, else meta.profile, else the CapabilityStatement's for the type."""
        meta = resource.get("meta")
        declared = meta.get("profile") if isinstance(meta, dict) else None
        urls = list(explicit or [])
        if isinstance(declared, list):
            urls += [u for u in declared if isinstance(u, str) and u not in urls]
        if not urls:
            urls = self.package.supported_profiles(str(resource.get("resourceType")))
        return [u for u in urls if not (u.startswith(BASE_PREFIX) and self.package.find(u) is None)]

    # ------------------------------------------------------------------ validation

    def validate(self, resource: Any, profiles: list[str] | None = None) -> list[Issue]:
        """All issues of `resource` against the base specification and its profiles."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return [Issue("error", "structure", "(document)", "not a FHIR resource: no resourceType")]
        run = _Run(resource)
        rtype = resource["resourceType"]
        self._base(resource, rtype, run)
        self._profiles(resource, rtype, rtype, profiles, run)
        if rtype == "Bundle":
            for i, entry in enumerate(resource.get("entry") or []):
                inner = entry.get("resource") if isinstance(entry, dict) else None
                if isinstance(inner, dict) and isinstance(inner.get("resourceType"), str):
                    sub = _Run(inner)
                    self._profiles(inner, inner["resourceType"], f"Bundle.entry[{i}].resource", None, sub)
                    for issue in sub.issues:
                        run.add(issue.severity, issue.code, issue.location, issue.message)
        return run.issues

    def _profiles(self, resource: dict[str, Any], rtype: str, loc: str, explicit: list[str] | None, run: _Run) -> None:
        meta = resource.get("meta")
        declared = meta.get("profile") if isinstance(meta, dict) else None
        # a malformed meta is the base check's finding; here it just claims nothing
        claimed = {u for u in declared if isinstance(u, str)} if isinstance(declared, list) else set()
        claimed -= set(explicit or [])
        for url in self.profiles_for(resource, explicit):
            if url in claimed and (self.package.find(url) or {}).get("resourceType") != "StructureDefinition":
                # a profile the resource claims but the package lacks: said, as the HL7 validator does
                run.add("warning", "not-found", f"{loc}.meta.profile", f"profile {url} is not in the package")
                continue
            plan = self.plan(url)
            if plan.type != rtype:
                run.add("error", "structure", loc, f"profile {url} is for {plan.type}, not {rtype}")
                continue
            self._check_resource(plan, resource, loc, run)

    def _base(self, resource: dict[str, Any], rtype: str, run: _Run) -> None:
        """Structure and primitive formats through the fhir.resources R4B models."""
        _r4b_only(resource, rtype, run)
        model = self._models.get(rtype)
        if model is None:
            from fhir.resources.R4B import get_fhir_model_class

            try:
                model = get_fhir_model_class(rtype)
            except ValueError:
                run.add("error", "structure", rtype, f"unknown resource type {rtype!r}")
                return
            self._models[rtype] = model
        try:
            model.model_validate(resource)
        except ValidationError as exc:
            for error in exc.errors():
                location = _location(rtype, error.get("loc", ()))
                kind = error.get("type", "")
                if _xsd_string_ok(error):
                    continue
                if kind == "extra_forbidden":
                    run.add("error", "structure", location, "unknown element (not in the FHIR R4 definition)")
                elif kind == "missing":
                    run.add("error", "required", location, "missing element required by the base specification")
                else:
                    run.add("error", "value", location, f"{error.get('msg', 'invalid value')}")
        except Exception as exc:  # a model raising outside pydantic: still the document's fault
            run.add("error", "structure", rtype, f"the base model rejects the resource: {exc}")

    def _check_resource(self, plan: Plan, resource: dict[str, Any], loc: str, run: _Run) -> None:
        marker = (id(resource), plan.url)
        if marker in run.checked:
            return
        run.checked.add(marker)
        self._check_value(plan.root, resource, loc, None, run)

    def _check_object(self, node: Node, obj: dict[str, Any], loc: str, run: _Run) -> None:
        for child in node.children.values():
            items = self._collect(child, obj, loc, run)
            where = f"{loc}.{child.name}[x]" if child.choice else f"{loc}.{child.name}"
            self._check_element(child, items, where, run)

    def _collect(self, child: Node, obj: dict[str, Any], loc: str, run: _Run) -> list[tuple[Any, str, str | None]]:
        name = child.name
        if child.choice:
            out: list[tuple[Any, str, str | None]] = []
            for key, value in obj.items():
                if key.startswith(name) and len(key) > len(name) and key[len(name)].isupper():
                    code = child.choice_keys.get(key[len(name) :])
                    if code is None:
                        allowed = ", ".join(child.choice_keys) or "none"
                        run.add("error", "structure", f"{loc}.{key}", f"type not allowed by the profile ({allowed})")
                        continue
                    out.extend(_items(value, f"{loc}.{key}", code))
            return out
        value = obj.get(name)
        return [] if value is None else _items(value, f"{loc}.{name}", None)

    def _check_element(self, node: Node, items: list[tuple[Any, str, str | None]], where: str, run: _Run) -> None:
        count = len(items)
        if count < node.min:
            run.add("error", "required", where, f"minimum required = {node.min}, found {count}")
        if node.max is not None and count > node.max:
            text = "not allowed by the profile" if node.max == 0 else f"maximum allowed = {node.max}, found {count}"
            run.add("error", "structure", where, text)
        if count == 0 and node.must_support and node.min == 0:
            run.add("information", "informational", where, "must-support element absent")
        if node.slicing_rules is not None and count:
            self._check_slices(node, items, where, run)
        for value, loc, code in items:
            self._check_value(node, value, loc, code, run)

    def _check_value(self, node: Node, value: Any, loc: str, code: str | None, run: _Run) -> None:
        if node.has_fixed and value != node.fixed:
            run.add("error", "value", loc, f"value {_show(value)} does not equal the fixed value {_show(node.fixed)}")
        if node.has_pattern and not _contains(value, node.pattern):
            run.add("error", "value", loc, f"value does not match the pattern {_show(node.pattern)}")
        if node.max_length is not None and isinstance(value, str) and len(value) > node.max_length:
            run.add("error", "too-long", loc, f"length {len(value)} exceeds maxLength {node.max_length}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if node.min_value is not None and value < node.min_value:
                run.add("error", "value", loc, f"value {value} is below the minimum {node.min_value}")
            if node.max_value is not None and value > node.max_value:
                run.add("error", "value", loc, f"value {value} is above the maximum {node.max_value}")
        if node.binding_set is not None:
            self._check_binding(node, value, loc, run)
        types = node.types if code is None else tuple(t for t in node.types if t.code == code)
        if isinstance(value, dict):
            if "resourceType" in value and value is not run.resource:
                self._check_contained(node, types, value, loc, run)
            else:
                for t in types:
                    if t.code == "Reference":
                        self._check_reference(t, value, loc, run)
                    for url in t.profiles:
                        plan = self.plan(url, node.id)
                        if plan.kind != "resource":
                            self._check_value(plan.root, value, loc, None, run)
            if node.children:
                self._check_object(node, value, loc, run)
        elif types and len(types) == 1 and types[0].code[:1].isupper():
            run.add("error", "structure", loc, f"a {types[0].code} is a JSON object, found {_show(value)}")
        for constraint in node.constraints:
            self._evaluate(constraint, value, loc, run)

    def _check_contained(
        self, node: Node, types: tuple[TypeRef, ...], value: dict[str, Any], loc: str, run: _Run
    ) -> None:
        rtype = value.get("resourceType")
        allowed = [t for t in types if t.code in (rtype, "Resource", "DomainResource")]
        if types and not allowed:
            codes = ", ".join(t.code for t in types)
            run.add("error", "structure", loc, f"a {rtype} is not allowed here by the profile ({codes})")
            return
        for t in allowed:
            for url in t.profiles:
                plan = self.plan(url, node.id)
                if plan.type != rtype:
                    run.add("error", "structure", loc, f"profile {url} is for {plan.type}, not {rtype}")
                else:
                    self._check_resource(plan, value, loc, run)

    def _check_reference(self, t: TypeRef, value: dict[str, Any], loc: str, run: _Run) -> None:
        reference = value.get("reference")
        if not isinstance(reference, str) or not t.targets:
            if isinstance(reference, str) and reference.startswith("#") and reference[1:] not in run.contained:
                run.add("error", "not-found", f"{loc}.reference", f"no contained resource with id {reference[1:]!r}")
            return
        allowed = {self.target_type(u) for u in t.targets}
        if reference.startswith("#"):
            if reference == "#":
                return  # the container itself
            found = run.contained.get(reference[1:])
            if found is None:
                run.add("error", "not-found", f"{loc}.reference", f"no contained resource with id {reference[1:]!r}")
                return
            where, target = found
            rtype = str(target.get("resourceType"))
            if not allowed & {rtype, "Resource"}:
                run.add("error", "structure", f"{loc}.reference", f"refers to a {rtype}; allowed: {sorted(allowed)}")
                return
            for url in t.targets:
                if not url.startswith(BASE_PREFIX) and self.target_type(url) == rtype:
                    self._check_resource(self.plan(url), target, where, run)
            return
        match = _REFERENCE.match(reference)
        if match and not allowed & {match.group(1), "Resource"}:
            run.add(
                "error", "structure", f"{loc}.reference", f"refers to a {match.group(1)}; allowed: {sorted(allowed)}"
            )

    def _check_binding(self, node: Node, value: Any, loc: str, run: _Run) -> None:
        assert node.binding_set is not None
        codes = self.expansion(node.binding_set)
        if isinstance(value, str):
            ok = any(code == value for _, code in codes)
            shown = value
        elif isinstance(value, dict) and "coding" in value:
            codings = [c for c in value.get("coding") or [] if isinstance(c, dict)]
            ok = any((str(c.get("system", "")), str(c.get("code", ""))) in codes for c in codings)
            shown = ", ".join(f"{c.get('system')}#{c.get('code')}" for c in codings) or "no coding"
        elif isinstance(value, dict) and "code" in value:
            ok = (str(value.get("system", "")), str(value.get("code"))) in codes
            shown = f"{value.get('system')}#{value.get('code')}"
        else:
            return  # text only: nothing coded to check
        if not ok:
            severity = "error" if node.binding_strength == "required" else "warning"
            run.add(
                severity,
                "code-invalid",
                loc,
                f"{shown} is not in the {node.binding_strength} ValueSet {node.binding_set}",
            )

    def _check_slices(self, node: Node, items: list[tuple[Any, str, str | None]], where: str, run: _Run) -> None:
        matchers = self._matchers(node, run, where)
        if matchers is None:
            return
        matched: dict[str, list[tuple[Any, str, str | None]]] = {name: [] for name in node.slices}
        for item in items:
            name = next((n for n, tests in matchers.items() if _slice_matches(item[0], tests)), None)
            if name is not None:
                matched[name].append(item)
            elif node.slicing_rules == "closed":
                run.add("error", "structure", item[1], f"matches no slice of {where} and the slicing is closed")
        for name, slice_node in node.slices.items():
            self._check_element(slice_node, matched[name], f"{where}:{name}", run)

    def _matchers(self, node: Node, run: _Run, where: str) -> dict[str, list[tuple[str, str, Any]]] | None:
        if node._matchers is not None:
            return node._matchers
        unsupported = [f"{kind}:{path}" for kind, path in node.discriminators if kind not in ("value", "pattern")]
        if unsupported or not node.discriminators:
            what = ", ".join(unsupported) or "no discriminator"
            run.add("warning", "not-supported", where, f"slicing by {what} is not evaluated")
            return None
        matchers: dict[str, list[tuple[str, str, Any]]] = {}
        for name, slice_node in node.slices.items():
            tests: list[tuple[str, str, Any]] = []
            for kind, path in node.discriminators:
                target = self._descend(slice_node, path)
                if target is None or not (target.has_fixed or target.has_pattern):
                    tests = []
                    break
                tests.append((path, kind, target.fixed if target.has_fixed else target.pattern))
            if tests:
                matchers[name] = tests
        node._matchers = matchers
        return matchers

    def _descend(self, node: Node, path: str) -> Node | None:
        """The node at a discriminator path below a slice, following the slice's type profile."""
        if path in ("", "$this"):
            return node
        current: Node | None = node
        for step in path.split("."):
            if current is None:
                return None
            nxt = current.children.get(step)
            if nxt is None:
                for t in current.types:
                    for url in t.profiles:
                        nxt = nxt or self.plan(url, current.id).root.children.get(step)
            current = nxt
        return current

    def _evaluate(self, constraint: Constraint, value: Any, loc: str, run: _Run) -> None:
        try:
            ok = constraint.holds(value, run.resource)
        except Exception as exc:  # fhirpathpy raises anything; an unevaluable invariant is not a crash
            run.add(
                "warning",
                "not-supported",
                loc,
                f"constraint {constraint.key} could not be evaluated ({constraint.expression!r}: {exc})",
            )
            return
        if not ok:
            severity = constraint.severity if constraint.severity in SEVERITIES else "error"
            run.add(severity, "invariant", loc, f"{constraint.key}: {constraint.human or constraint.expression}")


def _slice_matches(value: Any, tests: list[tuple[str, str, Any]]) -> bool:
    for path, kind, expected in tests:
        found = _values_at(value, path)
        if kind == "pattern" and not any(_contains(v, expected) for v in found):
            return False
        if kind == "value" and expected not in found:
            return False
    return True


def _all_codes(concepts: list[dict[str, Any]]) -> Iterable[str]:
    for concept in concepts:
        if "code" in concept:
            yield str(concept["code"])
        yield from _all_codes(concept.get("concept", []))


def _items(value: Any, loc: str, code: str | None) -> list[tuple[Any, str, str | None]]:
    if isinstance(value, list):
        return [(v, f"{loc}[{i}]", code) for i, v in enumerate(value)]
    return [(value, loc, code)]


def _location(rtype: str, parts: Iterable[Any]) -> str:
    text = rtype
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _r4b_only(value: Any, loc: str, run: _Run) -> None:
    """Report choice elements of the data types R4B added (not valid in an R4 resource)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key.endswith(R4B_ONLY_TYPES) and key[:1].islower():
                run.add("error", "structure", f"{loc}.{key}", "data type not in FHIR R4 (added in R4B)")
            _r4b_only(inner, f"{loc}.{key}", run)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            _r4b_only(inner, f"{loc}[{i}]", run)


_VALIDATORS: dict[int, Validator] = {}


def validator_for(package: Package | None = None) -> Validator:
    """The cached Validator of a package (default: contracts/fhir)."""
    package = package or default_package()
    found = _VALIDATORS.get(id(package))
    if found is None or found.package is not package:
        found = Validator(package)
        _VALIDATORS[id(package)] = found
    return found


def validate(
    resource: dict[str, Any], profiles: list[str] | None = None, package: Package | None = None
) -> list[Issue]:
    """Validate one resource; profiles from `profiles`, meta.profile or the CapabilityStatement."""
    return validator_for(package).validate(resource, profiles)


def errors(issues: Iterable[Issue]) -> list[Issue]:
    """Only the errors."""
    return [i for i in issues if i.severity == "error"]


_FHIR_STRING_REGEX = "[ \r\n\t\\S]+"


def _xsd_string_ok(error: Any) -> bool:
    """Whether a pattern error of the FHIR string regex is the models' reading, not the spec's.

    FHIR's string regex `[ \\r\\n\\t\\S]+` is an XML Schema regex, where \\S is every character but
    space, tab, CR and LF: any non-empty string matches. The models apply it with Python's re,
    whose \\S also excludes no-break space, U+2000.. and the information separators, so they
    reject strings FHIR allows. Such an error on a non-empty string is dropped.
    """
    if error.get("type") != "string_pattern_mismatch":
        return False
    pattern = str((error.get("ctx") or {}).get("pattern", ""))
    value = error.get("input")
    return pattern == _FHIR_STRING_REGEX and isinstance(value, str) and value != ""
