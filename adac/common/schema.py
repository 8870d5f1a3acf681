"""JSON Schemas of adac's documents (IR, certificate, manifest), read through one resolver.

:func:`check_schema` raises a :class:`SchemaError` naming the JSON pointer of the most specific bad field.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

import jsonschema

from .errors import SchemaError
from .resources import data_file


@lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    return json.loads(data_file("schemas", name).read_text())


@lru_cache(maxsize=None)
def validator(name: str) -> jsonschema.Draft202012Validator:
    """A validator of the schema ``name``, built once."""
    return jsonschema.Draft202012Validator(load_schema(name))


def pointer(parts) -> str:
    """RFC 6901 JSON pointer of a path of keys/indices (``""`` for the document itself)."""
    return "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1") for p in parts) if parts else ""


def _most_specific(errors):
    """The error that says most: inside oneOf/anyOf, the branch whose ``kind`` matched, deepest first.

    An ``unevaluatedProperties`` error also follows from any failing branch (its properties then count as
    unevaluated): it is chosen only when nothing else is wrong.
    """

    def score(error):
        wrong_kind = error.validator == "const" and list(error.absolute_path)[-1:] == ["kind"]
        return (not wrong_kind, error.validator != "unevaluatedProperties", len(error.absolute_path))

    best = max(errors, key=score)
    while best.context:
        inner = max(best.context, key=score)
        if score(inner) < score(best) and best.validator not in ("oneOf", "anyOf"):
            break
        best = inner
    return best


def check_schema(document: Any, schema_name: str, source: str = "document") -> None:
    """Validate against a JSON Schema; the error names the pointer of the most specific bad field."""
    errors = list(validator(schema_name).iter_errors(document))
    if not errors:
        return
    err = _most_specific(errors)
    message = err.message if len(err.message) <= 240 else err.message[:240] + "..."
    raise SchemaError(f"{source}: {pointer(list(err.absolute_path)) or '/'}: {message}")
