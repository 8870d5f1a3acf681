"""Frequency responses of IR nodes as the FAUST backend realises them (reads only the IR).

``response(node, w)`` evaluates the transfer matrix of a node at angular
frequencies ``w`` (rad/sample), shape ``(len(w), out, in)``: delays as exact
delays (fractional ones as the emitted Lagrange interpolator), filters with
the constants the emitted code stores (``emitted_section``), loops closed
exactly as ``(I - F G)^-1 F``. ``loop_gamma`` scales every delay inside a loop
by ``gamma^d``, as the rt60 control does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .faust_backend import emitted_section
from .fractional import DEFAULT_ORDER, lagrange


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


def diagonal_response(node: dict, w: np.ndarray, real: Realisation = Realisation(), in_loop: bool = False) -> np.ndarray:
    """Per-channel response ``(len(w), N)`` of a diagonal node (no N x N matrices)."""
    w = np.atleast_1d(np.asarray(w, dtype=float))
    kind = node["kind"]
    if kind == "gain":
        return np.broadcast_to(_rounded(node["gains"], real).astype(complex), (len(w), node["in"]))
    if kind == "delay":
        return np.stack([_delay_response(d, w, real, in_loop) for d in node["samples"]], axis=1)
    if kind == "gain_delay":
        gains = _rounded(node["gains"], real)
        return np.stack([g * _delay_response(d, w, real, in_loop) for g, d in zip(gains, node["samples"])], axis=1)
    if kind == "sos":
        sections = np.asarray(node["sections"], dtype=float)
        return np.stack([_sections_response(sections[:, :, n], w, real) for n in range(node["in"])], axis=1)
    if kind == "fir":
        taps = _rounded(node["taps"], real)
        k = np.arange(taps.shape[0])
        scale = real.loop_gamma ** k if in_loop else np.ones_like(k, dtype=float)
        return (np.exp(-1j * np.outer(w, k)) * scale) @ taps
    raise ValueError(f"{kind} is not a diagonal node kind")


def response(node: dict, w: np.ndarray, real: Realisation = Realisation(), in_loop: bool = False) -> np.ndarray:
    w = np.atleast_1d(np.asarray(w, dtype=float))
    kind, n_in, n_out = node["kind"], node["in"], node["out"]
    out = np.zeros((len(w), n_out, n_in), dtype=complex)
    if kind == "series":
        h = None
        for child in node["children"]:
            r = response(child, w, real, in_loop)
            h = r if h is None else r @ h
        return h
    if kind == "parallel":
        a, b = (response(c, w, real, in_loop) for c in node["children"])
        return a + b if node["sum_output"] else np.concatenate([a, b], axis=1)
    if kind == "recursion":
        f = response(node["feedforward"], w, real, True)
        g = response(node["feedback"], w, real, True)
        eye = np.eye(n_out)[None]
        return np.linalg.solve(eye - f @ g, f)
    if kind == "delay":
        samples = np.asarray(node["samples"], dtype=float)
        if node["diagonal"]:
            for n, d in enumerate(samples):
                out[:, n, n] = _delay_response(d, w, real, in_loop)
        else:
            for m in range(n_out):
                for n in range(n_in):
                    out[:, m, n] = _delay_response(samples[m, n], w, real, in_loop)
        return out
    if kind == "gain":
        if node["diagonal"]:
            out[:] = np.diag(_rounded(node["gains"], real))
        else:
            out[:] = _rounded(node["matrix"], real)
        return out
    if kind == "householder":
        u = _rounded(node["u"], real)
        # emitted as x - (2u)(u^T x): the rounded constants are u and 2u
        out[:] = np.eye(n_in) - np.outer(_rounded(2 * np.asarray(node["u"]), real), u)
        return out
    if kind == "fir":
        taps = _rounded(node["taps"], real)
        k = np.arange(taps.shape[0])
        scale = real.loop_gamma ** k if in_loop else np.ones_like(k, dtype=float)
        basis = np.exp(-1j * np.outer(w, k)) * scale
        if node["diagonal"]:
            h = basis @ taps  # (W, N)
            for n in range(n_in):
                out[:, n, n] = h[:, n]
            return out
        return np.einsum("wk,kmn->wmn", basis, taps)
    if kind == "sos":
        sections = np.asarray(node["sections"], dtype=float)
        if node["diagonal"]:
            for n in range(n_in):
                out[:, n, n] = _sections_response(sections[:, :, n], w, real)
        else:
            for m in range(n_out):
                for n in range(n_in):
                    out[:, m, n] = _sections_response(sections[:, :, m, n], w, real)
        return out
    if kind == "gain_delay":
        gains, samples = _rounded(node["gains"], real), np.asarray(node["samples"], dtype=float)
        if node["diagonal"]:
            for n in range(n_in):
                out[:, n, n] = gains[n] * _delay_response(samples[n], w, real, in_loop)
        else:
            for m in range(n_out):
                for n in range(n_in):
                    out[:, m, n] = gains[m, n] * _delay_response(samples[m, n], w, real, in_loop)
        return out
    raise ValueError(f"unknown node kind {kind}")
