"""Walking a compiled XSD (xmlschema) the way the suite needs it: children in model order, occurrences, built-ins."""

from __future__ import annotations

from collections.abc import Iterator
from functools import lru_cache
from typing import Any

from xmlschema.validators import XsdElement, XsdGroup

XSD = "http://www.w3.org/2001/XMLSchema"


def _element_particles(group: XsdGroup) -> Iterator[XsdElement]:
    for item in group:
        if isinstance(item, XsdGroup):
            yield from _element_particles(item)
        elif isinstance(item, XsdElement):
            yield item


@lru_cache(maxsize=1024)
def children(xsd_type: Any) -> tuple[XsdElement, ...]:
    """The child element declarations of a complex type, in the order its model gives them."""
    content = getattr(xsd_type, "content", None)
    if xsd_type.is_simple() or not isinstance(content, XsdGroup):
        return ()
    return tuple(_element_particles(content))


@lru_cache(maxsize=1024)
def by_name(xsd_type: Any) -> dict[str, XsdElement]:
    """The child element declarations of a complex type by local name."""
    return {c.local_name: c for c in children(xsd_type)}


def repeats(decl: XsdElement) -> bool:
    """Whether an element may occur more than once."""
    return decl.max_occurs is None or decl.max_occurs > 1


@lru_cache(maxsize=1024)
def builtin(xsd_type: Any) -> Any:
    """The built-in XSD type a simple type restricts (xs:int for AntalForpackningarType), or None."""
    current = xsd_type
    while current is not None and not str(current.name or "").startswith(f"{{{XSD}}}"):
        current = getattr(current, "base_type", None)
    return current


def is_simple(xsd_type: Any) -> bool:
    """Whether a type holds a value (a simple type, or simple content) rather than child elements."""
    return bool(xsd_type.is_simple() or (not isinstance(getattr(xsd_type, "content", None), XsdGroup)
                                          and xsd_type.has_simple_content()))
