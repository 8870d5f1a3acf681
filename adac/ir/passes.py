"""Graph passes every backend shares (they read and return IR graphs, never change their argument).

* :func:`fold_gains`: neighbouring gain nodes of a series folded into one product (outside loops).
* :func:`take_unit_delay`: one sample of delay taken out of every channel of a path, for loops whose
  realisation supplies that sample itself (FAUST's ``~``). It returns the shortened path and, per
  node id, how many samples were taken from it: the pass-private count stays out of the document.
* :func:`is_delay_bank`: integer delay lines, one per channel, each at least one sample long (an FDN's
  feedforward path).
* :func:`check_loops_realisable`: every loop has a delay of at least one sample on every channel of its
  feedback or feedforward path (else it cannot run sample by sample); the backend and the certificate
  give the same answer.
"""
from __future__ import annotations

import copy

import numpy as np

from ..common.errors import AdacError
from .document import iter_nodes
from .hadamard import hadamard_form
from .kinds import KindTable


def _as_matrix(node: dict) -> np.ndarray:
    return np.diag(node["gains"]) if node["diagonal"] else np.asarray(node["matrix"], dtype=float)


def _foldable(a: dict, b: dict) -> bool:
    """Two neighbouring gain nodes that one product can replace at no extra cost."""
    if a["kind"] != "gain" or b["kind"] != "gain":
        return False
    if a["diagonal"] and b["diagonal"]:
        return True
    dense = [n for n in (a, b) if not n["diagonal"]]
    if len(dense) != 1:
        return False
    if hadamard_form(dense[0]["matrix"]) is not None:
        # a Hadamard matrix keeps its fast form with the diagonal as its row (or column) factors;
        # a zero gain would turn it into a dense matrix with a zero row
        return all(g != 0 for g in (a if a["diagonal"] else b)["gains"])
    return True


def fold_gains(node: dict) -> dict:
    """The graph with neighbouring gain nodes of every series folded into one (recursively).

    Loops are left as they are: there a per-line gain saves only N of the matrix's N^2
    products, and next to its delay line it lets the certificate bound each line's decay
    on its own (see adac.certificate).
    """
    if node["kind"] == "recursion":
        return node
    out = dict(node)
    if "children" in node:
        children = [fold_gains(c) for c in node["children"]]
        if node["kind"] == "series":
            merged = [children[0]]
            for child in children[1:]:
                prev = merged[-1]
                if _foldable(prev, child):
                    product = _as_matrix(child) @ _as_matrix(prev)  # prev acts first
                    both_diagonal = prev["diagonal"] and child["diagonal"]
                    merged[-1] = {"id": prev["id"], "kind": "gain", "path": f"{prev.get('path', '')}+{child.get('path', '')}",
                                  "in": prev["in"], "out": child["out"], "diagonal": both_diagonal,
                                  **({"gains": np.diag(product).tolist()} if both_diagonal else {"matrix": product.tolist()})}
                else:
                    merged.append(child)
            children = merged
        out["children"] = children
    return out


def is_delay_bank(node: dict) -> bool:
    """Integer delay lines, one per channel, each at least one sample long."""
    if node["kind"] != "delay" or not node["diagonal"]:
        return False
    samples = np.asarray(node["samples"], dtype=float)
    return bool(np.all(samples >= 1) and np.all(samples == np.round(samples)))


# --- loop compensation: take one sample out of a delay on every channel of a path -----------------

SHORTEN = KindTable("loop compensation")


def _min_delay(node: dict) -> float:
    if "samples" in node:
        return float(np.min(node["samples"]))
    return 1.0


@SHORTEN.register("delay", "gain_delay")
def _shorten_delay(node):
    samples = np.asarray(node["samples"], dtype=float)
    if samples.min() < 1:
        return None
    out = copy.deepcopy(node)
    out["samples"] = (samples - 1).tolist()
    return out, {node["id"]: 1}


@SHORTEN.register("fir")
def _shorten_fir(node):
    taps = np.asarray(node["taps"], dtype=float)
    if taps.shape[0] < 2 or np.any(taps[0] != 0):
        return None
    out = copy.deepcopy(node)
    out["taps"] = taps[1:].tolist()
    return out, {node["id"]: 1}


@SHORTEN.register("series")
def _shorten_series(node):
    # the child with the longest shortest delay keeps the most room for interpolators
    candidates = [(i, SHORTEN(c)) for i, c in enumerate(node["children"])]
    candidates = [(i, c) for i, c in candidates if c is not None]
    if not candidates:
        return None
    i, (child, taken) = max(candidates, key=lambda ic: _min_delay(node["children"][ic[0]]))
    out = copy.copy(node)
    out["children"] = list(node["children"])
    out["children"][i] = child
    return out, taken


@SHORTEN.register("parallel")
def _shorten_parallel(node):
    shortened = [SHORTEN(c) for c in node["children"]]
    if any(s is None for s in shortened):
        return None
    out = copy.copy(node)
    out["children"] = [child for child, _ in shortened]
    return out, {k: v for _, taken in shortened for k, v in taken.items()}


@SHORTEN.register("recursion", "gain", "householder", "sos")
def _no_delay_to_give(node):
    return None  # a loop's own output, memoryless gains and IIR sections have no pure delay to take from


def take_unit_delay(node: dict) -> tuple[dict, dict[str, int]] | None:
    """``(node with one sample of delay removed from every channel, {node id: samples taken})``, or None
    if the path has no such delay. The loop's own sample still belongs to the shortened elements (an rt60
    control decays it with them)."""
    return SHORTEN(node)


def delay_free_error(node: dict) -> AdacError:
    """The error for a loop that neither path can give one sample of delay to (one message everywhere)."""
    return AdacError(f"{node.get('path') or '<root>'}: delay-free loop: neither the feedback nor the feedforward path "
                     "has a delay of at least one sample on every channel, so the loop cannot run sample by sample")


def check_loops_realisable(graph: dict) -> None:
    """Raise :func:`delay_free_error` for the first loop (pre-order, nested ones too) that has no delay of at
    least one sample on every channel of its feedback or its feedforward path."""
    for node, _ in iter_nodes(graph):
        if node["kind"] == "recursion" and take_unit_delay(node["feedback"]) is None \
                and take_unit_delay(node["feedforward"]) is None:
            raise delay_free_error(node)
