"""The R4 formats of uri, url, canonical, code and id that the fhir.resources models do not enforce.

The models check a primitive's pattern by search, not a whole match, so `\\S*` (uri) matches the
empty start of any string: a uri with spaces or tabs passes, and the server would store it and
serve it back, invalid R4 (datatypes.html: uri `\\S*`, code `[^\\s]+(\\s[^\\s]+)*`, id
`[A-Za-z0-9\\-\\.]{1,64}`; XML Schema regexes, matched whole; `\\s` is space, tab, CR, LF).
After the model has parsed a body, every value of those types is matched whole here.
"""

from __future__ import annotations

import re
import typing
from typing import Any

from pydantic import BaseModel

_SPACE = " \t\n\r"
FORMATS = {
    "Uri": re.compile(f"[^{_SPACE}]*"),
    "Url": re.compile(f"[^{_SPACE}]*"),
    "Canonical": re.compile(f"[^{_SPACE}]*"),
    "Code": re.compile(f"[^{_SPACE}]+([{_SPACE}][^{_SPACE}]+)*"),
    "Id": re.compile(r"[A-Za-z0-9\-.]{1,64}"),
}


def _format(annotation: Any) -> str | None:
    """The fhir.resources primitive type a field holds (Uri, Code, ...), if it is one of FORMATS."""
    for meta in getattr(annotation, "__metadata__", ()):
        name = type(meta).__name__
        if name in FORMATS:
            return name
    for inner in typing.get_args(annotation):
        found = _format(inner)
        if found:
            return found
    return None


def format_problem(model: BaseModel, where: str) -> str | None:
    """The first uri, url, canonical, code or id value of a parsed resource that is not of its R4 form."""
    for name, field in type(model).model_fields.items():
        value = getattr(model, name, None)
        if value is None:
            continue
        kind = _format(field.annotation)
        for i, item in enumerate(value if isinstance(value, list) else [value]):
            at = f"{where}.{field.alias or name}" + (f"[{i}]" if isinstance(value, list) else "")
            if isinstance(item, BaseModel):
                found = format_problem(item, at)
                if found:
                    return found
            elif kind and isinstance(item, str) and FORMATS[kind].fullmatch(item) is None:
                return f"{at}: {item!r} is not a valid {kind.lower()}"
    return None
