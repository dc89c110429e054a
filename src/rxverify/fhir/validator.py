"""Validate FHIR R4 resources against the R4 base specification and the profiles of a package, offline.

Driven only by conformance resources: the R4 base definitions (base.py, from installed
registry packages) and the package's own (package.py). Nothing here knows a profile by name, and
no R4B model decides anything: fhir.resources is not used.

One walk over the raw JSON per profile (the base definition when the resource claims none),
element by element of the snapshot, descending into each data type's own definition where the
snapshot does not spell its children out. At every element:

- JSON as json.html states it: the JSON type of each primitive (primitives.py), no null, no
  empty array, no empty object, no unknown property (comments included: R4 has no
  `fhir_comments`), arrays exactly where the element repeats, the `_element` form for a
  primitive's id and extensions (aligned arrays with null fillers), one type of a choice.
- Cardinality (also of choice types and slices), types, and reference targets (a literal
  reference's type against targetProfile; `#id` must resolve to a contained resource, which is
  then checked against the target profile).
- Bindings: required (error) and extensible (warning), ValueSets expanded from the package and
  the base (terminology.py); a binding whose ValueSet cannot be expanded offline is said as
  information, never passed in silence.
- Invariants of the element and of its type, with their declared severity, in FHIRPath
  (fhirpath.py: fhirpathpy with the R4 model). ele-1 ("All FHIR elements must have a @value or
  children") is checked by the walk itself, which sees exactly that; dom-6 (narrative) is not
  asked of contained resources, which "do not have narrative" (DomainResource.text).
- fixed[x] (exact), pattern[x] (contained), maxLength, minValue/maxValue, mustSupport
  (information when absent).
- Slicing by every discriminator type (value, pattern, exists, type, profile), open, closed and
  openAtEnd, slice cardinalities, and each slice's own rules on the items it matched.
- Contained resources (dom-2..dom-5 and ref-1 are base invariants; each contained resource is
  walked as a resource of its type), Bundle entries and Parameters resources likewise.
- Narrative XHTML (narrative.py) for txt-1 and txt-2.

Choices made where FHIR leaves room: an invariant whose result is empty is satisfied (a missing
element is reported once, by its cardinality, not again by every invariant that reads it); an
invariant fhirpathpy cannot evaluate is a warning naming its key; an extension whose url is
defined by a package here is checked against that definition, an unknown one only as Extension.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rxverify.errors import UserError
from rxverify.fhir import narrative
from rxverify.fhir.base import BASE_PREFIX, BaseDefinitions, base_definitions
from rxverify.fhir.fhirpath import Expression, FhirPathError, holds
from rxverify.fhir.fhirpath import regex as fhirpath_regex
from rxverify.fhir.package import Package, default_package
from rxverify.fhir.primitives import Primitive, json_type, load_primitives
from rxverify.fhir.structure import SYSTEM_PREFIX, Constraint, Node, Plan, TypeRef, compile_plan
from rxverify.fhir.terminology import Expansion, Terminology

SEVERITIES = ("error", "warning", "information")
RESOURCE_TYPES = frozenset({"Resource", "DomainResource"})
_MATCHES = re.compile(r"^\s*(?:\$this\s*\.\s*)?matches\(\s*'((?:[^'\\]|\\.)*)'\s*\)\s*$")
_LITERAL = re.compile(
    r"^(?:(?:https?://\S+?/)?)([A-Z][A-Za-z]+)/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?$"
)
_FHIRPATH_ESCAPES = {"\\'": "'", '\\"': '"', "\\`": "`", "\\\\": "\\", "\\/": "/", "\\f": "\f", "\\n": "\n"}
# Invariants the walk checks itself (see the module docstring).
NATIVE = frozenset({"ele-1", "dom-3"})
URI_TYPES = frozenset({"uri", "url", "canonical", "oid", "uuid"})  # FHIRPath `as(uri)` takes its subtypes too
NARRATIVE_RULES = frozenset({narrative.RULES, narrative.CONTENT})


@dataclass(frozen=True)
class Issue:
    """One finding, as an OperationOutcome issue: severity, code, FHIRPath-like location, message."""

    severity: str  # error | warning | information
    code: str  # OperationOutcome issue type: structure, required, value, code-invalid, invariant, ...
    location: str
    message: str
    key: str = ""  # the invariant's key (ele-1, dom-3, nll-2, ...) when code is invariant

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
class Invariant:
    """A constraint compiled for one element type: FHIRPath parsed once; `matches()` kept as a regex."""

    key: str
    severity: str
    human: str
    expression: str
    base: str | None  # the type or path fhirpathpy sees the focus as
    best_practice: bool = False
    regex: re.Pattern[str] | None = None  # `matches('re')` on the element itself (the generator draws from it)
    compiled: Expression | None = None
    broken: str | None = None

    @property
    def reads_resource(self) -> bool:
        """Whether it reads the resource around the element (%resource, %rootResource)."""
        return "%resource" in self.expression or "%rootResource" in self.expression

    @classmethod
    def build(cls, constraint: Constraint, base: str | None) -> Invariant:
        """Compile one ElementDefinition.constraint for a focus typed as `base`."""
        invariant = cls(
            constraint.key,
            constraint.severity if constraint.severity in SEVERITIES else "error",
            constraint.human,
            constraint.expression,
            base,
            constraint.best_practice,
        )
        if not constraint.expression:
            invariant.broken = "no expression"
            return invariant
        found = _MATCHES.match(constraint.expression)
        if found:
            try:
                invariant.regex = fhirpath_regex(fhirpath_string(found.group(1)))
            except re.error as exc:
                invariant.broken = f"bad regular expression ({exc})"
                return invariant
        try:
            invariant.compiled = Expression(constraint.expression, base)
        except FhirPathError as exc:
            invariant.broken = str(exc)
        return invariant

    def holds(self, value: Any, resource: Any, root: Any = None) -> bool:
        """Whether the invariant holds on `value` (an empty result holds); FhirPathError when unevaluable."""
        if self.broken:
            raise FhirPathError(self.broken)
        if self.regex is not None:
            return not isinstance(value, str) or self.regex.search(value) is not None
        assert self.compiled is not None
        return holds(self.compiled.evaluate(value, resource, resource if root is None else root))


@dataclass
class _Facts:
    """What dom-3 needs of a resource and its contained ones, gathered by the walk (types from the definitions)."""

    uris: set[str] = field(default_factory=set)  # values of uri, url, canonical, oid and uuid elements
    hash_canonical: set[int] = field(default_factory=set)  # contained resources holding a canonical '#'


@dataclass
class _Scope:
    """The resource an element belongs to (%resource) and the root of the validation (%rootResource)."""

    resource: dict[str, Any]
    root: dict[str, Any]
    contained: dict[str, dict[str, Any]]
    is_contained: bool
    facts: _Facts = field(default_factory=_Facts)  # shared by a resource and its contained resources


class _Run:
    """The state of one validation: the issues so far."""

    def __init__(self, resource: dict[str, Any]) -> None:
        self.resource = resource
        self.issues: list[Issue] = []
        self.seen: set[tuple[str, str, str, str]] = set()
        self.checked: set[tuple[int, str]] = set()

    def add(self, severity: str, code: str, location: str, message: str, key: str | None = None) -> None:
        found = (severity, code, location, message)
        if found not in self.seen:
            self.seen.add(found)
            if key is None:
                key = message.split(":", 1)[0] if code == "invariant" else ""
            self.issues.append(Issue(severity, code, location, message, key))


class _Index:
    """The JSON names an object of some element may have: child, type of a choice, whether `_name`."""

    def __init__(self, children: dict[str, Node], primitives: dict[str, Primitive]) -> None:
        self.children = children
        self.keys: dict[str, tuple[Node, str | None, bool]] = {}
        for child in children.values():
            if child.max == 0 and not child.types:
                continue
            if child.choice:
                for suffix, code in child.choice_keys.items():
                    self.keys[child.name + suffix] = (child, code, False)
                    if code in primitives:
                        self.keys["_" + child.name + suffix] = (child, code, True)
            else:
                self.keys[child.name] = (child, None, False)
                if len(child.types) == 1 and child.types[0].code in primitives:
                    self.keys["_" + child.name] = (child, None, True)
        self.required = [c for c in children.values() if c.min > 0 or any(s.min > 0 for s in c.slices.values())]
        self.must_support = [c for c in children.values() if c.must_support and c.min == 0]
        self.choices = {c.name: c for c in children.values() if c.choice}

    def choice_prefix(self, key: str) -> Node | None:
        """The choice element a JSON name starts with (valueFoo: value[x]), if any."""
        name = key[1:] if key.startswith("_") else key
        for prefix, child in self.choices.items():
            if name.startswith(prefix) and len(name) > len(prefix) and name[len(prefix)].isupper():
                return child
        return None

    def unknown(self, key: str) -> str:
        """The message for a JSON name no element has."""
        choice = self.choice_prefix(key)
        if choice is not None:
            allowed = ", ".join(choice.name + s for s in choice.choice_keys) or "none"
            return f"type not allowed here ({allowed})"
        if key == "fhir_comments":
            return "unknown property 'fhir_comments' (comments are not allowed in JSON: json.html)"
        return f"unknown property {key!r}"


Item = tuple[Any, Any, str, str | None]  # (value, `_value` element or None, location, type code of a choice)


def _contained_ids(resource: dict[str, Any]) -> dict[str, dict[str, Any]]:
    contained = resource.get("contained")
    out: dict[str, dict[str, Any]] = {}
    if isinstance(contained, list):
        for item in contained:
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                out.setdefault(item["id"], item)
    return out


class Validator:
    """Validates resources against the R4 base and a package's profiles; plans and expansions are cached."""

    def __init__(self, package: Package, base: BaseDefinitions | None = None) -> None:
        self.package = package
        self.base = base or base_definitions()
        self.index = self.base.index
        self.terminology = Terminology(package, self.index)
        self.primitives: dict[str, Primitive] = load_primitives(self.index)
        self._plans: dict[str, Plan] = {}
        self._invariants: dict[tuple[int, str | None], tuple[Invariant, ...]] = {}
        self._indexes: dict[int, _Index] = {}

    # ------------------------------------------------------------------ conformance resources

    def definition(self, url: str) -> dict[str, Any] | None:
        """A StructureDefinition by canonical url: the package's, else the R4 base's."""
        found = self.package.find(url)
        if found is not None and found.get("resourceType") == "StructureDefinition":
            return found
        return self.index.structure(url)

    def plan(self, url: str, referrer: str = "") -> Plan:
        """The compiled StructureDefinition with canonical `url` (a UserError when no package has it)."""
        plan = self._plans.get(url)
        if plan is None:
            definition = self.definition(url)
            if definition is None:
                by = f" (referenced by {referrer})" if referrer else ""
                raise UserError(
                    f"FHIR package {self.package.source} and the R4 base have no StructureDefinition {url}{by}"
                )
            plan = compile_plan(definition)
            self._plans[url] = plan
            if self.package.find(url) is not None:
                self._check_references(plan)
        return plan

    def type_plan(self, code: str) -> Plan | None:
        """The base definition of a data type or resource type by name, or None when R4 has none."""
        if self.index.type_definition(code) is None:
            return None
        return self.plan(BASE_PREFIX + code)

    def _check_references(self, plan: Plan) -> None:
        """Every profile, target profile and ValueSet a package's profile names must be resolvable."""
        stack = [plan.root]
        while stack:
            node = stack.pop()
            for t in node.types:
                for url in (*t.profiles, *t.targets):
                    if self.definition(url) is None:
                        raise UserError(
                            f"FHIR package {self.package.source} has no StructureDefinition {url} "
                            f"(referenced by {plan.url} at {node.id})"
                        )
            if node.binding_set:
                self.terminology.expand(node.binding_set, f"{plan.url} at {node.id}")
            stack.extend(node.children.values())
            stack.extend(node.slices.values())

    def target_type(self, url: str) -> str:
        """The resource type a (target) profile constrains."""
        found = self.definition(url)
        if found is not None:
            return str(found.get("type"))
        return url.rsplit("/", 1)[-1].split("|")[0]

    def expansion(self, url: str, referrer: str = "") -> frozenset[tuple[str, str]]:
        """The (system, code) pairs of a ValueSet (empty when it cannot be expanded offline)."""
        return self.terminology.expand(url, referrer).codes or frozenset()

    def profiles_for(self, resource: dict[str, Any], explicit: list[str] | None = None) -> list[str]:
        """Explicit profiles, else meta.profile, else the CapabilityStatement's for the type."""
        meta = resource.get("meta")
        declared = meta.get("profile") if isinstance(meta, dict) else None
        urls = list(explicit or [])
        if isinstance(declared, list):
            urls += [u for u in declared if isinstance(u, str) and u not in urls]
        if not urls:
            urls = self.package.supported_profiles(str(resource.get("resourceType")))
        return urls

    def invariants(self, node: Node, code: str | None) -> tuple[Invariant, ...]:
        """The invariants on a value of `node` typed `code`: the element's own, then its type's."""
        key = (id(node), code)
        found = self._invariants.get(key)
        if found is None:
            base = node.fhirpath_base(code or (node.types[0].code if len(node.types) == 1 else None))
            constraints = list(node.constraints)
            type_code = code or (node.types[0].code if len(node.types) == 1 else None)
            if type_code and type_code not in RESOURCE_TYPES:
                type_plan = self.type_plan(type_code) if self.index.type_definition(type_code) else None
                if type_plan is not None and not self.index.is_resource_or_abstract(type_code):
                    constraints += type_plan.root.constraints
            keys: set[str] = set()
            out = []
            for constraint in constraints:
                if constraint.key in keys or constraint.key in NATIVE:
                    continue
                keys.add(constraint.key)
                out.append(Invariant.build(constraint, base))
            found = self._invariants[key] = tuple(out)
        return found

    # ------------------------------------------------------------------ validation

    def validate(self, resource: Any, profiles: list[str] | None = None) -> list[Issue]:
        """All issues of `resource` against the R4 base specification and its profiles."""
        if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
            return [Issue("error", "structure", "(document)", "not a FHIR resource: no resourceType")]
        run = _Run(resource)
        rtype = resource["resourceType"]
        scope = _Scope(resource, resource, _contained_ids(resource), False)
        self._resource(resource, rtype, scope, self.profiles_for(resource, profiles), set(profiles or []), run)
        return run.issues

    def _uri_facts(self, resource: dict[str, Any], facts: _Facts) -> None:
        """Walk `resource` gathering into `facts` what dom-3 reads (for the tests of dom-3)."""
        scope = _Scope(resource, resource, _contained_ids(resource), False, facts)
        self._resource(resource, str(resource.get("resourceType")), scope, [], set(), _Run(resource))

    def _resource(
        self,
        resource: dict[str, Any],
        loc: str,
        scope: _Scope,
        profiles: list[str],
        explicit: set[str],
        run: _Run,
    ) -> None:
        rtype = resource.get("resourceType")
        if not isinstance(rtype, str):
            run.add("error", "structure", loc, "a resource without resourceType")
            return
        if not self.index.is_resource_type(rtype):
            run.add("error", "structure", f"{loc}.resourceType", f"unknown resource type {rtype!r} (not in FHIR R4)")
            return
        plans: list[Plan] = []
        for url in profiles:
            if self.definition(url) is None:
                if url in explicit:
                    raise UserError(f"FHIR package {self.package.source} has no StructureDefinition {url}")
                # a profile the resource claims but no package here has: said, as the HL7 validator does
                run.add("warning", "not-found", f"{loc}.meta.profile", f"profile {url} is not in the package")
                continue
            plan = self.plan(url)
            if plan.type != rtype:
                run.add("error", "structure", loc, f"profile {url} is for {plan.type}, not {rtype}")
                continue
            plans.append(plan)
        if not plans:
            base = self.type_plan(rtype)
            assert base is not None
            plans = [base]
        for i, plan in enumerate(plans):
            marker = (id(resource), plan.url)
            if marker in run.checked:
                continue
            run.checked.add(marker)
            self._resource_root(plan.root, resource, loc, scope, run, json=i == 0)

    # ---- one element

    def _check_element(self, node: Node, items: list[Item], where: str, scope: _Scope, run: _Run, json: bool) -> None:
        count = len(items)
        if count < node.min:
            run.add("error", "required", where, f"minimum required = {node.min}, found {count}")
        if node.max is not None and count > node.max:
            text = "not allowed here" if node.max == 0 else f"maximum allowed = {node.max}, found {count}"
            run.add("error", "structure", where, text)
        if count == 0 and node.must_support and node.min == 0:
            run.add("information", "informational", where, "must-support element absent")
        if node.slicing_rules is not None and count and node.slices:
            self._check_slices(node, items, where, scope, run)
        for value, extra, loc, code in items:
            self._value(node, value, extra, loc, code, scope, run, json)

    def _value(
        self,
        node: Node,
        value: Any,
        extra: Any,
        loc: str,
        code: str | None,
        scope: _Scope,
        run: _Run,
        json: bool,
    ) -> None:
        """One value of an element (`extra`: its `_element` object when a primitive has one)."""
        slot = f"type:{code}"
        kind = node.cache.get(slot)
        if kind is None:
            type_ref = node.type_of(code)
            tcode = type_ref.code if type_ref is not None else code
            resource_typed = tcode is not None and self.index.is_resource_or_abstract(tcode)
            kind = node.cache[slot] = (type_ref, tcode, resource_typed, self.primitives.get(tcode or ""))
        type_ref, tcode, resource_typed, primitive = kind
        if isinstance(value, dict) and (resource_typed or "resourceType" in value):
            self._nested_resource(node, value, loc, scope, run)
            return
        if primitive is not None:
            self._primitive(node, primitive, value, extra, loc, scope, run, json)
        elif value is not None:
            if not isinstance(value, dict):
                if json:
                    run.add("error", "structure", loc, f"expected a JSON object ({tcode}), found {json_type(value)}")
                return
            if json and not any(k != "id" for k in value):
                run.add("error", "invariant", loc, "ele-1: All FHIR elements must have a @value or children")
            self._complex(node, type_ref, tcode, value, loc, scope, run, json)
        self._fixed_pattern(node, value, loc, run)
        if node.binding_set is not None and value is not None:
            self._binding(node, tcode, value, loc, run)
        self._invariants_on(node, tcode, value, loc, scope, run)

    def _resource_root(self, node: Node, value: dict[str, Any], loc: str, scope: _Scope, run: _Run, json: bool) -> None:
        # a resource is no Element: ele-1 is not asked of it (a resource of only an id is valid)
        self._object(node, node.children, value, loc, scope, run, json, resource_root=True)
        self._invariants_on(node, None, value, loc, scope, run)
        dom3 = next((c for c in node.constraints if c.key == "dom-3"), None)
        if dom3 is not None and not _dom3_holds(value, scope.facts):
            run.add(dom3.severity, "invariant", loc, f"dom-3: {dom3.human}")

    def _nested_resource(self, node: Node, value: dict[str, Any], loc: str, scope: _Scope, run: _Run) -> None:
        rtype = value.get("resourceType")
        allowed = [t for t in node.types if t.code in RESOURCE_TYPES or t.code == rtype]
        if node.types and not allowed:
            codes = ", ".join(t.code for t in node.types)
            run.add("error", "structure", loc, f"a {rtype} is not allowed here ({codes})")
            return
        profiles = [url for t in allowed for url in t.profiles]
        is_contained = node.name == "contained"
        # a Bundle entry or a Parameters resource is a resource in its own right: its own %rootResource
        inner = _Scope(value, scope.root if is_contained else value, _contained_ids(value), is_contained)
        if is_contained:
            inner.facts = scope.facts
        if not is_contained:
            profiles = profiles or self.profiles_for(value)
        else:
            meta = value.get("meta")
            declared = meta.get("profile") if isinstance(meta, dict) else None
            if isinstance(declared, list):
                profiles += [u for u in declared if isinstance(u, str) and u not in profiles]
        self._resource(value, loc, inner, profiles, set(), run)

    # ---- primitives

    def _primitive(
        self,
        node: Node,
        primitive: Primitive,
        value: Any,
        extra: Any,
        loc: str,
        scope: _Scope,
        run: _Run,
        json: bool,
    ) -> None:
        if json:
            if value is not None:
                problem = primitive.problem(value)
                if problem is not None:
                    run.add("error", problem[0], loc, problem[1])
            if extra is not None:
                self._element_extra(primitive.code, extra, loc, scope, run)
            if value is None and (not isinstance(extra, dict) or not extra.get("extension")):
                run.add("error", "invariant", loc, "ele-1: All FHIR elements must have a @value or children")
            if primitive.code == "xhtml" and isinstance(value, str):
                for rule, text in narrative.problems(value):
                    run.add("error", "invariant", loc, f"{rule}: {text}")
        if primitive.code in URI_TYPES and isinstance(value, str):
            scope.facts.uris.add(value)
            if primitive.code == "canonical" and value == "#" and scope.is_contained:
                scope.facts.hash_canonical.add(id(scope.resource))
        if isinstance(value, str) and node.max_length is not None and len(value) > node.max_length:
            run.add("error", "too-long", loc, f"length {len(value)} exceeds maxLength {node.max_length}")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if isinstance(node.min_value, int | float) and value < node.min_value:
                run.add("error", "value", loc, f"value {value} is below the minimum {node.min_value}")
            if isinstance(node.max_value, int | float) and value > node.max_value:
                run.add("error", "value", loc, f"value {value} is above the maximum {node.max_value}")

    def _element_extra(self, code: str, extra: Any, loc: str, scope: _Scope, run: _Run) -> None:
        """A primitive's `_element` object: the Element part of the primitive (id, extension)."""
        where = loc.rsplit(".", 1)
        shown = f"{where[0]}._{where[1]}" if len(where) == 2 else f"_{loc}"
        if not isinstance(extra, dict):
            run.add(
                "error", "structure", shown, f"expected a JSON object (the id and extensions), found {json_type(extra)}"
            )
            return
        plan = self.type_plan(code)
        if plan is None:
            return
        children = plan.root.cache.get("element part")
        if children is None:
            children = plan.root.cache["element part"] = {k: v for k, v in plan.root.children.items() if k != "value"}
        if not extra:
            run.add("error", "invariant", shown, "ele-1: All FHIR elements must have a @value or children")
        self._object(plan.root, children, extra, shown, scope, run, json=True)

    # ---- complex values

    def _complex(
        self,
        node: Node,
        type_ref: TypeRef | None,
        tcode: str | None,
        value: dict[str, Any],
        loc: str,
        scope: _Scope,
        run: _Run,
        json: bool,
    ) -> None:
        children = node.children
        owner = node
        if node.content_reference:
            target = self._content_reference(node)
            if target is not None:
                children, owner = target.children, target
        if not children and tcode:
            type_plan = self.type_plan(tcode)
            if type_plan is not None:
                children, owner = type_plan.root.children, type_plan.root
        self._object(owner, children, value, loc, scope, run, json)
        if type_ref is not None:
            if type_ref.code == "Reference":
                self._reference(type_ref, value, loc, scope, run)
            for url in type_ref.profiles:
                self._profiled(url, node, value, loc, tcode, scope, run)
        is_definition_root = "." not in node.path
        if tcode == "Extension" and not is_definition_root and (type_ref is None or not type_ref.profiles):
            extension_url = value.get("url")
            definition = self.definition(extension_url) if isinstance(extension_url, str) else None
            if definition is not None and definition.get("type") == "Extension":
                self._profiled(str(extension_url), node, value, loc, tcode, scope, run)

    def _profiled(
        self, url: str, node: Node, value: dict[str, Any], loc: str, tcode: str | None, scope: _Scope, run: _Run
    ) -> None:
        """A data type value against a profile of its type (an extension definition, ...), once per value."""
        plan = self.plan(url, node.id)
        marker = (id(value), plan.url)
        if plan.kind == "resource" or marker in run.checked:
            return
        run.checked.add(marker)
        self._value(plan.root, value, None, loc, tcode, scope, run, json=False)

    def _content_reference(self, node: Node) -> Node | None:
        reference = str(node.content_reference)
        path = reference.split("#", 1)[-1]
        root = path.split(".", 1)[0]
        plan = self.type_plan(root)
        return plan.by_path.get(path) if plan is not None else None

    def _object(
        self,
        owner: Node,
        children: dict[str, Node],
        obj: dict[str, Any],
        loc: str,
        scope: _Scope,
        run: _Run,
        json: bool,
        resource_root: bool = False,
    ) -> None:
        """The properties of a JSON object against the element definitions of its children."""
        index = self._index(children)
        present: dict[str, list[tuple[str, str | None]]] = {}  # child name -> (JSON name of the value, type)
        for key, value in obj.items():
            entry = index.keys.get(key)
            if entry is None:
                if key == "resourceType" and resource_root:
                    continue
                if json or index.choice_prefix(key):
                    run.add("error", "structure", f"{loc}.{key}", index.unknown(key))
                continue
            child, code, extra = entry
            if json:
                self._json_shape(child, code, key, value, obj, loc, run)
            name = key[1:] if extra else key
            keys = present.setdefault(child.name, [])
            if (name, code) not in keys:
                if child.choice and keys and json:
                    run.add(
                        "error",
                        "structure",
                        f"{loc}.{key}",
                        f"{child.name}[x] is given twice ({keys[0][0]} and {name}): it takes one type",
                    )
                keys.append((name, code))
        for name, keys in present.items():
            child = children[name]
            items: list[Item] = []
            for json_name, code in keys:
                items += _items(obj.get(json_name), obj.get("_" + json_name), f"{loc}.{json_name}", code)
            where = f"{loc}.{child.name}[x]" if child.choice else f"{loc}.{child.name}"
            self._check_element(child, items, where, scope, run, json)
        for child in index.required:
            if child.name not in present:
                where = f"{loc}.{child.name}[x]" if child.choice else f"{loc}.{child.name}"
                if child.min > 0:
                    run.add("error", "required", where, f"minimum required = {child.min}, found 0")
                for name, slice_node in child.slices.items():  # a slice with a minimum, of an absent element
                    if slice_node.min > 0:
                        run.add("error", "required", f"{where}:{name}", f"minimum required = {slice_node.min}, found 0")
        for child in index.must_support:
            if child.name not in present:
                where = f"{loc}.{child.name}[x]" if child.choice else f"{loc}.{child.name}"
                run.add("information", "informational", where, "must-support element absent")

    def _index(self, children: dict[str, Node]) -> _Index:
        found = self._indexes.get(id(children))
        if found is None or found.children is not children:
            found = self._indexes[id(children)] = _Index(children, self.primitives)
        return found

    def _json_shape(
        self, child: Node, code: str | None, key: str, value: Any, obj: dict[str, Any], loc: str, run: _Run
    ) -> None:
        """Nulls, empty arrays, arrays where none belong and none where one does (json.html)."""
        where = f"{loc}.{key}"
        if value is None:
            run.add("error", "structure", where, "null is not allowed (json.html: properties never have null values)")
        elif isinstance(value, list):
            if not child.is_array:
                run.add("error", "structure", where, "an array where the element does not repeat (max 1)")
            elif not value:
                run.add("error", "structure", where, "an empty array (json.html: arrays are never empty)")
            else:
                primitive = self._primitive_type(child, code)
                other_key = key[1:] if key.startswith("_") else "_" + key
                other = obj.get(other_key)
                for i, item in enumerate(value):
                    if isinstance(item, list):
                        run.add("error", "structure", f"{where}[{i}]", "an array inside an array")
                    elif item is None:
                        aligned = isinstance(other, list) and i < len(other) and other[i] is not None
                        if not (primitive and aligned):
                            run.add("error", "structure", f"{where}[{i}]", "null is not allowed here")
                if key.startswith("_") and isinstance(other, list) and len(other) != len(value):
                    run.add(
                        "error",
                        "structure",
                        where,
                        f"{key} has {len(value)} items, {other_key} has {len(other)}: they must align",
                    )
        elif child.is_array:
            run.add("error", "structure", where, "the element repeats: a JSON array is required")

    def _primitive_type(self, child: Node, code: str | None) -> bool:
        type_ref = child.type_of(code)
        return type_ref is not None and type_ref.code in self.primitives

    # ---- references

    def _reference(self, type_ref: TypeRef, value: dict[str, Any], loc: str, scope: _Scope, run: _Run) -> None:
        reference = value.get("reference")
        if not isinstance(reference, str):
            return
        allowed = {self.target_type(u) for u in type_ref.targets} if type_ref.targets else {"Resource"}
        if reference.startswith("#"):
            if reference == "#":
                return  # the container itself
            target = scope.contained.get(reference[1:]) if not scope.is_contained else None
            if target is None and scope.is_contained:
                target = _contained_ids(scope.root).get(reference[1:])
            if target is None:
                return  # ref-1 (a base invariant of Reference) reports it
            rtype = str(target.get("resourceType"))
            if not allowed & {rtype, "Resource", "DomainResource"}:
                run.add("error", "structure", f"{loc}.reference", f"refers to a {rtype}; allowed: {sorted(allowed)}")
                return
            for url in type_ref.targets:
                if not url.startswith(BASE_PREFIX) and self.target_type(url) == rtype:
                    contained_at = self._contained_location(scope, target)
                    inner = _Scope(target, scope.root, {}, True, scope.facts)
                    self._resource(target, contained_at, inner, [url], set(), run)
            return
        match = _LITERAL.match(reference)
        if match and not allowed & {match.group(1), "Resource", "DomainResource"}:
            run.add(
                "error", "structure", f"{loc}.reference", f"refers to a {match.group(1)}; allowed: {sorted(allowed)}"
            )

    @staticmethod
    def _contained_location(scope: _Scope, target: dict[str, Any]) -> str:
        root = scope.root
        for i, item in enumerate(root.get("contained") or []):
            if item is target:
                return f"{root.get('resourceType')}.contained[{i}]"
        return f"{root.get('resourceType')}.contained"

    # ---- fixed, pattern, binding, invariants

    def _fixed_pattern(self, node: Node, value: Any, loc: str, run: _Run) -> None:
        if node.has_fixed and value != node.fixed:
            run.add("error", "value", loc, f"value {_show(value)} does not equal the fixed value {_show(node.fixed)}")
        if node.has_pattern and not _contains(value, node.pattern):
            run.add("error", "value", loc, f"value does not match the pattern {_show(node.pattern)}")

    def _binding(self, node: Node, tcode: str | None, value: Any, loc: str, run: _Run) -> None:
        assert node.binding_set is not None
        strength = node.binding_strength
        severity = "error" if strength == "required" else "warning"
        codings: list[tuple[str | None, str]]
        if isinstance(value, str):
            if node.base_path == "ElementDefinition.type.code" and value.startswith(SYSTEM_PREFIX):
                return  # R4's own snapshots type ids and primitive values so (e.g. Element.id): conformant
            codings = [(None, value)]
            shown = value
        elif isinstance(value, dict) and tcode == "CodeableConcept":
            coding = value.get("coding") or []
            if not isinstance(coding, list):
                return  # not an array: the walk has said so (json.html); no code to check
            raw = [c for c in coding if isinstance(c, dict) and isinstance(c.get("code"), str)]
            codings = [(c.get("system") if isinstance(c.get("system"), str) else "", c["code"]) for c in raw]
            shown = ", ".join(f"{s}#{c}" for s, c in codings) or "no coding"
            if not codings:
                if strength == "required":
                    run.add(
                        severity,
                        "code-invalid",
                        loc,
                        f"no code, and a code from the required ValueSet {node.binding_set} is needed",
                    )
                return
        elif isinstance(value, dict) and tcode in (
            "Coding",
            "Quantity",
            "Age",
            "Duration",
            "Count",
            "Distance",
            "Money",
            "MoneyQuantity",
            "SimpleQuantity",
        ):
            code = value.get("code")
            if not isinstance(code, str):
                return
            system = value.get("system") if isinstance(value.get("system"), str) else ""
            codings = [(system, code)]
            shown = f"{system}#{code}"
        else:
            return
        expansion = self.terminology.expand(node.binding_set, node.id)
        if expansion.codes is None:
            run.add(
                "information",
                "not-supported",
                loc,
                f"{shown}: the {strength} ValueSet {node.binding_set} cannot be expanded offline ({expansion.reason})",
            )
            return
        if not any(_in(expansion, system, code) for system, code in codings):
            run.add(severity, "code-invalid", loc, f"{shown} is not in the {strength} ValueSet {node.binding_set}")

    def _invariants_on(self, node: Node, tcode: str | None, value: Any, loc: str, scope: _Scope, run: _Run) -> None:
        if value is None:
            return
        for invariant in self.invariants(node, tcode):
            if invariant.key == "dom-6" and scope.is_contained:
                continue  # DomainResource.text: "Contained resources do not have narrative"
            if invariant.key in NARRATIVE_RULES and invariant.expression.strip() == "htmlChecks()":
                continue  # the xhtml value's own check reports txt-1 and txt-2 (narrative.py)
            try:
                ok = invariant.holds(value, scope.resource, scope.root)
            except FhirPathError as exc:
                run.add(
                    "warning",
                    "not-supported",
                    loc,
                    f"constraint {invariant.key} could not be evaluated ({invariant.expression!r}: {exc})",
                    invariant.key,
                )
                continue
            if not ok:
                run.add(
                    invariant.severity, "invariant", loc, f"{invariant.key}: {invariant.human or invariant.expression}"
                )

    # ---- slicing

    def _check_slices(self, node: Node, items: list[Item], where: str, scope: _Scope, run: _Run) -> None:
        matched: dict[str, list[Item]] = {name: [] for name in node.slices}
        last_slice = -1
        names = list(node.slices)
        for item in items:
            name = self.slice_of(node, item[0], item[3], scope)
            if name is not None:
                matched[name].append(item)
                position = names.index(name)
                if node.slicing_ordered and position < last_slice:
                    run.add("error", "structure", item[2], f"out of order: slice {name} comes before the slices above")
                last_slice = max(last_slice, position)
            elif node.slicing_rules == "closed":
                run.add("error", "structure", item[2], f"matches no slice of {where} and the slicing is closed")
            elif (
                node.slicing_rules == "openAtEnd"
                and last_slice >= 0
                and any(self.slice_of(node, later[0], later[3], scope) for later in items[items.index(item) + 1 :])
            ):
                run.add("error", "structure", item[2], f"unsliced item before a slice of {where} (openAtEnd)")
        for name, slice_node in node.slices.items():
            self._check_element(slice_node, matched[name], f"{where}:{name}", scope, run, json=False)

    def slice_of(self, node: Node, value: Any, code: str | None, scope: _Scope | None = None) -> str | None:
        """The name of the first slice of `node` that `value` matches, or None."""
        for name, slice_node in node.slices.items():
            if all(
                self._discriminates(node, slice_node, kind, path, value, code, scope)
                for kind, path in node.discriminators
            ):
                return name
        return None

    def _discriminates(
        self, node: Node, slice_node: Node, kind: str, path: str, value: Any, code: str | None, scope: _Scope | None
    ) -> bool:
        key = "discriminator:" + path
        if key not in slice_node.cache:
            slice_node.cache[key] = self._descend(slice_node, path)
        target = slice_node.cache[key]
        if target is None:
            return False
        found = self._values_at(value, path, scope)
        if kind in ("value", "pattern"):
            if target.has_fixed:
                return (
                    any(v == target.fixed for v in found)
                    if kind == "value"
                    else any(_contains(v, target.fixed) for v in found)
                )
            if target.has_pattern:
                return any(_contains(v, target.pattern) for v in found)
            if target.binding_set and target.binding_strength == "required" and kind == "value":
                expansion = self.terminology.expand(target.binding_set, target.id)
                return expansion.codes is not None and any(
                    isinstance(v, str) and _in(expansion, None, v) for v in found
                )
            return False
        if kind == "exists":
            return bool(found) if target.min >= 1 else not found if target.max == 0 else False
        if kind == "type":
            allowed = {t.code for t in target.types}
            for v in found:
                actual = v.get("resourceType") if isinstance(v, dict) and "resourceType" in v else None
                if actual is None and path in ("", "$this"):
                    actual = code
                if actual is None:
                    actual = self._json_type_code(value, path)
                if actual in allowed:
                    return True
            return False
        if kind == "profile":
            urls = [u for t in target.types for u in (*t.profiles, *(t.targets if "resolve()" in path else ()))]
            return any(self._conforms(v, url) for v in found for url in urls)
        return False

    def _json_type_code(self, value: Any, path: str) -> str | None:
        """For a type discriminator on a choice (`value[x]`): the type its JSON name gives."""
        if not isinstance(value, dict) or path in ("", "$this"):
            return None
        last = path.split(".")[-1]
        for key in value:
            if key.startswith(last) and len(key) > len(last) and key[len(last)].isupper():
                suffix = key[len(last) :]
                return suffix[:1].lower() + suffix[1:] if suffix[:1].lower() + suffix[1:] in self.primitives else suffix
        return None

    def _conforms(self, value: Any, url: str) -> bool:
        if not isinstance(value, dict):
            return False
        plan = self.plan(url)
        run = _Run(value)
        if "resourceType" in value:
            scope = _Scope(value, value, _contained_ids(value), False)
            self._resource(value, str(value.get("resourceType")), scope, [url], set(), run)
        else:
            scope = _Scope({}, {}, {}, False)
            self._value(plan.root, value, None, plan.type, plan.type, scope, run, json=True)
        return not any(i.severity == "error" for i in run.issues)

    def _values_at(self, value: Any, path: str, scope: _Scope | None) -> list[Any]:
        current = [value]
        if path in ("", "$this"):
            return current
        for step in _steps(path):
            found: list[Any] = []
            for item in current:
                if step == "$this":
                    found.append(item)
                elif step == "resolve()":
                    reference = item.get("reference") if isinstance(item, dict) else None
                    if isinstance(reference, str) and reference.startswith("#") and scope is not None:
                        target = scope.contained.get(reference[1:]) or _contained_ids(scope.root).get(reference[1:])
                        if target is not None:
                            found.append(target)
                elif step.startswith("extension("):
                    url = fhirpath_string(step[len("extension(") + 1 : -2])
                    extensions = item.get("extension") if isinstance(item, dict) else None
                    if isinstance(extensions, list):  # anything else the walk reports (json.html#repeat)
                        found += [e for e in extensions if isinstance(e, dict) and e.get("url") == url]
                elif step.startswith("ofType("):
                    wanted = step[len("ofType(") : -1]
                    found += [item] if self._is_type(item, wanted) else []
                elif isinstance(item, dict):
                    if step in item:
                        got = item[step]
                        found.extend(got if isinstance(got, list) else [got])
                    else:  # a choice element by its name
                        for key, got in item.items():
                            if key.startswith(step) and len(key) > len(step) and key[len(step)].isupper():
                                found.extend(got if isinstance(got, list) else [got])
            current = found
        return current

    def _is_type(self, item: Any, wanted: str) -> bool:
        if isinstance(item, dict):
            return item.get("resourceType") == wanted or wanted not in self.primitives
        primitive = self.primitives.get(wanted)
        return primitive is not None and primitive.problem(item) is None

    def _descend(self, node: Node, path: str) -> Node | None:
        """The definition at a discriminator path below a slice, following types and type profiles."""
        current: Node | None = node
        for step in _steps(path):
            if current is None:
                return None
            if step in ("$this", "resolve()") or step.startswith(("ofType(", "extension(")):
                if step.startswith("extension("):
                    url = fhirpath_string(step[len("extension(") + 1 : -2])
                    current = self.plan(url).root if self.definition(url) else None
                continue
            nxt = current.children.get(step)
            if nxt is None:
                for t in current.types:
                    for url in t.profiles:
                        nxt = nxt or self.plan(url, current.id).root.children.get(step)
                    if nxt is None and not t.profiles:
                        type_plan = self.type_plan(t.code)
                        nxt = nxt or (type_plan.root.children.get(step) if type_plan else None)
            current = nxt
        return current


