"""Between the XML names of the wire and today's JSON shape of the old interface's data.

The domain rules (rxverify.checks.legacy_rules), the mapping to FHIR and the representations test
speak of prescriptions as JSON-shaped dicts (`ordinationId`, `personId`, `ordinationer[]`). The
wire names them as contracts/riv/README.md says: services.toml [names] renames a field everywhere
(personId -> personnummer, ordinationId -> ordinationsId) and an operation's `lists` name the
repeated element of each JSON array (`ordinationer` -> `historikpost`). These two functions are
that correspondence and its inverse; the extension point, which the JSON shape never had, is
dropped on the way to JSON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXTENSION = "extension"


def _at(path: str, key: str) -> str:
    return f"{path}/{key}" if path else key


def to_json(data: Any, names: Mapping[str, str], lists: Mapping[str, str], path: str = "") -> Any:
    """XML-named data (a decoded element) in today's JSON shape; `path` is the XML path of `data`."""
    if not isinstance(data, Mapping):
        return data
    back = {xml: json for json, xml in names.items()}
    arrays = {xml: json for json, xml in lists.items()}  # XML path of a repeated element -> JSON path
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key == EXTENSION:
            continue
        at = _at(path, str(key))
        if at in arrays:
            items = value if isinstance(value, list) else [value]
            out[arrays[at].rsplit("/", 1)[-1]] = [to_json(v, names, lists, at) for v in items]
        else:
            renamed = back.get(str(key), str(key))
            if isinstance(value, list):
                out[renamed] = [to_json(v, names, lists, at) for v in value]
            else:
                out[renamed] = to_json(value, names, lists, at)
    # an array the JSON shape always has is there, empty, when the answer had no such element
    for xml_path, json_path in arrays.items():
        parent, _, local = xml_path.rpartition("/")
        if parent == path and local not in data:
            out.setdefault(json_path.rsplit("/", 1)[-1], [])
    return out


def from_json(data: Any, names: Mapping[str, str], lists: Mapping[str, str], path: str = "") -> Any:
    """Data in today's JSON shape under the XML names; `path` is the JSON path of `data`."""
    if not isinstance(data, Mapping):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        at = _at(path, key)
        if at in lists:
            out[lists[at].rsplit("/", 1)[-1]] = [from_json(v, names, lists, at) for v in value]
        elif isinstance(value, list):
            out[names.get(key, key)] = [from_json(v, names, lists, at) for v in value]
        else:
            out[names.get(key, key)] = from_json(value, names, lists, at)
    return out
