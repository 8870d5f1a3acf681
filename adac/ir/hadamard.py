"""Hadamard structure of a matrix, detected from its values (the fast transform's factors)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import hadamard

HADAMARD_RTOL = 1e-12  # the fast form is used only when it reproduces the matrix to double precision


@dataclass(frozen=True)
class HadamardForm:
    """``matrix[a, b] == row[a] * col[b] * H[pi[a], sigma[b]]``, ``H`` Sylvester's Hadamard matrix (+-1 entries)."""

    row: np.ndarray
    col: np.ndarray
    pi: np.ndarray
    sigma: np.ndarray


def _sylvester_labels(signs: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """``(pi, sigma)`` with ``signs == H[pi][:, sigma]``, or None; ``signs``' first row and column are +1.

    The rows of a matrix equal to Sylvester's ``H`` up to row and column permutations form
    the group Z_2^k under elementwise products: k = log2(n) generator rows fix the row
    labels (bit m for generator m), and the generators' signs in a column give its label.
    """
    n = signs.shape[0]
    k = n.bit_length() - 1
    span = {signs[0].tobytes(): 0}
    generators: list[int] = []
    for a in range(1, n):
        if signs[a].tobytes() in span:
            continue
        if len(generators) == k:
            return None
        bit = 1 << len(generators)
        generators.append(a)
        span.update({(np.frombuffer(v, dtype=signs.dtype) * signs[a]).tobytes(): mask | bit for v, mask in list(span.items())})
    if len(span) != n:
        return None
    pi = np.array([span.get(signs[a].tobytes(), -1) for a in range(n)])
    sigma = np.zeros(n, dtype=int)
    for m, g in enumerate(generators):
        sigma |= (signs[g] < 0).astype(int) << m
    if sorted(pi) != list(range(n)) or sorted(sigma) != list(range(n)):
        return None
    if not np.array_equal(hadamard(n)[np.ix_(pi, sigma)], signs):
        return None
    return pi, sigma


def hadamard_form(matrix) -> HadamardForm | None:
    """The fast-transform factors of ``matrix``, detected from its values, or None.

    Accepts any square matrix equal, to ``HADAMARD_RTOL`` relative, to Sylvester's
    Hadamard matrix with rows and columns permuted and scaled by nonzero factors
    (signs, ``1/sqrt(N)``, folded diagonal gains): FLAMO's ``hadamard`` Matrix, but also
    a signed or reordered one written out as a dense matrix. The factors are
    normalised so that one side is +-1 whenever the matrix allows it: the scaling
    costs N multiplications (on the outputs, or on the inputs for ``H diag(g)``)
    and sign flips.
    """
    m = np.asarray(matrix, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        return None
    n = m.shape[0]
    if n < 2 or n & (n - 1) or not np.all(np.isfinite(m)) or np.any(m == 0):
        return None
    row = m[:, 0] * np.sign(m[0, 0])
    col = m[0] / abs(m[0, 0])
    if np.all(np.abs(row) == abs(row[0])) and not np.all(np.abs(col) == 1):
        row, col = np.sign(row), col * abs(row[0])  # column gains (H diag(g)): scale the inputs, not both sides
    ratio = m / np.outer(row, col)
    if np.abs(np.abs(ratio) - 1).max() > HADAMARD_RTOL:
        return None
    signs = np.where(ratio > 0, 1, -1).astype(np.int8)
    labels = _sylvester_labels(signs)
    if labels is None:
        return None
    pi, sigma = labels
    if not np.allclose(np.outer(row, col) * hadamard(n)[np.ix_(pi, sigma)], m, rtol=HADAMARD_RTOL, atol=0):
        return None
    return HadamardForm(row=row, col=col, pi=pi, sigma=sigma)
