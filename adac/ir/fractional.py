"""Fractional delays: FLAMO's ideal delay versus its time-domain realisation.

FLAMO's fractional delay is ``exp(-j w d)`` sampled on the rfft grid: an ideal,
band-limited (circular) shift that no causal finite filter reproduces exactly.
adac realises it as an integer delay followed by a Lagrange interpolator of odd
order ``P`` whose own delay is kept in the centred range ``[(P-1)/2, (P+1)/2]``,
where Lagrange interpolation is most accurate. The error against the ideal
delay grows towards Nyquist; :func:`lagrange_band_errors` measures it per band.
"""
from __future__ import annotations

import math

import numpy as np

DEFAULT_ORDER = 15


def lagrange(delay: float, order: int = DEFAULT_ORDER) -> tuple[int, np.ndarray]:
    """Split ``delay`` (samples) into an integer pre-delay and Lagrange FIR taps.

    Returns ``(integer_delay, taps)`` with ``len(taps) == order + 1`` such that
    ``integer_delay + lagrange_delay(taps) == delay``.
    """
    if delay < 0:
        raise ValueError("negative delay")
    centre = (order - 1) / 2
    base = max(0, math.floor(delay - centre))
    frac = delay - base
    k = np.arange(order + 1)
    taps = np.ones(order + 1)
    for i in range(order + 1):
        others = k != i
        taps[i] = np.prod((frac - k[others]) / (i - k[others]))
    return base, taps


def lagrange_response(delay: float, order: int, omega: np.ndarray) -> np.ndarray:
    """Frequency response of the interpolator :func:`lagrange` realises for ``delay``, at angular frequencies ``omega``."""
    base, taps = lagrange(delay, order)
    k = np.arange(len(taps)) + base
    return np.exp(-1j * np.outer(omega, k)) @ taps


def lagrange_band_errors(delay: float, order: int = DEFAULT_ORDER, bands=((0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 0.9), (0.9, 1.0)),
                points: int = 2048) -> list[dict]:
    """Max |H(e^jw) - e^{-jwd}| per band of normalised frequency (1.0 = Nyquist)."""
    out = []
    for lo, hi in bands:
        omega = np.linspace(lo * np.pi, hi * np.pi, points)
        err = np.abs(lagrange_response(delay, order, omega) - np.exp(-1j * omega * delay))
        out.append({"band": [lo, hi], "max_abs_error": float(err.max())})
    return out
