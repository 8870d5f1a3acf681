"""Reverberation time from an impulse response: Schroeder backward integration and a line fit.

``decay_time(h, fs, fit=(-5, -35))`` fits the energy decay curve between -5 and
-35 dB (T30) and extrapolates to 60 dB; ``(-5, -25)`` gives T20. Multichannel
responses (``(n, ...)``) use the summed energy of every path (broadband T60).
"""
from __future__ import annotations

import numpy as np

from .errors import AdacError


def energy_decay_curve(h: np.ndarray) -> np.ndarray:
    """Schroeder's backward-integrated energy, in dB relative to the total."""
    energy = np.asarray(h, dtype=float) ** 2
    if energy.ndim > 1:
        energy = energy.reshape(energy.shape[0], -1).sum(axis=1)
    remaining = np.cumsum(energy[::-1])[::-1]
    with np.errstate(divide="ignore"):
        return 10 * np.log10(remaining / remaining[0])


def decay_time(h: np.ndarray, fs: int, fit: tuple[float, float] = (-5.0, -35.0)) -> float:
    """T60 in seconds from a line fitted to the EDC between ``fit`` dB (T30 by default)."""
    edc = energy_decay_curve(h)
    hi, lo = fit
    window = np.nonzero((edc <= hi) & (edc >= lo))[0]
    if len(window) < 2 or edc[-1] > lo:
        raise AdacError(f"rt60: the response does not decay below {lo} dB within {len(edc)} samples")
    slope, _ = np.polyfit(window / fs, edc[window], 1)
    return float(-60.0 / slope)


def ir_decay_time(config: dict, fit: tuple[float, float] = (-5.0, -35.0), max_seconds: float = 60.0) -> float:
    """Broadband T60 of an IR's model, from its exact frequency response (no rendering).

    The impulse response is the inverse FFT of the transfer matrix on an FFT grid
    long enough for the energy to fall 60 dB (doubled until it does).
    """
    from .response import Realisation, response

    fs = config["fs"]
    nfft = 1 << 15
    while True:
        w = 2 * np.pi * np.arange(nfft // 2 + 1) / nfft
        h = np.fft.irfft(response(config["graph"], w, Realisation(dtype=np.float64)), n=nfft, axis=0)
        edc = energy_decay_curve(h)
        if edc[-nfft // 8] < -60 or nfft / fs >= max_seconds:
            return decay_time(h, fs, fit)
        nfft *= 2
