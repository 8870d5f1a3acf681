"""Norm bounds of IR nodes over frequency, one row per IR kind (:data:`BOUNDS`); the certificate multiplies them."""
from __future__ import annotations

import numpy as np

from ..analysis.response import Realisation, diagonal_response, response
from ..ir import KindTable

BOUNDS = KindTable("certificate bound")


def _spectral_norm(h: np.ndarray) -> np.ndarray:
    """Largest singular value at each frequency; infinite where the response is not finite (a constant beyond
    the precision's range rounds to inf: that element has no bound, and the loop is indeterminate)."""
    norms = np.full(h.shape[0], np.inf)
    finite = np.isfinite(h).all(axis=(1, 2))
    if h.shape[1] == 1 or h.shape[2] == 1:
        with np.errstate(over="ignore"):
            norms[finite] = np.sqrt((np.abs(h[finite]) ** 2).sum(axis=(1, 2)))
    elif finite.any():
        norms[finite] = np.linalg.norm(h[finite], ord=2, axis=(1, 2))
    return norms


FREQUENCY_INDEPENDENT = ("gain", "householder")


def _leaf_bound(node, w, real, in_loop):
    if node["kind"] in FREQUENCY_INDEPENDENT:  # one evaluation serves every frequency
        return np.full(len(w), _spectral_norm(response(node, w[:1], real, in_loop))[0])
    return _spectral_norm(response(node, w, real, in_loop))


def _diag_abs(node, w, real, in_loop):
    # diagonal nodes: the norm is the largest channel gain
    if node["kind"] in FREQUENCY_INDEPENDENT:
        return np.full(len(w), np.abs(np.asarray(node["gains"], dtype=float).astype(real.dtype)).max())
    return np.abs(diagonal_response(node, w, real, in_loop)).max(axis=1)


def _series_bound(node, w, real, in_loop):
    total = np.ones(len(w))
    for child in node["children"]:
        total = total * bound(child, w, real, in_loop)
    return total


def _parallel_bound(node, w, real, in_loop):
    a, b = (bound(c, w, real, in_loop) for c in node["children"])
    return a + b if node["sum_output"] else np.sqrt(a * a + b * b)


def _recursion_bound(node, w, real, in_loop):
    f = bound(node["feedforward"], w, real, True)
    g = bound(node["feedback"], w, real, True)
    loop = f * g
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(loop < 1, f / (1 - loop), np.inf)


def _diagonal_or_leaf(node, w, real, in_loop):
    return (_diag_abs if node.get("diagonal") else _leaf_bound)(node, w, real, in_loop)


BOUNDS.register("series")(_series_bound)
BOUNDS.register("parallel")(_parallel_bound)
BOUNDS.register("recursion")(_recursion_bound)
# delays: |e^{-jwd}| = 1 (gamma^d inside loops with an rt60 control); gains: max |g| or the matrix's
# spectral norm; sos: the cascade's peak gain, never counted as 1
BOUNDS.register("delay", "gain", "fir", "sos", "gain_delay")(_diagonal_or_leaf)
BOUNDS.register("householder")(_leaf_bound)  # 1 up to the rounding of u


def bound(node: dict, w: np.ndarray, real: Realisation, in_loop: bool = False) -> np.ndarray:
    """Upper bound of the spectral norm of ``node``'s transfer matrix at each frequency of ``w``."""
    return BOUNDS(node, w, real, in_loop)


