"""The adac IR: the contract between the FLAMO frontend and every backend.

An IR document is JSON, validated against ``schemas/ir.schema.json`` (structure)
and by :func:`validate_ir` (what a schema cannot say: channel arities, finite
values, non-negative delays). Errors name the JSON pointer of the bad field.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..common.errors import ChannelMismatchError, InvalidParameterError, SchemaError
from ..common.fileio import write_json_atomic
from ..common.schema import check_schema, pointer
from .kinds import KindTable

IR_FORMAT = "adac-ir"
IR_VERSION = "1.0"


def iter_nodes(node: dict, parts: tuple = ("graph",)) -> Iterator[tuple[dict, tuple]]:
    """Every node of a graph (pre-order) with the pointer parts that lead to it."""
    yield node, parts
    for i, child in enumerate(node.get("children", [])):
        yield from iter_nodes(child, parts + ("children", i))
    for key in ("feedforward", "feedback"):
        if key in node:
            yield from iter_nodes(node[key], parts + (key,))


def _check_finite(value: Any, parts: tuple, source: str) -> None:
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if not math.isfinite(value):
            raise InvalidParameterError(f"{source}: {pointer(parts)}: value {value} is not finite")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_finite(v, parts + (i,), source)
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_finite(v, parts + (k,), source)


def _shape_error(source, parts, field, want, got):
    return ChannelMismatchError(f"{source}: {pointer(parts + (field,))}: shape {got} does not match {want}")


def _array(node, field, parts, source, want_shape):
    arr = np.asarray(node[field], dtype=float)
    if arr.shape != tuple(want_shape):
        raise _shape_error(source, parts, field, tuple(want_shape), arr.shape)
    return arr


CHECKS = KindTable("IR checks")


def _arity(node: dict, parts: tuple, source: str, msg: str) -> ChannelMismatchError:
    return ChannelMismatchError(f"{source}: {pointer(parts)} ({node.get('path') or 'root'}): {msg}")


def _path_shape(node: dict) -> tuple:
    """Shape of one value per path: ``(N,)`` for a diagonal node, else ``(out, in)``."""
    return (node["in"],) if node["diagonal"] else (node["out"], node["in"])


@CHECKS.register("series")
def _check_series(node, parts, source):
    kids, n_in, n_out = node["children"], node["in"], node["out"]
    if kids[0]["in"] != n_in or kids[-1]["out"] != n_out:
        raise _arity(node, parts, source, f"series has {n_in}->{n_out} channels but its ends have "
                                          f"{kids[0]['in']}->{kids[-1]['out']}")
    for i, (a, b) in enumerate(zip(kids, kids[1:])):
        if a["out"] != b["in"]:
            raise _arity(node, parts, source, f"child {i} ({a.get('path')}) gives {a['out']} channels, "
                                              f"child {i + 1} ({b.get('path')}) takes {b['in']}")


@CHECKS.register("parallel")
def _check_parallel(node, parts, source):
    a, b = node["children"]
    n_in, n_out = node["in"], node["out"]
    if a["in"] != n_in or b["in"] != n_in:
        raise _arity(node, parts, source, f"branches take {a['in']} and {b['in']} channels, the parallel node {n_in}")
    want = a["out"] if node["sum_output"] else a["out"] + b["out"]
    if node["sum_output"] and a["out"] != b["out"]:
        raise _arity(node, parts, source, f"summed branches give {a['out']} and {b['out']} channels")
    if want != n_out:
        raise _arity(node, parts, source, f"branches give {want} channels, the parallel node declares {n_out}")


@CHECKS.register("recursion")
def _check_recursion(node, parts, source):
    f, g = node["feedforward"], node["feedback"]
    if (f["in"], f["out"]) != (node["in"], node["out"]) or (g["in"], g["out"]) != (f["out"], f["in"]):
        raise _arity(node, parts, source, f"loop arities do not close: feedforward {f['in']}->{f['out']}, "
                                          f"feedback {g['in']}->{g['out']}")


@CHECKS.register("delay", "gain_delay")
def _check_delay(node, parts, source):
    if node["diagonal"] and node["in"] != node["out"]:
        raise _arity(node, parts, source, "a diagonal node must have as many outputs as inputs")
    samples = _array(node, "samples", parts, source, _path_shape(node))
    if (samples < 0).any():
        raise InvalidParameterError(f"{source}: {pointer(parts + ('samples',))} ({node.get('path')}): "
                                    f"negative delay {samples.min()} samples")
    if node["integer"] and not np.all(samples == np.round(samples)):
        raise InvalidParameterError(f"{source}: {pointer(parts + ('samples',))}: integer delays are not integral")
    if node["kind"] == "gain_delay":
        _array(node, "gains", parts, source, _path_shape(node))


@CHECKS.register("gain")
def _check_gain(node, parts, source):
    if node["diagonal"]:
        if node["in"] != node["out"] or "gains" not in node:
            raise _arity(node, parts, source, "a diagonal gain needs 'gains' and equal in/out")
        _array(node, "gains", parts, source, (node["in"],))
    else:
        if "matrix" not in node:
            raise _arity(node, parts, source, "a non-diagonal gain needs 'matrix'")
        _array(node, "matrix", parts, source, (node["out"], node["in"]))


@CHECKS.register("householder")
def _check_householder(node, parts, source):
    if node["in"] != node["out"]:
        raise _arity(node, parts, source, "a Householder matrix is square")
    u = _array(node, "u", parts, source, (node["in"],))
    if abs(float(np.dot(u, u)) - 1.0) > 1e-9:
        raise InvalidParameterError(f"{source}: {pointer(parts + ('u',))}: Householder vector is not unit length")


@CHECKS.register("fir")
def _check_fir(node, parts, source):
    taps = np.asarray(node["taps"], dtype=float)
    want = _path_shape(node)
    if taps.ndim != 1 + len(want) or taps.shape[1:] != want:
        raise _shape_error(source, parts, "taps", ("L",) + want, taps.shape)


@CHECKS.register("sos")
def _check_sos(node, parts, source):
    sections = np.asarray(node["sections"], dtype=float)
    want = _path_shape(node)
    if sections.ndim != 2 + len(want) or sections.shape[1] != 6 or sections.shape[2:] != want:
        raise _shape_error(source, parts, "sections", ("K", 6) + want, sections.shape)
    if not np.all(sections[:, 3] == 1.0):
        raise InvalidParameterError(f"{source}: {pointer(parts + ('sections',))}: sections must be normalised (a0 = 1)")


def validate_ir(document: Any, source: str = "IR") -> dict:
    """Check an IR document fully; return it unchanged or raise an AdacError naming the field."""
    if not isinstance(document, dict):
        raise SchemaError(f"{source}: an IR document is a JSON object")
    _check_finite(document, (), source)
    check_schema(document, "ir.schema.json", source)
    major = document["version"].split(".")[0]
    if major != IR_VERSION.split(".")[0]:
        raise SchemaError(f"{source}: /version: IR version {document['version']} is not readable by this adac ({IR_VERSION})")
    graph = document["graph"]
    if (graph["in"], graph["out"]) != (document["input_channels"], document["output_channels"]):
        raise ChannelMismatchError(f"{source}: /graph: the graph has {graph['in']}->{graph['out']} channels, "
                                   f"the document declares {document['input_channels']}->{document['output_channels']}")
    seen: set[str] = set()
    for node, parts in iter_nodes(graph):
        if node["id"] in seen:
            raise SchemaError(f"{source}: {pointer(parts + ('id',))}: duplicate node id {node['id']}")
        seen.add(node["id"])
        CHECKS(node, parts, source)
    return document


def load_ir(path: str | Path) -> dict:
    """Read and validate an IR file; errors name the file."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise SchemaError(f"{path}: no such IR file") from None
    except json.JSONDecodeError as exc:
        raise SchemaError(f"{path}: line {exc.lineno}: not valid JSON ({exc.msg})") from None
    return validate_ir(document, source=str(path))


def save_ir(document: dict, path: str | Path) -> Path:
    """Validate, then write atomically."""
    validate_ir(document, source=str(path))
    return write_json_atomic(path, document)
