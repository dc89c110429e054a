"""Hypothesis strategies from an XSD: valid documents of a global element, and documents that break one rule.

    elements(schema, qname, *, registry=None, overrides=None, settings=DEFAULT) -> SearchStrategy[lxml element]
    documents(schema, qname, ...) -> SearchStrategy[bytes]        the same, serialised (UTF-8, XML declaration)
    violations(schema, qname, *, rules=None, ...) -> SearchStrategy[Violation]
        a document breaking exactly one rule, labelled `path: rule` (Violation.rule, .path, .detail, .element)
    rules(schema, qname, ...) -> tuple[str, ...]    the rules violations() breaks for that element, to
        parametrise a conformance test per rule (violations(..., rules={rule}))
    registry_overrides(registry, patients=None)    identity slots bound to registered test patients
    named("personnummer"), typed("common:PersonnummerType"), identity_slot    predicates on a Slot
    Settings(unbounded=3, wildcards="absent", nil=True, alphabet=None, years=(1, 9999))

`schema` is an xmlschema XMLSchema (load it once: strategies are cached per schema object);
`qname` is `{namespace}local` or a local name of the schema's target namespace. `overrides` maps a
predicate on a Slot (an element's text or an attribute's value: its name, its type and the named
types it derives from, its path) to a strategy of lexical values; the first predicate that holds
decides, before the registry's identity slots, before the schema.

Everything is composed from hypothesis strategies (builds, tuples, lists, one_of, sampled_from,
from_regex), so a failing example shrinks: optional elements and attributes go absent, repetitions
to their minimum, choices to their first branch, numbers towards zero within their bounds, strings
to the shortest the pattern allows. Compiled strategies are cached per schema, element, settings,
overrides and registry.

Supported (XSD 1.0, and XSD 1.1 where the construct is the same):
- elements: global and local, element references, qualified/unqualified per elementFormDefault and
  `form`; minOccurs..maxOccurs of elements, sequences, choices and groups (`unbounded` capped by
  Settings.unbounded); sequences in order; every branch of a choice; `all` groups in any order;
  named group references; substitution groups (the head where not abstract, and every member);
  nillable (sometimes xsi:nil="true", Settings.nil); fixed values; recursive types;
- attributes: required always, optional present or absent, fixed values, attribute groups;
  prohibited never; simple content with attributes; empty content; mixed content (elements only);
- wildcards (xs:any): absent beyond their minOccurs by default; Settings.wildcards="foreign" fills
  them up to their maxOccurs; lax/skip take an element of a namespace the wildcard admits and the
  schema does not declare, strict takes a declared global element it admits;
- simple types: restrictions over any chain of steps; lists; unions; string, normalizedString,
  token, language, Name, NCName, NMTOKEN, anyURI, QName (unprefixed), boolean, decimal, integer and
  every built-in derived from it, float, double, date, dateTime, time (with or without a time zone,
  whichever the patterns admit), gYear, gYearMonth, gMonth, gMonthDay, gDay, duration, hexBinary,
  base64Binary; facets length, minLength, maxLength, pattern (character class subtraction, \\i \\c
  \\p{..}; several patterns: any of one step, every step), enumeration, whiteSpace, min/max
  inclusive/exclusive, totalDigits, fractionDigits (rxverify.legacy.xsdvalues, .xsdregex).
- identities: with a registry, every slot of type PersonnummerType or named personnummer takes a
  registered test patient; with or without one, every value and every whole document is read the
  way the guard reads a request (rxverify.safety.decode, find_identities) and rejected if it holds
  an identity outside the registry (without a registry: any identity at all).

Violations (RULES): structure -- minOccurs (occurrences of a required element below its minimum),
maxOccurs (copies beyond its maximum), order (two adjacent elements of a sequence swapped),
unexpected-element (an undeclared element added), namespace (an element's namespace version changed,
…:6 -> …:7), required-attribute (removed), unexpected-attribute (added), nillable (xsi:nil where not
nillable); values -- each facet by its name (length, minLength, maxLength, pattern, enumeration,
min/max inclusive/exclusive, totalDigits, fractionDigits) and datatype (outside the lexical space or
the range of the built-in type: 2021-02-30, 1.5 for an int). A value is used only if xmlschema
reports exactly that rule for it and no other; a structure change only where the content model makes
it invalid for sure (the element's name once in the model, no wildcard that takes it, no repeating or
choice group around it where that matters). The rest of the document stays valid.

Not supported (CannotGenerate names the element or type, so nothing is silently wrong):
identity constraints (xs:key, xs:unique, xs:keyref); XSD 1.1 assertions on complex types
(xs:assert), type alternatives and open content (simple-type assertion and explicitTimezone facets
are met by filtering on xmlschema's check of the type);
abstract types (xsi:type is never generated); xs:ID/IDREF(S)/ENTITY/ENTITIES/NOTATION; attribute
wildcards are left empty; mixed content gets no character data; years outside 0001..9999 and
lexical variants (leading +, leading zeros, surrounding blanks, 1/0 for booleans) are never
generated: every value is in its canonical form. Violations break facets of atomic and list types,
not of unions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache, partial
from typing import Any

from hypothesis import strategies as st
from lxml import etree
from xmlschema import XMLSchemaBase
from xmlschema.validators import (
    XsdAnyElement,
    XsdAttribute,
    XsdComplexType,
    XsdElement,
    XsdGroup,
    XsdSimpleType,
)

from rxverify.legacy.xsdregex import keep
from rxverify.legacy.xsdvalues import CannotGenerate, Values, local
from rxverify.safety import decode
from rxverify.safety.identity import find_identities, might_hold_identity
from rxverify.safety.registry import Registry, TestPatient
from rxverify.strategies import contract_patients, person_ids

XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSI_NIL = f"{{{XSI}}}nil"
FOREIGN_NAMESPACE = "urn:rxverify:xsdgen:foreign"  # what an xs:any lax/skip receives: declared by no schema here
FOREIGN_LOCAL = "extra"
UNEXPECTED_LOCAL = "unexpected"  # the name an inserted element or attribute has that no declaration admits
XML_MEDIA_TYPE = {"Content-Type": "text/xml; charset=utf-8"}
STRUCTURE_RULES = ("minOccurs", "maxOccurs", "order", "unexpected-element", "namespace", "required-attribute",
                   "unexpected-attribute", "nillable")
FACET_RULES = ("length", "minLength", "maxLength", "pattern", "enumeration", "minInclusive", "maxInclusive",
               "minExclusive", "maxExclusive", "totalDigits", "fractionDigits", "datatype")
RULES = STRUCTURE_RULES + FACET_RULES


@dataclass(frozen=True)
class Settings:
    """How far generation goes where the schema leaves it open."""

    unbounded: int = 3  # maxOccurs="unbounded" (elements, groups, wildcards) gives at most this many (or minOccurs)
    wildcards: str = "absent"  # absent: xs:any only as often as minOccurs; foreign: up to maxOccurs
    nil: bool = True  # nillable elements are sometimes xsi:nil="true"
    alphabet: str | None = None  # None: every character XML 1.0 allows; else exactly these characters
    years: tuple[int, int] = (1, 9999)  # dates and years are drawn from this window (and the type's bounds)


DEFAULT = Settings()


@dataclass(frozen=True)
class Slot:
    """A place a generated value goes: an element's text or an attribute's value."""

    name: str  # the element's or attribute's expanded name, {namespace}local
    type_names: frozenset[str]  # its declared type and the named types it derives from: {ns}Name and prefix:Name
    path: tuple[str, ...]  # local names from the document element down; an attribute's last step is @name
    attribute: bool

    @property
    def local_name(self) -> str:
        """The element's or attribute's local name."""
        return local(self.name)

    def has_type(self, name: str) -> bool:
        """Whether the slot's type is, or derives from, `name` ({ns}Name, prefix:Name or a bare Name)."""
        if name in self.type_names:
            return True
        bare = ":" not in name and "}" not in name
        return bare and any(t.rpartition("}")[2].rpartition(":")[2] == name for t in self.type_names)


