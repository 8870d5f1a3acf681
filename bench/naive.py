"""The naive emission: the floor the compiled code has to beat.

Every matrix (dense, Householder, Hadamard) becomes N dense sums of N products, and
nothing is folded (per-line gains stay a separate stage). Everything else (delays,
filters, loops) is adac's own emission, so the difference is the matrix forms alone.
"""
from __future__ import annotations

from unittest import mock

import numpy as np

import adac
import adac.backends.faust as backend
from adac.backends.faust import emit as fb


def _dense_rows(matrix: np.ndarray, n_in: int) -> str:
    return fb._rows([[fb._gain_expr(float(g)) for g in row] for row in matrix], n_in)


def _naive_gain(node, ctx):
    if node["diagonal"]:
        return fb._diagonal([fb._gain_expr(g) for g in node["gains"]])
    return _dense_rows(np.asarray(node["matrix"], dtype=float), node["in"])


def _naive_householder(node, ctx):
    u = np.asarray(node["u"], dtype=float)
    return _dense_rows(np.eye(len(u)) - 2 * np.outer(u, u), node["in"])


def naive_faust(ir: dict) -> str:
    """FAUST source for ``ir`` with dense matrices and no folding."""
    with mock.patch.dict(fb.EMIT.rules, gain=_naive_gain, householder=_naive_householder), \
            mock.patch.object(backend, "fold_gains", lambda graph: graph):
        return adac.json_to_faust(ir)
