"""A StructureDefinition's snapshot compiled into a tree of nodes: what validation and generation walk.

One node per element of the snapshot, children by their JSON name, slices under the element they
slice. Types are read as R4 states them, with two readings the R4 definitions need:

- An element typed `http://hl7.org/fhirpath/System.String` (ids, Extension.url, the primitives'
  values) carries its FHIR type in the `structuredefinition-fhir-type` extension: that type is
  what the JSON must hold.
- `Resource.id` says `string` there, but resource.html defines it as an `id` ("Logical id of
  this artifact", datatypes.html#id: `[A-Za-z0-9\\-\\.]{1,64}`), and so it is read as `id`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rxverify.errors import UserError

FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
# Base paths whose declared fhir-type the R4 prose overrides (see the module docstring).
ID_PATHS = frozenset({"Resource.id"})
PRIMITIVE_TYPES = frozenset(
    {
        "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id", "instant", "integer",
        "markdown", "oid", "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid", "xhtml",
    }
)  # fmt: skip
# Types whose elements are defined in place (their children follow in the same snapshot).
INLINE_TYPES = frozenset({"BackboneElement", "Element"})


@dataclass(frozen=True)
class TypeRef:
    """One ElementDefinition.type: code (the FHIR type), profiles, target profiles."""

    code: str
    profiles: tuple[str, ...] = ()
    targets: tuple[str, ...] = ()

    @property
    def primitive(self) -> bool:
        """Whether the type is a FHIR primitive (a JSON string, number or boolean)."""
        return self.code in PRIMITIVE_TYPES


@dataclass(frozen=True)
class Constraint:
    """An ElementDefinition.constraint as declared: key, severity, human text, FHIRPath, source."""

    key: str
    severity: str
    human: str
    expression: str
    source: str = ""
    best_practice: bool = False


@dataclass(eq=False)
class Node:
    """One element of a snapshot, with its children and slices."""

    id: str
    path: str
    name: str  # the JSON name (without [x])
    choice: bool
    min: int
    max: int | None
    types: tuple[TypeRef, ...]
    is_array: bool
    base_path: str
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
    constraints: tuple[Constraint, ...] = ()
    slice_name: str | None = None
    slicing_rules: str | None = None
    slicing_ordered: bool = False
    discriminators: tuple[tuple[str, str], ...] = ()
    slices: dict[str, Node] = field(default_factory=dict)
    children: dict[str, Node] = field(default_factory=dict)
    choice_keys: dict[str, str] = field(default_factory=dict)  # JSON suffix -> type code
    content_reference: str | None = None
    # resolved on first use by the validator and the generator
    cache: dict[str, Any] = field(default_factory=dict)

    def type_codes(self) -> list[str]:
        """The type codes allowed here."""
        return [t.code for t in self.types]

    def type_of(self, code: str | None) -> TypeRef | None:
        """The type with `code` (for a choice, the one its JSON name chose), else the only type."""
        if code is not None:
            return next((t for t in self.types if t.code == code), None)
        return self.types[0] if len(self.types) == 1 else None

    def fhirpath_base(self, code: str | None) -> str:
        """The type an invariant's FHIRPath sees this element as (fhirpathpy's model path)."""
        if code is not None and code not in INLINE_TYPES:
            return code
        return self.base_path


@dataclass(eq=False)
class Plan:
    """A StructureDefinition compiled: its root node, and the definition it came from."""

    url: str
    type: str
    kind: str
    derivation: str
    root: Node
    definition: dict[str, Any]
    by_path: dict[str, Node] = field(default_factory=dict)  # element path -> node, for contentReference


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


def type_code(raw: dict[str, Any], base_path: str) -> str:
    """The FHIR type an ElementDefinition.type stands for (see the module docstring)."""
    code = str(raw.get("code", ""))
    if base_path in ID_PATHS:
        return "id"
    if code.startswith(SYSTEM_PREFIX):
        for ext in raw.get("extension", []) or []:
            if ext.get("url") == FHIR_TYPE_EXTENSION and isinstance(ext.get("valueUrl"), str):
                return str(ext["valueUrl"])
    return code


def _best_practice(raw: dict[str, Any]) -> bool:
    return any(
        e.get("url") == "http://hl7.org/fhir/StructureDefinition/elementdefinition-bestpractice"
        and e.get("valueBoolean") is True
        for e in raw.get("extension", []) or []
    )


def _node(element: dict[str, Any], name: str, slice_name: str | None) -> Node:
    base = element.get("base") or {}
    base_path = str(base.get("path") or element.get("path") or "")
    types = tuple(
        TypeRef(
            type_code(t, base_path),
            tuple(t.get("profile", []) or []),
            tuple(t.get("targetProfile", []) or []),
        )
        for t in element.get("type", []) or []
    )
    base_max = base.get("max", element.get("max"))
    choice = name.endswith("[x]")
    path = str(element.get("path") or "")
    node = Node(
        id=str(element.get("id") or path),
        path=path,
        name=name[:-3] if choice else name,
        choice=choice,
        min=int(element.get("min", 0) or 0),
        max=_max(element.get("max", "*")),
        types=types,
        is_array=base_max not in ("0", "1"),
        base_path=base_path,
        must_support=bool(element.get("mustSupport")),
        slice_name=slice_name,
        content_reference=element.get("contentReference"),
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
        node.binding_set = str(binding["valueSet"])
    node.constraints = tuple(
        Constraint(
            str(c.get("key", "?")),
            str(c.get("severity", "error")),
            str(c.get("human", "")),
            str(c.get("expression") or ""),
            str(c.get("source", "")),
            _best_practice(c),
        )
        for c in element.get("constraint", []) or []
    )
    slicing = element.get("slicing")
    if slicing:
        node.slicing_rules = slicing.get("rules", "open")
        node.slicing_ordered = bool(slicing.get("ordered"))
        node.discriminators = tuple((d.get("type", ""), d.get("path", "")) for d in slicing.get("discriminator", []))
    if choice:
        node.choice_keys = {t.code[:1].upper() + t.code[1:]: t.code for t in types}
    return node


def compile_plan(definition: dict[str, Any]) -> Plan:
    """Compile a StructureDefinition's snapshot into a tree of nodes."""
    url = str(definition.get("url"))
    elements = (definition.get("snapshot") or {}).get("element")
    if not elements:
        raise UserError(f"StructureDefinition {url} has no snapshot (generate it: rxverify fhir snapshot)")
    first = elements[0]
    root = _node(first, str(first.get("path", "")), None)
    plan = Plan(
        url,
        str(definition.get("type")),
        str(definition.get("kind")),
        str(definition.get("derivation", "")),
        root,
        definition,
    )
    plan.by_path[root.path] = root
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
            new = _node(element, name, slice_name)
            key = new.name
            if slice_name is None:
                node.children[key] = new
                if not any(s for _, s in parts):
                    plan.by_path.setdefault(new.path, new)
            elif key in node.children:
                parent = node.children[key]
                if parent.choice:  # a type slice (value[x]:valueString) restates the choice: not a slice
                    continue
                new.is_array = parent.is_array
                parent.slices[slice_name] = new
    return plan