Predicate = Callable[[Slot], bool]
Overrides = Mapping[Predicate, st.SearchStrategy[str]]


def named(local_name: str) -> Predicate:
    """A predicate: the slot is an element or attribute with this local name."""

    def matches(slot: Slot) -> bool:
        return slot.local_name == local_name

    return matches


def typed(type_name: str) -> Predicate:
    """A predicate: the slot's type is, or derives from, this type ({ns}Name, prefix:Name or Name)."""

    def matches(slot: Slot) -> bool:
        return slot.has_type(type_name)

    return matches


IDENTITY_TYPE = "PersonnummerType"  # the common schema's identity type (contracts/riv/core_components)
IDENTITY_ELEMENT = "personnummer"  # services.toml [names]: personId -> personnummer


def identity_slot(slot: Slot) -> bool:
    """Whether a slot carries a personal identity number: typed PersonnummerType or named personnummer."""
    return slot.has_type(IDENTITY_TYPE) or slot.local_name == IDENTITY_ELEMENT


@lru_cache(maxsize=64)
def _registry_overrides(registry: Registry, patients: tuple[TestPatient, ...]) -> Mapping[Predicate,
                                                                                           st.SearchStrategy[str]]:
    return {identity_slot: person_ids(registry.subset(patients))}


def registry_overrides(registry: Registry, patients: Sequence[TestPatient] | None = None) -> Overrides:
    """Overrides binding every identity slot to registered test patients (default: the contract runs' share)."""
    chosen = tuple(contract_patients(registry) if patients is None else patients)
    if not chosen:
        raise CannotGenerate(f"test-patient registry {registry.path}: no patients to draw identities from")
    return _registry_overrides(registry, chosen)


@dataclass(frozen=True, eq=False)
class _Node:
    """One element of a generated document, before it becomes lxml."""

    particle: Any  # the model particle it fills (XsdElement or XsdAnyElement), None where nothing admits it
    decl: Any  # the declaration it follows (a substitute's own), None for a foreign or unexpected element
    name: str
    attributes: tuple[tuple[str, str], ...]
    text: str | None
    children: tuple[_Node, ...]
    nil: bool = False


def _foreign(wildcard: Any, name: str, text: str) -> _Node:
    return _Node(wildcard, None, name, (), text or None, ())


def _without_attribute(name: str, node: _Node) -> _Node:
    return replace(node, attributes=tuple(a for a in node.attributes if a[0] != name))


