"""A validator for the subset of JSON Schema (draft 2020-12) that vpmu's own schemas use.

vpmu ships its trace schema as a real JSON Schema document (``vpmu/trace_schema.json``), so
other tools can check traces with any validator; vpmu itself checks with this one instead of
depending on the ``jsonschema`` package (and its compiled ``rpds-py`` dependency) because:

- traces are large (millions of records): the schema is compiled once into nested closures,
  which checks a record several times faster than a general validator walking the document;
- the trace tools report the *first* bad line with its number and one precise reason.

Supported keywords (:data:`KEYWORDS`; :func:`compile_schema` refuses any other, so a schema
cannot silently ask for a check this module does not make): ``type`` (a name or a list of
names; ``integer`` excludes booleans, as JSON does), ``enum``, ``const``, ``minimum``,
``maximum``, ``maxLength``, ``required``, ``properties``, ``additionalProperties`` (boolean
or schema), ``items``, ``maxItems``, ``allOf``, ``if``/``then``, and ``$ref`` to
``#/$defs/NAME``; ``$schema``, ``$id``, ``$defs``, ``title``, ``description`` and
``$comment`` are annotations.
"""
from __future__ import annotations

from typing import Any, Callable, Optional

Check = Callable[[Any, str], Optional[str]]      # (value, JSON path) -> error message or None

ANNOTATIONS = frozenset({"$schema", "$id", "$defs", "title", "description", "$comment"})
KEYWORDS = frozenset({"type", "enum", "const", "minimum", "maximum", "maxLength", "required", "properties",
                      "additionalProperties", "items", "maxItems", "allOf", "if", "then", "$ref"}) | ANNOTATIONS

_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


class SchemaError(ValueError):
    """The schema itself uses something this validator does not implement."""


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."


def compile_schema(schema: dict, root: Optional[dict] = None, _defs: Optional[dict] = None) -> Check:
    """A checking function for ``schema`` (``root`` resolves ``$ref``)."""
    root = schema if root is None else root
    defs: dict[str, Check] = {} if _defs is None else _defs      # compiled $defs, shared
    if not isinstance(schema, dict):
        raise SchemaError(f"a schema must be an object, not {schema!r}")
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise SchemaError(f"unsupported JSON Schema keyword(s): {', '.join(sorted(unknown))}")
    checks: list[Check] = []

    def sub(s: Any) -> Check:
        return compile_schema(s, root, defs)

    if "$ref" in schema:
        ref = schema["$ref"]
        prefix = "#/$defs/"
        if not isinstance(ref, str) or not ref.startswith(prefix) or ref[len(prefix):] not in root.get("$defs", {}):
            raise SchemaError(f"unsupported or dangling $ref {ref!r}")
        name = ref[len(prefix):]
        if name not in defs:
            defs[name] = _pending(name, defs)               # a reference to itself resolves late
            defs[name] = sub(root["$defs"][name])
        checks.append(defs[name])

    ilo, ihi = schema.get("minimum"), schema.get("maximum")
    if schema.get("type") == "integer" and ilo is not None and ihi is not None:
        # the commonest field, one closure: an integer (not a boolean) in lo..hi
        def check_int(v: Any, path: str) -> Optional[str]:
            if type(v) is int and ilo <= v <= ihi:
                return None
            if isinstance(v, int) and not isinstance(v, bool):
                return f"{path}: {_short(v)} is outside {ilo}..{ihi}"
            return f"{path}: expected integer, got {_short(v)}"
        checks.append(check_int)
        schema = {k: v for k, v in schema.items() if k not in ("type", "minimum", "maximum")}

    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if any(n not in _TYPES for n in names):
            raise SchemaError(f"unknown type in {names!r}")
        tests = [_TYPES[n] for n in names]
        wanted = " or ".join(names)

        def check_type(v: Any, path: str) -> Optional[str]:
            if any(t(v) for t in tests):
                return None
            return f"{path}: expected {wanted}, got {_short(v)}"
        checks.append(check_type)

    if "enum" in schema:
        options = list(schema["enum"])

        def check_enum(v: Any, path: str) -> Optional[str]:
            # JSON equality: true is not 1
            if any(v == o and type(v) is type(o) for o in options):
                return None
            return f"{path}: {_short(v)} is not one of {', '.join(map(repr, options))}"
        checks.append(check_enum)

    if "const" in schema:
        const = schema["const"]

        def check_const(v: Any, path: str) -> Optional[str]:
            return None if v == const and type(v) is type(const) else f"{path}: expected {const!r}, got {_short(v)}"
        checks.append(check_const)

    lo, hi = schema.get("minimum"), schema.get("maximum")
    if lo is not None or hi is not None:
        def check_range(v: Any, path: str) -> Optional[str]:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return None
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                return f"{path}: {_short(v)} is outside {lo if lo is not None else ''}..{hi if hi is not None else ''}"
            return None
        checks.append(check_range)

    if "maxLength" in schema:
        max_len = schema["maxLength"]

        def check_len(v: Any, path: str) -> Optional[str]:
            return f"{path}: string longer than {max_len}" if isinstance(v, str) and len(v) > max_len else None
        checks.append(check_len)

    if "required" in schema:
        required = list(schema["required"])

        def check_required(v: Any, path: str) -> Optional[str]:
            if isinstance(v, dict):
                for k in required:
                    if k not in v:
                        return f"{path}: missing field {k!r}"
            return None
        checks.append(check_required)

    if "properties" in schema or "additionalProperties" in schema:
        props = {k: sub(s) for k, s in schema.get("properties", {}).items()}
        extra = schema.get("additionalProperties", True)
        extra_check = None if isinstance(extra, bool) else sub(extra)

        def check_props(v: Any, path: str) -> Optional[str]:
            if not isinstance(v, dict):
                return None
            for k, item in v.items():
                known = props.get(k)
                if known is not None:
                    err = known(item, f"{path}.{k}")
                elif extra is False:
                    err = f"{path}: unexpected field {k!r}"
                elif extra_check is not None:
                    err = extra_check(item, f"{path}.{k}")
                else:
                    err = None
                if err:
                    return err
            return None
        checks.append(check_props)

    if "items" in schema or "maxItems" in schema:
        item_check = sub(schema["items"]) if "items" in schema else None
        max_items = schema.get("maxItems")

        def check_items(v: Any, path: str) -> Optional[str]:
            if not isinstance(v, list):
                return None
            if max_items is not None and len(v) > max_items:
                return f"{path}: more than {max_items} items"
            if item_check is not None:
                for i, item in enumerate(v):
                    err = item_check(item, f"{path}[{i}]")
                    if err:
                        return err
            return None
        checks.append(check_items)

    for sub_schema in schema.get("allOf", []):
        checks.append(sub(sub_schema))

    if "if" in schema:
        cond = sub(schema["if"])
        then = sub(schema["then"]) if "then" in schema else None

        def check_if(v: Any, path: str) -> Optional[str]:
            if then is not None and cond(v, path) is None:
                return then(v, path)
            return None
        checks.append(check_if)

    if not checks:
        return _accept
    if len(checks) == 1:
        return checks[0]

    def check_all(v: Any, path: str) -> Optional[str]:
        for c in checks:
            err = c(v, path)
            if err:
                return err
        return None
    return check_all


def _accept(v: Any, path: str) -> Optional[str]:
    return None


def _pending(name: str, defs: dict) -> Check:
    def check(v: Any, path: str) -> Optional[str]:
        return defs[name](v, path)
    return check