@lru_cache(maxsize=512)
def _steps(path: str) -> tuple[str, ...]:
    """A discriminator path split into steps (dots inside function arguments kept)."""
    steps, depth, quoted, current = [], 0, False, ""
    for char in path:
        if char == "'" and depth:
            quoted = not quoted
        if char == "(" and not quoted:
            depth += 1
        elif char == ")" and not quoted:
            depth -= 1
        if char == "." and not depth and not quoted:
            steps.append(current)
            current = ""
        else:
            current += char
    if current:
        steps.append(current)
    return tuple(steps)


def _reference_values(value: Any, out: set[str]) -> set[str]:
    """Every string under a JSON name `reference`, at any depth (FHIRPath `descendants().reference`)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                out.add(inner)
            else:
                _reference_values(inner, out)
    elif isinstance(value, list):
        for inner in value:
            _reference_values(inner, out)
    return out


def _dom3_holds(resource: dict[str, Any], facts: _Facts) -> bool:
    """dom-3, as R4's expression says it, on the facts the walk gathered.

    `contained.where((('#'+id in (%resource.descendants().reference | %resource.descendants().as(canonical)
    | %resource.descendants().as(uri) | %resource.descendants().as(url))) or
    descendants().where(reference = '#').exists() or descendants().where(as(canonical) = '#').exists()
    ...).not()).empty()`: every contained resource with an id is named as `#id` by some reference or
    uri-typed value anywhere in the resource, or itself holds a reference or canonical `#` (one without
    an id makes the criterion empty, and so is never reported).
    """
    contained = resource.get("contained")
    if not isinstance(contained, list) or not contained:
        return True
    named = _reference_values(resource, set()) | facts.uris
    for item in contained:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        if "#" + item["id"] in named or id(item) in facts.hash_canonical:
            continue
        if "#" in _reference_values(item, set()):
            continue
        return False
    return True


def _in(expansion: Expansion, system: str | None, code: str) -> bool:
    return expansion.contains(system, code)


def _contains(value: Any, pattern: Any) -> bool:
    """FHIR pattern[x] semantics: every property of the pattern is present in the value."""
    if isinstance(pattern, dict):
        return isinstance(value, dict) and all(_contains(value.get(k), v) for k, v in pattern.items())
    if isinstance(pattern, list):
        if not isinstance(value, list):
            return False
        return all(any(_contains(v, p) for v in value) for p in pattern)
    return (bool(value == pattern) and type(value) is type(pattern)) or (
        isinstance(value, int | float)
        and isinstance(pattern, int | float)
        and not isinstance(value, bool)
        and not isinstance(pattern, bool)
        and value == pattern
    )


def _items(value: Any, extra: Any, loc: str, code: str | None) -> list[Item]:
    """The values of one JSON property (with their `_element` parts), one per array item."""
    if isinstance(value, list) or isinstance(extra, list):
        values = value if isinstance(value, list) else []
        extras = extra if isinstance(extra, list) else []
        count = max(len(values), len(extras))
        out: list[Item] = []
        for i in range(count):
            v = values[i] if i < len(values) else None
            e = extras[i] if i < len(extras) else None
            if v is None and e is None:
                continue  # a null filler (reported by the JSON check where it is not aligned)
            out.append((v, e, f"{loc}[{i}]", code))
        return out
    if value is None and extra is None:
        return []
    return [(value, extra, loc, code)]


def _show(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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


__all__ = ["Invariant", "Issue", "Validator", "errors", "field", "validate", "validator_for"]