def _flat(parts: Any) -> tuple[_Node, ...]:
    """The nodes of nested tuples and lists of nodes (sequences, occurrences), in order."""
    if isinstance(parts, _Node):
        return (parts,)
    return tuple(node for part in parts for node in _flat(part))


def _leaf(particle: Any, decl: Any, text: str) -> _Node:
    return _Node(particle, decl, decl.name, (), text, ())


def _present(names: tuple[str, ...], values: tuple[str | None, ...]) -> tuple[tuple[str, str], ...]:
    return tuple((n, v) for n, v in zip(names, values, strict=True) if v is not None)


def _branch(particle: Any, decl: Any, names: tuple[str, ...], content: tuple[Any, str | None, Any]) -> _Node:
    values, text, children = content
    return _Node(particle, decl, decl.name, _present(names, values), text, _flat(children))


def _nil(particle: Any, decl: Any, names: tuple[str, ...], values: tuple[str | None, ...]) -> _Node:
    return _Node(particle, decl, decl.name, _present(names, values), None, (), nil=True)


def _build(node: _Node, nsmap: Mapping[str, str]) -> Any:
    root = etree.Element(node.name, nsmap={p: u for p, u in nsmap.items()})
    _fill(root, node)
    return root


def _fill(element: Any, node: _Node) -> None:
    for name, value in node.attributes:
        element.set(name, value)
    if node.nil:
        element.set(XSI_NIL, "true")
    if node.text is not None:
        element.text = node.text
    for child in node.children:
        _fill(etree.SubElement(element, child.name), child)


def _serialise(element: Any) -> bytes:
    return bytes(etree.tostring(element, xml_declaration=True, encoding="UTF-8"))


def _namespace(name: str) -> str:
    return name[1:].partition("}")[0] if name.startswith("{") else ""


def _other_namespace(namespace: str) -> str:
    """A namespace like `namespace` with its version changed (…:6 -> …:7), or with a suffix."""
    head, _, tail = namespace.rpartition(":")
    if head and tail.isdigit():
        return f"{head}:{int(tail) + 1}"
    return namespace + ":changed" if namespace else FOREIGN_NAMESPACE


@dataclass(frozen=True)
class Violation:
    """A document that breaks one rule of the schema, and which."""

    rule: str  # one of RULES: a facet's name, datatype, or a structure rule (minOccurs, order, ...)
    path: str  # where: /Root/child[2]/leaf (local names, [n] among same-named siblings), /Root/leaf/@attr
    detail: str  # what was done, in words
    element: Any  # the lxml document element

    @property
    def label(self) -> str:
        """`path: rule`, naming the element and the rule broken."""
        return f"{self.path}: {self.rule}"

    def document(self) -> bytes:
        """The document serialised as it is sent (UTF-8, XML declaration)."""
        return _serialise(self.element)


@dataclass
class _Model:
    """What a complex type's content model admits, for choosing mutations that surely make it invalid."""

    names: Counter[str]
    wildcards: list[Any]
    required: set[int]  # element particles every valid instance holds minOccurs of
    bounded: set[int]  # element particles no valid instance holds more than maxOccurs of
    order: dict[int, tuple[int, int]]  # particle -> (its sequence, position) where the order is fixed

    def admits(self, name: str) -> bool:
        """Whether some particle of the model could take an element of this name."""
        return name in self.names or any(w.is_matching(name) for w in self.wildcards)

    def unique(self, particle: Any) -> bool:
        """Whether the particle's name occurs once in the model and no wildcard takes it."""
        return self.names[particle.name] == 1 and not any(w.is_matching(particle.name) for w in self.wildcards)


def _model(xsd_type: Any) -> _Model:
    model = _Model(Counter(), [], set(), set(), {})
    content = getattr(xsd_type, "content", None)
    if isinstance(xsd_type, XsdComplexType) and isinstance(content, XsdGroup):
        particles: dict[int, Any] = {}
        _walk_model(content, model, particles, once=True, required=True)
        model.required = {p for p in model.required if model.unique(particles[p])}
        model.bounded = {p for p in model.bounded if model.unique(particles[p])}
        model.order = {p: at for p, at in model.order.items() if model.unique(particles[p])}
    return model


def _walk_model(group: Any, model: _Model, particles: dict[int, Any], once: bool, required: bool) -> None:
    once = once and group.max_occurs == 1
    required = required and once and group.min_occurs >= 1 and group.model != "choice"
    for position, particle in enumerate(group):
        if isinstance(particle, XsdGroup):
            _walk_model(particle, model, particles, once, required)
        elif isinstance(particle, XsdAnyElement):
            model.wildcards.append(particle)
        elif isinstance(particle, XsdElement):
            substitutes = list(particle.iter_substitutes())
            model.names[particle.name] += 1
            for substitute in substitutes:
                model.names[substitute.name] += 1
            if substitutes:
                continue
            particles[id(particle)] = particle
            if required and particle.min_occurs >= 1:
                model.required.add(id(particle))
            if once and particle.max_occurs is not None:
                model.bounded.add(id(particle))
            if once and group.model == "sequence":
                model.order[id(particle)] = (id(group), position)


@dataclass(frozen=True)
class _Site:
    """One place a document can be made to break one rule."""

    rule: str
    path: str
    detail: str
    make: Callable[[_Node], st.SearchStrategy[_Node]]  # the document's root -> the broken document's root


