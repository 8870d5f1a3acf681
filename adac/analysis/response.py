"""Frequency responses of IR nodes as the FAUST backend realises them (reads only the IR).

``response(node, w)`` evaluates the transfer matrix of a node at angular
frequencies ``w`` (rad/sample), shape ``(len(w), out, in)``: delays as exact
delays (fractional ones as the emitted Lagrange interpolator), filters with
the constants the emitted code stores (``emitted_section``), loops closed
exactly as ``(I - F G)^-1 F``. ``loop_gamma`` scales every delay inside a loop
by ``gamma^d``, as the rt60 control does. ``diagonal_response`` gives the per-channel
responses of a diagonal node without N x N matrices. Each IR kind is one row of :data:`RESPONSE`
(and of :data:`DIAGONAL_RESPONSE` when it may be diagonal).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ir import KindTable
from ..ir.fractional import DEFAULT_ORDER, lagrange
from ..ir.sections import emitted_section


@dataclass(frozen=True)
class Realisation:
    dtype: type = np.float32  # precision of the emitted constants
    fractional_order: int = DEFAULT_ORDER
    loop_gamma: float = 1.0


def _rounded(values, real: Realisation) -> np.ndarray:
    return np.asarray(values, dtype=float).astype(real.dtype).astype(float)


def _delay_response(d: float, w: np.ndarray, real: Realisation, in_loop: bool) -> np.ndarray:
    scale = real.loop_gamma ** d if in_loop else 1.0
    if d == round(d):
        return scale * np.exp(-1j * w * d)
    base, taps = lagrange(float(d), real.fractional_order)
    taps = _rounded(taps, real)
    k = np.arange(len(taps)) + base
    return scale * (np.exp(-1j * np.outer(w, k)) @ taps)


def _sections_response(sections: np.ndarray, w: np.ndarray, real: Realisation) -> np.ndarray:
    z1 = np.exp(-1j * w)
    h = np.ones_like(z1)
    for section in sections:
        b0, b1, b2, _a0, a1, a2 = emitted_section(section, real.dtype)
        h = h * (b0 + b1 * z1 + b2 * z1 * z1) / (1 + a1 * z1 + a2 * z1 * z1)
    return h


RESPONSE = KindTable("frequency response")
DIAGONAL_RESPONSE = KindTable("per-channel frequency response", covers="diagonal")


def _fir_basis(n_taps: int, w: np.ndarray, real: Realisation, in_loop: bool) -> np.ndarray:
    k = np.arange(n_taps)
    scale = real.loop_gamma ** k if in_loop else np.ones(n_taps)
    return np.exp(-1j * np.outer(w, k)) * scale


@DIAGONAL_RESPONSE.register("gain")
def _gain_diagonal(node, w, real, in_loop):
    return np.broadcast_to(_rounded(node["gains"], real).astype(complex), (len(w), node["in"]))


@DIAGONAL_RESPONSE.register("delay")
def _delay_diagonal(node, w, real, in_loop):
    return np.stack([_delay_response(d, w, real, in_loop) for d in node["samples"]], axis=1)


@DIAGONAL_RESPONSE.register("gain_delay")
def _gain_delay_diagonal(node, w, real, in_loop):
    gains = _rounded(node["gains"], real)
    return np.stack([g * _delay_response(d, w, real, in_loop) for g, d in zip(gains, node["samples"])], axis=1)


@DIAGONAL_RESPONSE.register("sos")
def _sos_diagonal(node, w, real, in_loop):
    sections = np.asarray(node["sections"], dtype=float)
    return np.stack([_sections_response(sections[:, :, n], w, real) for n in range(node["in"])], axis=1)


@DIAGONAL_RESPONSE.register("fir")
def _fir_diagonal(node, w, real, in_loop):
    taps = _rounded(node["taps"], real)
    return _fir_basis(taps.shape[0], w, real, in_loop) @ taps


def diagonal_response(node: dict, w: np.ndarray, real: Realisation = Realisation(), in_loop: bool = False) -> np.ndarray:
    """Per-channel response ``(len(w), N)`` of a diagonal node (no N x N matrices)."""
    return DIAGONAL_RESPONSE(node, np.atleast_1d(np.asarray(w, dtype=float)), real, in_loop)


def response(node: dict, w: np.ndarray, real: Realisation = Realisation(), in_loop: bool = False) -> np.ndarray:
    """Transfer matrix ``(len(w), out, in)`` of a node at angular frequencies ``w`` (rad/sample)."""
    w = np.atleast_1d(np.asarray(w, dtype=float))
    if node.get("diagonal") and node["kind"] in DIAGONAL_RESPONSE.rules:
        h = diagonal_response(node, w, real, in_loop)
        out = np.zeros((len(w), node["out"], node["in"]), dtype=complex)
        index = np.arange(node["in"])
        out[:, index, index] = h
        return out
    return RESPONSE(node, w, real, in_loop)


@RESPONSE.register("series")
def _series_response(node, w, real, in_loop):
    h = None
    for child in node["children"]:
        r = response(child, w, real, in_loop)
        h = r if h is None else r @ h
    return h


@RESPONSE.register("parallel")
def _parallel_response(node, w, real, in_loop):
    a, b = (response(c, w, real, in_loop) for c in node["children"])
    return a + b if node["sum_output"] else np.concatenate([a, b], axis=1)


@RESPONSE.register("recursion")
def _recursion_response(node, w, real, in_loop):
    f = response(node["feedforward"], w, real, True)
    g = response(node["feedback"], w, real, True)
    eye = np.eye(node["out"])[None]
    return np.linalg.solve(eye - f @ g, f)


def _per_path(node, w, path_response) -> np.ndarray:
    """``(len(w), out, in)`` from ``path_response(m, n)`` of each path of a non-diagonal node."""
    out = np.zeros((len(w), node["out"], node["in"]), dtype=complex)
    for m in range(node["out"]):
        for n in range(node["in"]):
            out[:, m, n] = path_response(m, n)
    return out


@RESPONSE.register("delay")
def _delay_matrix(node, w, real, in_loop):
    samples = np.asarray(node["samples"], dtype=float)
    return _per_path(node, w, lambda m, n: _delay_response(samples[m, n], w, real, in_loop))


@RESPONSE.register("gain_delay")
def _gain_delay_matrix(node, w, real, in_loop):
    gains, samples = _rounded(node["gains"], real), np.asarray(node["samples"], dtype=float)
    return _per_path(node, w, lambda m, n: gains[m, n] * _delay_response(samples[m, n], w, real, in_loop))


@RESPONSE.register("gain")
def _gain_matrix(node, w, real, in_loop):
    return np.broadcast_to(_rounded(node["matrix"], real).astype(complex), (len(w), node["out"], node["in"])).copy()


@RESPONSE.register("householder")
def _householder_matrix(node, w, real, in_loop):
    u = _rounded(node["u"], real)
    # emitted as x - (2u)(u^T x): the rounded constants are u and 2u
    matrix = np.eye(node["in"]) - np.outer(_rounded(2 * np.asarray(node["u"]), real), u)
    return np.broadcast_to(matrix.astype(complex), (len(w), node["out"], node["in"])).copy()


@RESPONSE.register("fir")
def _fir_matrix(node, w, real, in_loop):
    taps = _rounded(node["taps"], real)
    return np.einsum("wk,kmn->wmn", _fir_basis(taps.shape[0], w, real, in_loop), taps)


@RESPONSE.register("sos")
def _sos_matrix(node, w, real, in_loop):
    sections = np.asarray(node["sections"], dtype=float)
    return _per_path(node, w, lambda m, n: _sections_response(sections[:, :, m, n], w, real))
