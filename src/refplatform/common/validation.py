"""Request validation from an OpenAPI 3.1 contract, the way a vendor's API gateway does it.

The platform reads the contract file (it may; it shares no code with the suite) and checks
each request's path parameters, query parameters and JSON body against the declared schemas,
formats included, before a handler runs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

_FORMATS = FormatChecker()


@_FORMATS.checks("personid")
def _personid(value: object) -> bool:
    # Shape only: the pattern carries the rest; a bad check digit is an unknown patient (404).
    return isinstance(value, str) and len(value) == 12 and value.isdigit()


@_FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    from datetime import datetime

    if not isinstance(value, str):
        return True
    datetime.fromisoformat(value.replace("Z", "+00:00"))
    return "T" in value


class RequestInvalid(Exception):
    """The request does not satisfy the contract; `status` is 400 or 415."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class _Operation:
    path_params: dict[str, dict[str, Any]] = field(default_factory=dict)
    query_params: dict[str, tuple[bool, dict[str, Any]]] = field(default_factory=dict)
    header_params: dict[str, tuple[bool, dict[str, Any]]] = field(default_factory=dict)
    body_required: bool = False
    body_schema: dict[str, Any] | None = None
    media_types: tuple[str, ...] = ()


class OpenApiValidator:
    """Validates requests for the operations of one OpenAPI document, by operationId."""

    def __init__(self, spec_path: Path) -> None:
        self.document: dict[str, Any] = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
        resource: Resource[Any] = DRAFT202012.create_resource(self.document)
        self._registry: Registry[Any] = Registry().with_resource("urn:contract", resource)
        self._validators: dict[str, Draft202012Validator] = {}
        self.operations: dict[str, _Operation] = {}
        for path_item in self.document.get("paths", {}).values():
            shared = path_item.get("parameters", [])
            for method, op in path_item.items():
                if method == "parameters" or not isinstance(op, dict):
                    continue
                self.operations[op["operationId"]] = self._compile(shared + op.get("parameters", []), op)

    def _deref(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.document
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            node = target
        return node

    def _compile(self, params: list[dict[str, Any]], op: dict[str, Any]) -> _Operation:
        compiled = _Operation()
        for raw in params:
            p = self._deref(raw)
            schema = p.get("schema", {})
            if p["in"] == "path":
                compiled.path_params[p["name"]] = schema
            elif p["in"] == "query":
                compiled.query_params[p["name"]] = (bool(p.get("required")), schema)
            elif p["in"] == "header":
                compiled.header_params[p["name"].lower()] = (bool(p.get("required")), schema)
        body = op.get("requestBody")
        if body:
            body = self._deref(body)
            compiled.body_required = bool(body.get("required"))
            content = body.get("content", {})
            compiled.media_types = tuple(content)
            for media in content.values():
                compiled.body_schema = media.get("schema")
                break
        return compiled

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        validator = self._validators.get(key)
        if validator is None:
            validator = Draft202012Validator(_absolute_refs(schema), registry=self._registry, format_checker=_FORMATS)
            self._validators[key] = validator
        return validator

    def _check(self, where: str, value: Any, schema: dict[str, Any]) -> None:
        error = next(iter(self._validator(schema).iter_errors(value)), None)
        if error is not None:
            location = "/".join(str(p) for p in error.absolute_path)
            at = f"{where}/{location}" if location else where
            raise RequestInvalid(f"{at}: {error.message[:300]}")

    def validate(
        self,
        operation_id: str,
        path_params: Mapping[str, str],
        query: Mapping[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
        content_type: str | None,
    ) -> Any:
        """Check one request; return the parsed JSON body (or None). Raise RequestInvalid."""
        op = self.operations[operation_id]
        for name, schema in op.path_params.items():
            self._check(f"path {name}", path_params.get(name, ""), schema)
        for name, (required, schema) in op.query_params.items():
            values = query.get(name)
            if not values:
                if required:
                    raise RequestInvalid(f"query {name}: required")
                continue
            for value in values:
                self._check(f"query {name}", _coerce(value, schema), schema)
        for name, (required, schema) in op.header_params.items():
            header = headers.get(name)
            if header is None:
                if required:
                    raise RequestInvalid(f"header {name}: required")
                continue
            self._check(f"header {name}", header, schema)
        if not op.body_schema and not op.body_required:
            return None
        if not body:
            if op.body_required:
                raise RequestInvalid("body: required")
            return None
        media = (content_type or "").split(";")[0].strip().lower()
        if (
            op.media_types
            and media not in op.media_types
            and not (
                media in ("application/json", "application/fhir+json")
                and any(m in ("application/json", "application/fhir+json") for m in op.media_types)
            )
        ):
            raise RequestInvalid(f"content type {media or 'missing'} not accepted", status=415)
        try:
            parsed = json.loads(body, parse_float=_number)
        except (ValueError, UnicodeDecodeError):
            raise RequestInvalid("body: not valid JSON") from None
        if op.body_schema is not None:
            self._check("body", parsed, op.body_schema)
        return parsed


def _coerce(value: str, schema: dict[str, Any]) -> Any:
    kind = schema.get("type")
    try:
        if kind == "integer":
            return int(value)
        if kind == "number":
            return float(value)
        if kind == "boolean" and value in ("true", "false"):
            return value == "true"
    except ValueError:
        return value
    return value


def _absolute_refs(node: Any) -> Any:
    """Point local `#/...` references at the whole contract document in the registry."""
    if isinstance(node, dict):
        return {
            k: ("urn:contract" + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else _absolute_refs(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_absolute_refs(v) for v in node]
    return node


def _number(text: str) -> int | float:
    """JSON numbers such as 78.0 are integers to JSON Schema: hand them to handlers as int."""
    value = float(text)
    return int(value) if value.is_integer() and abs(value) < 2**53 else value