def _replace_at(root: _Node, at: tuple[int, ...], change: Callable[[_Node], _Node]) -> _Node:
    if not at:
        return change(root)
    children = list(root.children)
    children[at[0]] = _replace_at(children[at[0]], at[1:], change)
    return replace(root, children=tuple(children))


def _simple_content(decl: Any) -> Any:
    """The simple type of an element's text, or None when it has element content."""
    xsd_type = decl.type
    if isinstance(xsd_type, XsdSimpleType):
        return xsd_type
    if isinstance(xsd_type, XsdComplexType) and xsd_type.has_simple_content():
        return xsd_type.content
    return None


class _Compiler:
    """Strategies for the elements of one schema under one set of settings, overrides and registry."""

    def __init__(self, schema: XMLSchemaBase, settings: Settings, overrides: tuple[tuple[Predicate, Any], ...],
                 registered: frozenset[str]) -> None:
        self.schema = schema
        self.settings = settings
        self.overrides = overrides
        self.registered = registered
        self.values = Values(settings.alphabet, settings.years)
        self.trees: dict[str, tuple[st.SearchStrategy[_Node], dict[str, str]]] = {}
        self.roots: dict[tuple[Any, ...], st.SearchStrategy[Any]] = {}  # the public strategies, by kind and element
        self._complete: dict[int, st.SearchStrategy[Any]] = {}
        self._compiling: set[int] = set()
        self._models: dict[int, _Model] = {}
        self._prefixes = self._known_prefixes()
        self._all_prefixes = tuple((p, u) for s in schema.maps.iter_schemas() for p, u in s.namespaces.items() if p)
        self._namespaces: set[str] = set()  # those the element being compiled may use

    # ---- names and identities ----

    def _known_prefixes(self) -> dict[str, str]:
        """Namespace -> the prefix the schemas use for it (first seen), for readable documents."""
        prefixes: dict[str, str] = {XSI: "xsi", FOREIGN_NAMESPACE: "ext"}
        for schema in self.schema.maps.iter_schemas():
            for prefix, uri in schema.namespaces.items():
                if prefix and uri and uri not in prefixes and prefix not in ("xml",):
                    prefixes[uri] = prefix
        return prefixes

    def nsmap(self, namespaces: Collection[str]) -> dict[str, str]:
        """Prefix -> namespace for the namespaces a document may use (prefixes unique, as the schemas name them)."""
        nsmap: dict[str, str] = {}
        for index, uri in enumerate(sorted(n for n in namespaces if n)):
            prefix = self._prefixes.get(uri) or f"ns{index}"
            if prefix in nsmap or prefix in ("xml", "xmlns"):
                prefix = f"{prefix}{index}"
            nsmap[prefix] = uri
        return nsmap

    def safe_text(self, text: str) -> bool:
        """Whether a value holds no identity outside the registry, in any written form."""
        return not might_hold_identity(text) or all(f.twelve in self.registered for f in find_identities(text))

    def safe_document(self, body: bytes) -> bool:
        """Whether the document, read as the guard reads a request body, holds no identity outside the registry."""
        try:
            places = decode.body_places(body, XML_MEDIA_TYPE)
        except decode.Unreadable:
            return False
        return all(self.safe_text(text) for _, text in places)

    # ---- slots and values ----

    def _type_names(self, xsd_type: Any) -> frozenset[str]:
        names: set[str] = set()
        current = xsd_type
        while current is not None:
            if current.name:
                names.add(current.name)
                namespace, local_name = _namespace(current.name), local(current.name)
                names.update(f"{p}:{local_name}" for p, u in self._all_prefixes if u == namespace)
            base = getattr(current, "base_type", None)
            current = base if base is not current else None
        if isinstance(xsd_type, XsdComplexType) and xsd_type.has_simple_content():
            names |= self._type_names(xsd_type.content)
        return frozenset(names)

    def _override(self, slot: Slot) -> st.SearchStrategy[str] | None:
        for predicate, strategy in self.overrides:
            if predicate(slot):
                return strategy
        return None

    def _text(self, slot: Slot, xsd_type: Any, fixed: str | None) -> st.SearchStrategy[str]:
        override = self._override(slot)
        if override is not None:
            values = override
        elif fixed is not None:
            values = st.just(fixed)
        else:
            values = self.values.valid(xsd_type)
        return keep(values, self.safe_text)

    # ---- elements ----

    def document_tree(self, qname: str) -> tuple[st.SearchStrategy[_Node], dict[str, str]]:
        """The strategy of a global element's documents, and the prefixes for the namespaces they may use."""
        if qname not in self.trees:
            decl = self.global_element(qname)
            self._namespaces = set()
            tree = self._element_options(decl, ())
            self.trees[qname] = (tree, self.nsmap(self._namespaces))
        return self.trees[qname]

    def global_element(self, qname: str) -> Any:
        """The global element declaration named `qname` ({ns}local, or a local name of the schema's namespace)."""
        elements = self.schema.maps.elements if qname.startswith("{") else self.schema.elements
        decl = elements.get(qname)
        if decl is None:
            known = ", ".join(sorted(local(n) for n in self.schema.elements)) or "none"
            raise CannotGenerate(f"schema {self.schema.url or self.schema.name}: no global element {qname!r} "
                                 f"(global elements: {known})")
        return decl

    def _element_options(self, particle: Any, path: tuple[str, ...]) -> st.SearchStrategy[_Node]:
        """The element a particle takes: itself where not abstract, or any member of its substitution group."""
        options = [] if particle.abstract else [self._element(particle, particle, path)]
        options += [self._element(particle, s, path) for s in particle.iter_substitutes()]
        if not options:
            raise CannotGenerate(f"element {particle.name}: abstract, and no substitution group member")
        return st.one_of(options) if len(options) > 1 else options[0]

    def _element(self, particle: Any, decl: Any, path: tuple[str, ...]) -> st.SearchStrategy[_Node]:
        where = "/".join((*path, local(decl.name)))
        if decl.identities:
            raise CannotGenerate(f"element {where}: identity constraints (xs:key, xs:unique, xs:keyref) are not "
                                 "supported")
        if decl.alternatives:
            raise CannotGenerate(f"element {where}: XSD 1.1 type alternatives are not supported")
        xsd_type = decl.type
        if getattr(xsd_type, "abstract", False):
            raise CannotGenerate(f"element {where}: abstract type {xsd_type.name} (xsi:type is not generated)")
        if getattr(xsd_type, "assertions", ()):
            raise CannotGenerate(f"element {where}: XSD 1.1 assertions (xs:assert) are not supported")
        here = (*path, local(decl.name))
        self._namespaces.add(_namespace(decl.name))
        names, values = self._attributes(xsd_type, here)
        key = id(xsd_type)
        if isinstance(xsd_type, XsdSimpleType):
            slot = Slot(decl.name, self._type_names(xsd_type), here, False)
            nodes = self._text(slot, xsd_type, decl.fixed).map(partial(_leaf, particle, decl))
        elif not xsd_type.has_simple_content() and key in self._compiling:
            content = st.deferred(lambda: self._complete[key])  # a recursive type: its own strategy, once compiled
            nodes = content.map(partial(_branch, particle, decl, names))
        else:
            self._compiling.add(key)
            content = st.tuples(values, *self._content(xsd_type, decl.name, here, decl.fixed))
            self._compiling.discard(key)
            self._complete.setdefault(key, content)
            # one map per element: hypothesis's cost is per strategy drawn, so the node is built in one step
            nodes = content.map(partial(_branch, particle, decl, names))
        if decl.nillable and self.settings.nil and decl.fixed is None:
            self._namespaces.add(XSI)
            nodes = st.one_of(nodes, values.map(partial(_nil, particle, decl, names)))
        return nodes

    def _content(self, xsd_type: Any, name: str, path: tuple[str, ...], fixed: str | None) -> tuple[
            st.SearchStrategy[str | None], st.SearchStrategy[Any]]:
        """The text and the (nested) children of an element `name` of a complex type."""
        if xsd_type.has_simple_content():
            slot = Slot(name, self._type_names(xsd_type), path, False)
            return self._text(slot, xsd_type.content, fixed), st.just(())
        if xsd_type.is_empty() or not isinstance(xsd_type.content, XsdGroup):
            return st.none(), st.just(())
        return st.none(), self._group(xsd_type.content, path)

    def _attributes(self, xsd_type: Any, path: tuple[str, ...]) -> tuple[tuple[str, ...], st.SearchStrategy[
            tuple[str | None, ...]]]:
        """The attribute names of a type and a strategy of their values (None: absent), in declaration order."""
        if not isinstance(xsd_type, XsdComplexType):
            return (), st.just(())
        names, parts = [], []
        for key, attribute in xsd_type.attributes.items():
            if key is None or not isinstance(attribute, XsdAttribute) or attribute.use == "prohibited":
                continue  # the attribute wildcard is left empty
            self._namespaces.add(_namespace(attribute.name))
            slot = Slot(attribute.name, self._type_names(attribute.type), (*path, "@" + local(attribute.name)), True)
            value = self._text(slot, attribute.type, attribute.fixed)
            names.append(attribute.name)
            parts.append(value if attribute.use == "required" else st.one_of(st.none(), value))
        return tuple(names), st.tuples(*parts) if parts else st.just(())

    def _occurrences(self, particle: Any, one: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        """minOccurs..maxOccurs of `one` (children nest: the element's builder flattens them)."""
        low = particle.min_occurs
        high = particle.max_occurs if particle.max_occurs is not None else max(low, self.settings.unbounded)
        if isinstance(particle, XsdAnyElement) and self.settings.wildcards == "absent":
            high = low
        if low == high == 1:
            return one
        if high == 0:
            return st.just(())
        return st.lists(one, min_size=low, max_size=high)

    def _group(self, group: Any, path: tuple[str, ...]) -> st.SearchStrategy[Any]:
        parts = [self._particle(p, path) for p in group]
        if not parts:
            once: st.SearchStrategy[Any] = st.just(())
        elif group.model == "choice":
            once = st.one_of(parts)
        elif group.model == "all":
            once = st.tuples(*parts).map(_flat).flatmap(st.permutations)
        else:
            once = st.tuples(*parts)
        return self._occurrences(group, once)

    def _particle(self, particle: Any, path: tuple[str, ...]) -> st.SearchStrategy[Any]:
        if isinstance(particle, XsdGroup):
            return self._group(particle, path)
        if isinstance(particle, XsdAnyElement):
            return self._occurrences(particle, self._wildcard(particle, path))
        return self._occurrences(particle, self._element_options(particle, path))

    def _wildcard(self, wildcard: Any, path: tuple[str, ...]) -> st.SearchStrategy[_Node]:
        if wildcard.process_contents == "strict":
            declared = [e for e in self.schema.maps.elements.values() if wildcard.is_matching(e.name) and not
                        e.abstract]
            if not declared:
                if self.settings.wildcards == "absent" and wildcard.min_occurs == 0:
                    return st.nothing()
                raise CannotGenerate(f"xs:any in {'/'.join(path)}: strict, and no global element it admits")
            return st.deferred(lambda: st.one_of([self._element(wildcard, e, path) for e in declared]))
        namespaces = [FOREIGN_NAMESPACE, *sorted(n for n in wildcard.namespace if not n.startswith("##")), ""]
        for namespace in namespaces:
            name = f"{{{namespace}}}{FOREIGN_LOCAL}" if namespace else FOREIGN_LOCAL
            if wildcard.is_namespace_allowed(namespace) and name not in self.schema.maps.elements:
                self._namespaces.add(namespace)
                text = st.from_regex(r"[a-z]{0,8}", fullmatch=True)
                return text.map(partial(_foreign, wildcard, name))
        raise CannotGenerate(f"xs:any in {'/'.join(path)}: no namespace it admits is free for a foreign element")

    # ---- violations ----

    def model(self, xsd_type: Any) -> _Model:
        """The content model of a type, analysed once."""
        key = id(xsd_type)
        if key not in self._models:
            self._models[key] = _model(xsd_type)
        return self._models[key]

    def sites(self, root: _Node) -> list[_Site]:
        """Every place of this document where one rule can be broken alone."""
        found: list[_Site] = []
        self._node_sites(root, (), "/" + local(root.name), found)
        renamed = "{" + _other_namespace(_namespace(root.name)) + "}" + local(root.name)
        if renamed not in self.schema.maps.elements:
            found.append(_Site("namespace", "/" + local(root.name), f"document element put in namespace "
                               f"{_namespace(renamed)}", _changed((), lambda n: replace(n, name=renamed))))
        return found

    def _node_sites(self, node: _Node, at: tuple[int, ...], path: str, found: list[_Site]) -> None:
        decl = node.decl
        if decl is None or node.nil:
            return
        self._value_sites(node, at, path, found)
        self._attribute_sites(node, at, path, found)
        if not decl.nillable:
            found.append(_Site("nillable", path, "xsi:nil on an element that is not nillable",
                               _changed(at, lambda n: replace(n, nil=True))))
        self._child_sites(node, at, path, self.model(decl.type), found)

    def _value_sites(self, node: _Node, at: tuple[int, ...], path: str, found: list[_Site]) -> None:
        simple = _simple_content(node.decl)
        if simple is None or node.decl.fixed is not None:
            return
        for rule, texts in self.values.breaking(simple):
            found.append(_Site(rule, path, f"a value that breaks {rule}",
                               _valued(at, keep(texts, self.safe_text), lambda n, t: replace(n, text=t))))

    def _attribute_sites(self, node: _Node, at: tuple[int, ...], path: str, found: list[_Site]) -> None:
        xsd_type = node.decl.type
        declared = xsd_type.attributes if isinstance(xsd_type, XsdComplexType) else {}
        present = dict(node.attributes)
        for key, attribute in declared.items():
            if key is None or not isinstance(attribute, XsdAttribute) or attribute.name not in present:
                continue
            name, where = attribute.name, f"{path}/@{local(attribute.name)}"
            if attribute.use == "required":
                found.append(_Site("required-attribute", where, "a required attribute removed",
                                   _changed(at, partial(_without_attribute, name))))
            if attribute.fixed is not None:
                continue
            for rule, texts in self.values.breaking(attribute.type):
                def set_value(n: _Node, value: str, name: str = name) -> _Node:
                    return replace(n, attributes=tuple((k, value if k == name else v) for k, v in n.attributes))

                found.append(_Site(rule, where, f"an attribute value that breaks {rule}",
                                   _valued(at, keep(texts, self.safe_text), set_value)))
        wildcard = declared.get(None) if declared else None
        if wildcard is None or not wildcard.is_matching(UNEXPECTED_LOCAL):
            found.append(_Site("unexpected-attribute", f"{path}/@{UNEXPECTED_LOCAL}", "an undeclared attribute added",
                               _changed(at, lambda n: replace(n, attributes=(*n.attributes, (UNEXPECTED_LOCAL, "x"))))))

    def _child_sites(self, node: _Node, at: tuple[int, ...], path: str, model: _Model, found: list[_Site]) -> None:
        children = node.children
        counts = Counter(c.name for c in children)
        seen: Counter[str] = Counter()
        for index, child in enumerate(children):
            seen[child.name] += 1
            here = f"{path}/{local(child.name)}" + (f"[{seen[child.name]}]" if counts[child.name] > 1 else "")
            self._occurrence_sites(model, children, index, at, f"{path}/{local(child.name)}", here, counts, found)
            self._node_sites(child, (*at, index), here, found)
        namespace = _namespace(node.name)
        unexpected = "{" + namespace + "}" + UNEXPECTED_LOCAL if namespace else UNEXPECTED_LOCAL
        if not model.admits(unexpected):
            extra = _Node(None, None, unexpected, (), None, ())
            found.append(_Site("unexpected-element", f"{path}/{UNEXPECTED_LOCAL}", "an undeclared element added "
                               "at the end", _children(at, lambda c: (*c, extra))))

    def _occurrence_sites(self, model: _Model, children: tuple[_Node, ...], index: int, at: tuple[int, ...],
                          named: str, here: str, counts: Counter[str], found: list[_Site]) -> None:
        child = children[index]
        particle, pid, name = child.particle, id(child.particle), local(child.name)
        same = [i for i, c in enumerate(children) if c.name == child.name]
        if pid in model.required and index == same[0]:
            # keep minOccurs - 1 of them: the rest go
            gone = set(same[particle.min_occurs - 1:])
            found.append(_Site("minOccurs", named, f"{name}: {particle.min_occurs - 1} left, fewer than minOccurs="
                               f"{particle.min_occurs}", _children(at, lambda c: tuple(
                                   n for i, n in enumerate(c) if i not in gone))))
        if pid in model.bounded and index == same[-1]:
            # copies after the last one, to maxOccurs + 1
            copies = (child,) * (particle.max_occurs - len(same) + 1)
            found.append(_Site("maxOccurs", named, f"{name}: {particle.max_occurs + 1}, more than maxOccurs="
                               f"{particle.max_occurs}", _children(at, lambda c: (*c[:index + 1], *copies,
                                                                                  *c[index + 1:]))))
        if index + 1 < len(children):
            after = children[index + 1]
            first, second = model.order.get(pid), model.order.get(id(after.particle))
            if (first and second and first[0] == second[0] and first[1] < second[1]
                    and counts[child.name] == 1 and counts[after.name] == 1):
                found.append(_Site("order", here, f"{name} moved after {local(after.name)}", _children(
                    at, lambda c: (*c[:index], c[index + 1], c[index], *c[index + 2:]))))
        namespace = _namespace(child.name)
        if namespace and child.decl is not None:
            renamed = "{" + _other_namespace(namespace) + "}" + name
            if not model.admits(renamed):
                found.append(_Site("namespace", here, f"{name} put in namespace {_namespace(renamed)}", _children(
                    at, lambda c: (*c[:index], replace(c[index], name=renamed), *c[index + 1:]))))

    def rules_of(self, decl: Any, seen: set[int] | None = None) -> set[str]:
        """The rules documents of `decl` offer to break: its own, and those of the elements it may contain."""
        seen = set() if seen is None else seen
        if id(decl) in seen:
            return set()
        seen.add(id(decl))
        found = {"namespace", "unexpected-attribute"}  # every element can be renamed or get a stray attribute
        if not decl.nillable:
            found.add("nillable")
        xsd_type = decl.type
        simple = _simple_content(decl)
        if simple is not None and decl.fixed is None:
            found.update(rule for rule, _ in self.values.breaking(simple))
        if isinstance(xsd_type, XsdComplexType):
            for key, attribute in xsd_type.attributes.items():
                if key is None or not isinstance(attribute, XsdAttribute) or attribute.use == "prohibited":
                    continue
                if attribute.use == "required":
                    found.add("required-attribute")
                if attribute.fixed is None:
                    found.update(rule for rule, _ in self.values.breaking(attribute.type))
        model = self.model(xsd_type)
        namespace = _namespace(decl.name)
        if not model.admits("{" + namespace + "}" + UNEXPECTED_LOCAL if namespace else UNEXPECTED_LOCAL):
            found.add("unexpected-element")
        found.update(self._occurrence_rules(xsd_type, model))
        content = getattr(xsd_type, "content", None)
        if isinstance(content, XsdGroup):
            for particle in content.iter_elements():
                if isinstance(particle, XsdElement):
                    for option in ([] if particle.abstract else [particle]) + list(particle.iter_substitutes()):
                        found |= self.rules_of(option, seen)
        return found

    def _occurrence_rules(self, xsd_type: Any, model: _Model) -> set[str]:
        """minOccurs, maxOccurs and order where every document of the type offers them."""
        found = set()
        particles = {id(p): p for p in getattr(getattr(xsd_type, "content", None), "iter_elements", list)()}
        if model.required:
            found.add("minOccurs")
        if any(particles[p].min_occurs >= 1 for p in model.bounded if p in particles):
            found.add("maxOccurs")
        positions = {at: p for p, at in model.order.items() if p in particles and particles[p].min_occurs >= 1}
        if any((group, position + 1) in positions for group, position in positions):
            found.add("order")
        return found

    def broken(self, root: _Node, rules: frozenset[str]) -> st.SearchStrategy[tuple[_Site, _Node]]:
        """One site of `root` where a rule of `rules` can be broken, and the document broken there."""
        by_rule: dict[str, list[_Site]] = {}
        for site in self.sites(root):
            if site.rule in rules:
                by_rule.setdefault(site.rule, []).append(site)
        if not by_rule:
            return st.nothing()
        # a rule first, then one of its sites: every rule the document offers is as likely, however many sites
        ordered = [r for r in RULES if r in by_rule]
        sites = st.sampled_from(ordered).flatmap(lambda rule: st.sampled_from(by_rule[rule]))
        return sites.flatmap(lambda site: site.make(root).map(lambda broken: (site, broken)))


def _changed(at: tuple[int, ...], change: Callable[[_Node], _Node]) -> Callable[[_Node], st.SearchStrategy[_Node]]:
    """A site's maker: the element at `at` changed one way."""
    return lambda root: st.just(_replace_at(root, at, change))


def _children(at: tuple[int, ...], change: Callable[[tuple[_Node, ...]], tuple[_Node, ...]]) -> Callable[
        [_Node], st.SearchStrategy[_Node]]:
    """A site's maker: the children of the element at `at` changed one way."""
    return _changed(at, lambda n: replace(n, children=tuple(change(n.children))))


def _valued(at: tuple[int, ...], texts: st.SearchStrategy[str], put: Callable[[_Node, str], _Node]) -> Callable[
        [_Node], st.SearchStrategy[_Node]]:
    """A site's maker: a drawn text put into the element at `at`."""
    return lambda root: texts.map(lambda text: _replace_at(root, at, lambda n: put(n, text)))


# ---- the public strategies ----

# per schema object, for the life of the process (a schema is loaded once per file; its strategies refer to it)
_COMPILERS: dict[XMLSchemaBase, dict[tuple[Any, ...], _Compiler]] = {}


def _compiler(schema: XMLSchemaBase, registry: Registry | None, overrides: Overrides | None,
              settings: Settings) -> _Compiler:
    chosen = list((overrides or {}).items())
    if registry is not None:
        chosen += list(registry_overrides(registry).items())
    registered = registry.ids if registry is not None else frozenset()
    key = (registered, tuple(chosen), settings)
    compilers = _COMPILERS.setdefault(schema, {})
    if key not in compilers:
        compilers[key] = _Compiler(schema, settings, tuple(chosen), registered)
    return compilers[key]


def _trees(schema: XMLSchemaBase, qname: str, registry: Registry | None, overrides: Overrides | None,
           settings: Settings) -> tuple[_Compiler, st.SearchStrategy[_Node], dict[str, str]]:
    compiler = _compiler(schema, registry, overrides, settings)
    tree, nsmap = compiler.document_tree(qname)
    return compiler, tree, nsmap


def elements(schema: XMLSchemaBase, qname: str, *, registry: Registry | None = None,
             overrides: Overrides | None = None, settings: Settings = DEFAULT) -> st.SearchStrategy[Any]:
    """lxml elements valid against `schema` as the global element `qname` ({ns}local or a local name).

    With a registry, identity slots take registered test patients (registry_overrides, after
    `overrides`); with or without one, no value and no document holds an identity outside it.
    """
    compiler, tree, nsmap = _trees(schema, qname, registry, overrides, settings)
    key = ("elements", qname)
    if key not in compiler.roots:
        compiler.roots[key] = keep(tree.map(lambda node: _build(node, nsmap)),
                                   lambda element: compiler.safe_document(_serialise(element)))
    return compiler.roots[key]


def documents(schema: XMLSchemaBase, qname: str, *, registry: Registry | None = None,
              overrides: Overrides | None = None, settings: Settings = DEFAULT) -> st.SearchStrategy[bytes]:
    """The documents of `elements(...)`, serialised: UTF-8 bytes with an XML declaration."""
    compiler, tree, nsmap = _trees(schema, qname, registry, overrides, settings)
    key = ("documents", qname)
    if key not in compiler.roots:
        compiler.roots[key] = keep(tree.map(lambda node: _serialise(_build(node, nsmap))), compiler.safe_document)
    return compiler.roots[key]


def rules(schema: XMLSchemaBase, qname: str, *, registry: Registry | None = None,
          overrides: Overrides | None = None, settings: Settings = DEFAULT) -> tuple[str, ...]:
    """The rules `violations` breaks in documents of `qname`, in RULES order: one test per rule can ask for each."""
    compiler = _compiler(schema, registry, overrides, settings)
    found = compiler.rules_of(compiler.global_element(qname))
    return tuple(r for r in RULES if r in found)


def violations(schema: XMLSchemaBase, qname: str, *, rules: Collection[str] | None = None,
               registry: Registry | None = None, overrides: Overrides | None = None,
               settings: Settings = DEFAULT) -> st.SearchStrategy[Violation]:
    """Documents of `qname` that break exactly one rule of `schema` (one of `rules`, default all), labelled with it."""
    wanted = frozenset(RULES if rules is None else rules)
    unknown = sorted(wanted - set(RULES))
    if unknown:
        raise CannotGenerate(f"unknown violation rule(s) {', '.join(unknown)} (known: {', '.join(RULES)})")
    compiler, tree, nsmap = _trees(schema, qname, registry, overrides, settings)
    key = ("violations", qname, wanted)
    if key not in compiler.roots:
        def violation(found: tuple[_Site, _Node]) -> Violation:
            site, broken = found
            return Violation(site.rule, site.path, site.detail, _build(broken, nsmap))

        broken = tree.flatmap(lambda root: compiler.broken(root, wanted)).map(violation)
        compiler.roots[key] = keep(broken, lambda v: compiler.safe_document(v.document()))
    return compiler.roots[key]
