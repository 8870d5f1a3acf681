"""The adac IR: the contract between the FLAMO frontend and every backend.

An IR document is JSON, validated against ``schemas/ir.schema.json`` (structure)
and by :func:`validate_ir` (what a schema cannot say: channel arities, finite
values, non-negative delays). Errors name the JSON pointer of the bad field.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..common.errors import ChannelMismatchError, InvalidParameterError, SchemaError
from ..common.fileio import check_bounds, read_json, write_json_atomic
from ..common.schema import check_schema, load_schema, pointer
from .kinds import KindTable, schema_kinds

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


MAX_DEPTH = 100  # nesting of a document (lists and objects), as adac.common.fileio.read_json bounds files
NUMERIC_FIELDS = ("samples", "gains", "matrix", "u", "taps", "sections")  # rectangular arrays of numbers


def _check_arrays(document: dict, source: str) -> None:
    """Every numeric field of every node is a rectangular array of numbers, before numpy sees it
    (iteratively: the depth is bounded, but not yet the shape of the graph)."""
    stack = [(document.get("graph"), ("graph",))]
    while stack:
        node, parts = stack.pop()
        if not isinstance(node, dict):
            continue  # the schema names what is wrong
        for key, value in node.items():
            if key == "children" and isinstance(value, list):
                stack.extend((child, parts + (key, i)) for i, child in enumerate(value))
            elif key in ("feedforward", "feedback"):
                stack.append((value, parts + (key,)))
            elif key in NUMERIC_FIELDS and isinstance(value, list):
                _shape(value, parts + (key,), source)


def _shape(value: Any, parts: tuple, source: str) -> tuple:
    if isinstance(value, list):
        shapes = [_shape(v, parts + (i,), source) for i, v in enumerate(value)]
        for i, other in enumerate(shapes):
            if other != shapes[0]:
                raise SchemaError(f"{source}: {pointer(parts)}: ragged array: item {i} has shape {other}, "
                                  f"item 0 has shape {shapes[0]}")
        return (len(value),) + (shapes[0] if shapes else ())
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise SchemaError(f"{source}: {pointer(parts)}: {json.dumps(value)[:40]} is not a number")
    return ()


def _check_declared_fields(node: dict, parts: tuple, source: str) -> None:
    """Every field of a node is declared by the schema (its kind's $def or the fields every node has):
    pass-private data stays out of the document. Checked here, per node, rather than with the schema's
    ``unevaluatedProperties``, whose cost grows exponentially with the nesting of ``oneOf`` nodes."""
    declared = set(load_schema("ir.schema.json")["$defs"]["common"]["properties"])
    declared |= set(schema_kinds()[node["kind"]]["properties"])
    unknown = sorted(set(node) - declared)
    if unknown:
        raise SchemaError(f"{source}: {pointer(parts)} ({node.get('path') or 'root'}): undeclared field(s) "
                          f"{', '.join(repr(u) for u in unknown)} (a {node['kind']} node has {', '.join(sorted(declared))})")


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


# Bounds on what the emitted code allocates, unless raised (json_to_faust/certify ``delay_limits=``, the
# manifest's ``delay_limits``): every delay line is a buffer of its length, in every instance of the plugin.
MAX_DELAY_SAMPLES = 1 << 22  # one delay: 4194304 samples (87 s at 48 kHz, 16 MB in float32)
MAX_DELAY_MEMORY = 1 << 25  # every delay, FIR tap line and fractional interpolator together (128 MB in float32)
FAUST_MAX_DELAY = (1 << 31) - 1  # FAUST's delay lengths are 32-bit integers: no override goes beyond


def _delay_paths(node: dict) -> np.ndarray:
    if node["kind"] in ("delay", "gain_delay"):
        return np.ravel(np.asarray(node["samples"], dtype=float))
    if node["kind"] == "fir":
        taps = np.asarray(node["taps"], dtype=float)
        return np.full(int(np.prod(taps.shape[1:])), float(taps.shape[0] - 1))
    return np.zeros(0)


def delay_limits(limits: dict | None) -> tuple[int, int]:
    """``(max_samples, max_memory)`` from ``{"max_samples": .., "max_memory": ..}`` (either may be left out)."""
    limits = dict(limits or {})
    unknown = set(limits) - {"max_samples", "max_memory"}
    if unknown:
        raise InvalidParameterError(f"delay_limits: unknown field(s) {', '.join(sorted(unknown))} "
                                    "(known: max_samples, max_memory)")
    out = []
    for name, default in (("max_samples", MAX_DELAY_SAMPLES), ("max_memory", MAX_DELAY_MEMORY)):
        value = limits.get(name, default) or default
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise InvalidParameterError(f"delay_limits.{name}: a positive integer number of samples, got {value!r}")
        if name == "max_samples" and value > FAUST_MAX_DELAY:
            raise InvalidParameterError(f"delay_limits.max_samples: {value} is above {FAUST_MAX_DELAY}, the longest "
                                        "delay FAUST can compile (its delay lengths are 32-bit integers)")
        out.append(int(value))
    return out[0], out[1]


def check_delay_limits(document: dict, limits: dict | None = None, source: str = "IR") -> None:
    """Refuse delays longer than ``max_samples`` and delay memory above ``max_memory`` samples in total
    (defaults :data:`MAX_DELAY_SAMPLES`, :data:`MAX_DELAY_MEMORY`), before anything allocates them."""
    max_samples, max_memory = delay_limits(limits)
    fs, total = document.get("fs") or 1, 0.0
    hint = "(delay_limits.max_samples / max_memory in the manifest, or json_to_faust/certify(delay_limits=...), raise it)"
    for node, parts in iter_nodes(document["graph"]):
        lengths = _delay_paths(node)
        if not len(lengths):
            continue
        longest = float(lengths.max())
        if longest > max_samples:
            field = "taps" if node["kind"] == "fir" else "samples"
            raise InvalidParameterError(
                f"{source}: {pointer(parts + (field,))} ({node.get('path') or 'root'}): a delay of {longest:.6g} samples "
                f"({longest / fs:.6g} s at {fs} Hz) is above the limit of {max_samples} samples {hint}")
        total += float(np.ceil(lengths).sum()) + len(lengths)
    if total > max_memory:
        raise InvalidParameterError(
            f"{source}: total delay memory of {total:.6g} samples ({total * 4 / 2 ** 20:.4g} MB in float32 per instance) "
            f"is above the limit of {max_memory} samples {hint}")


def validate_ir(document: Any, source: str = "IR") -> dict:
    """Check an IR document fully; return it unchanged or raise an AdacError naming the field."""
    if not isinstance(document, dict):
        raise SchemaError(f"{source}: an IR document is a JSON object")
    check_bounds(document, source, MAX_DEPTH)
    _check_arrays(document, source)
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
        _check_declared_fields(node, parts, source)
        CHECKS(node, parts, source)
    return document


def load_ir(path: str | Path) -> dict:
    """Read and validate an IR file; errors name the file (and the line or the field's JSON pointer).

    Reading is bounded (:func:`adac.common.fileio.read_json`: a directory, bytes that are not UTF-8,
    numbers no float holds, nesting deeper than 100 levels are errors), and :func:`validate_ir` checks
    every array a node holds is a rectangular array of numbers before numpy sees it.
    """
    path = Path(path)
    return validate_ir(read_json(path, "IR file"), source=str(path))


def save_ir(document: dict, path: str | Path) -> Path:
    """Validate, then write atomically."""
    validate_ir(document, source=str(path))
    return write_json_atomic(path, document)
