"""Second-order sections as the emitted code realises them (reads only the IR).

FAUST code realises a normalised section ``[b0, b1, b2, 1, a1, a2]`` as a topology-preserving
state-variable filter (``adac_svf``) whenever both poles lie strictly inside the unit circle, else in
direct form I. :func:`emitted_section` gives the section the code computes once its constants are
stored in float32 or float64: the response, the certificate and the simulation all read it.
"""
from __future__ import annotations

import math

import numpy as np


def svf_parameters(section) -> tuple[float, ...] | None:
    """TPT state-variable realisation ``(a1, a2, g, c0, c1, c2)`` of a normalised section (``adac_svf``'s arguments).

    Every section with both poles strictly inside the unit circle maps exactly:
    with ``g^2 = (1 + a1 + a2) / (1 - a1 + a2)`` and ``k = 2 (1 - a2) / (g (1 - a1 + a2))``
    its denominator is the bilinear SVF's, and the numerator splits into low-,
    band- and high-pass outputs. Returns None when no SVF exists (or its constants overflow float64).
    """
    b0, b1, b2, _a0, a1, a2 = (float(v) for v in section)
    if not (abs(a2) < 1 and abs(a1) < 1 + a2):
        return None
    g = ((1 + a1 + a2) / (1 - a1 + a2)) ** 0.5
    k = 2 * (1 - a2) / (g * (1 - a1 + a2))
    scale = 4 / (1 - a1 + a2)  # the SVF denominator's a0
    nb0, nb1, nb2 = b0 * scale, b1 * scale, b2 * scale
    m_lp, m_bp, m_hp = (nb0 + nb1 + nb2) / (4 * g * g), (nb0 - nb2) / (2 * g), (nb0 - nb1 + nb2) / 4
    a1_svf = 1 / (1 + g * (g + k))
    constants = (a1_svf, g * a1_svf, g, m_hp, m_bp - k * m_hp, m_lp - m_hp)
    if not all(math.isfinite(c) for c in constants):
        return None  # a numerator near the float64 limit overflows the SVF's gains: direct form keeps it finite
    return constants


def _svf_section(a1: float, a2: float, g: float, c0: float, c1: float, c2: float) -> np.ndarray:
    """The normalised section ``adac_svf(a1, a2, g, c0, c1, c2)`` computes, for any constants.

    State space of one tick, states ``(ic1, ic2)``: ``v1 = a1 ic1 - a2 ic2 + a2 v0``,
    ``v2 = ic2 + g v1``, next states ``2 v1 - ic1`` and ``2 v2 - ic2``; then
    ``H = D + C (zI - A)^-1 B`` written out for 2 x 2.
    """
    a = np.array([[2 * a1 - 1, -2 * a2], [2 * g * a1, 1 - 2 * g * a2]])
    b = np.array([2 * a2, 2 * g * a2])
    c = np.array([c1 * a1 + c2 * g * a1, -c1 * a2 + c2 * (1 - g * a2)])
    d = c0 + c1 * a2 + c2 * g * a2
    trace, det = a[0, 0] + a[1, 1], a[0, 0] * a[1, 1] - a[0, 1] * a[1, 0]
    constant = -c[0] * a[1, 1] * b[0] + c[0] * a[0, 1] * b[1] + c[1] * a[1, 0] * b[0] - c[1] * a[0, 0] * b[1]
    return np.array([d, -d * trace + c @ b, d * det + constant, 1.0, -trace, det])


def emitted_section(section, dtype=np.float32) -> np.ndarray:
    """The section the emitted code realises when its constants are stored in ``dtype``.

    SVF sections are rebuilt from their rounded SVF constants; direct-form ones
    from their rounded coefficients. Used by the stability certificate.
    """
    section = np.asarray(section, dtype=float)
    b0, b1, b2, _a0, a1, a2 = section
    svf = None if a1 == a2 == 0 else svf_parameters(section)
    with np.errstate(over="ignore"):  # a constant beyond dtype's range is stored as inf: so it is here too
        if svf is None:
            return np.asarray(section.astype(dtype), dtype=float)
        return _svf_section(*(float(dtype(v)) for v in svf))
