"""The table of IR node kinds: what the schema declares, and each stage's rule per kind.

The kinds are the ``$defs`` the schema's ``node`` lists in its ``oneOf`` (``series``, ``delay``,
``sos``, ...); a kind whose ``$def`` has a ``diagonal`` field may be a bank of per-channel elements.
Every stage that treats nodes kind by kind keeps one :class:`KindTable` and registers its rule
for each kind by name, right beside that stage's other rules::

    EMIT = KindTable("faust emission")

    @EMIT.register("delay")
    def emit_delay(node, ctx): ...

``tests/test_kinds.py`` checks every table against the schema: a stage that lacks a kind the schema
declares, or knows one it does not, fails there, not at run time. Adding a kind is a schema ``$def``,
one row in each table, and one model in the test zoo (``tests/flamo_models.py``).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Callable

from ..common.errors import SchemaError
from ..common.schema import load_schema


@lru_cache(maxsize=1)
def schema_kinds() -> dict[str, dict]:
    """``{kind: its $def}`` for every node kind the IR schema declares."""
    defs = load_schema("ir.schema.json")["$defs"]
    kinds = {}
    for ref in defs["node"]["oneOf"]:
        definition = defs[ref["$ref"].rpartition("/")[2]]
        kinds[definition["properties"]["kind"]["const"]] = definition
    return kinds


def diagonal_kinds() -> frozenset[str]:
    """Kinds that may be a bank of per-channel elements (their ``$def`` has a ``diagonal`` field)."""
    return frozenset(k for k, d in schema_kinds().items() if "diagonal" in d["properties"])


class KindTable:
    """One stage's rules, one per IR kind, registered by name.

    ``covers``: ``"all"`` (every schema kind) or ``"diagonal"`` (the kinds of :func:`diagonal_kinds`);
    the kind-table test holds the table to it.
    """

    tables: list["KindTable"] = []  # every table made, for the kind-table test

    def __init__(self, stage: str, covers: str = "all"):
        if covers not in ("all", "diagonal"):
            raise ValueError(f"covers must be 'all' or 'diagonal', got {covers!r}")
        self.stage, self.covers = stage, covers
        self.rules: dict[str, Callable] = {}
        KindTable.tables.append(self)

    def register(self, *kinds: str) -> Callable[[Callable], Callable]:
        def add(rule: Callable) -> Callable:
            for kind in kinds:
                if kind in self.rules:
                    raise ValueError(f"{self.stage}: kind {kind!r} registered twice")
                self.rules[kind] = rule
            return rule

        return add

    def expected(self) -> frozenset[str]:
        return frozenset(schema_kinds()) if self.covers == "all" else diagonal_kinds()

    def __getitem__(self, kind: str) -> Callable:
        try:
            return self.rules[kind]
        except KeyError:
            raise SchemaError(f"{self.stage}: no rule for IR node kind {kind!r}") from None

    def __call__(self, node: dict, *args, **kwargs):
        return self[node["kind"]](node, *args, **kwargs)
