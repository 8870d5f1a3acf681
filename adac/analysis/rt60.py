"""Reverberation time: Schroeder backward integration, T20/T30 line fits, and the trained T60 of an IR.

``decay_time(h, fs, fit=(-5, -35))`` fits the energy decay curve between -5 and
-35 dB (T30) and extrapolates to 60 dB; ``fit=T20`` (-5..-25 dB) gives T20.
Multichannel responses (``(n, ...)``) use the summed energy of every path: the
*broadband* T60 of the whole model (every output for every input).

``ir_decay_time(ir)`` is the broadband T30 of an IR's model, from an exact
float64 time-domain simulation of the IR graph (:mod:`adac.analysis.simulate`): no FAUST, no
C++ compiler and no frequency grid (a frequency-domain evaluation costs
O(N^3) per bin and gigabytes for N = 32 lines; the simulation runs in blocks as
long as each loop's latency, in O(samples)).
"""
from __future__ import annotations

import numpy as np

from ..common.errors import AdacError
from ..ir.fractional import DEFAULT_ORDER
from .simulate import Simulation

T30 = (-5.0, -35.0)
T20 = (-5.0, -25.0)


def energy_decay_curve(h: np.ndarray) -> np.ndarray:
    """Schroeder's backward-integrated energy, in dB relative to the total (axis 0 is time)."""
    energy = np.asarray(h, dtype=float) ** 2
    if energy.ndim > 1:
        energy = energy.reshape(energy.shape[0], -1).sum(axis=1)
    remaining = np.cumsum(energy[::-1])[::-1]
    with np.errstate(divide="ignore"):
        return 10 * np.log10(remaining / remaining[0])


def decay_time(h: np.ndarray, fs: int, fit: tuple[float, float] = T30) -> float:
    """T60 in seconds from a least-squares line fitted to the EDC between ``fit`` dB (T30 by default)."""
    edc = energy_decay_curve(h)
    hi, lo = fit
    window = np.nonzero((edc <= hi) & (edc >= lo))[0]
    if len(window) < 2 or edc[-1] > lo:
        raise AdacError(f"rt60: the response does not decay below {lo} dB within {len(edc)} samples "
                        f"({len(edc) / fs:.3g} s)")
    slope, _ = np.polyfit(window / fs, edc[window], 1)
    return float(-60.0 / slope)


def ir_decay_time(ir: dict, fit: tuple[float, float] = T30, max_seconds: float = 60.0,
                  tail_db: float = -75.0, fractional_order: int = DEFAULT_ORDER) -> float:
    """Broadband T60 (T30 by default) of an IR's model, from its simulated impulse responses.

    The simulation runs on, one second at a time, until the energy of the last
    100 ms lies ``tail_db`` below the total (the truncated tail then shifts the
    EDC by far less than the fit needs), or ``max_seconds`` (a model that does
    not decay raises an AdacError).
    """
    fs = ir["fs"]
    sim = Simulation(ir, fractional_order)
    chunk, window = fs, max(1, fs // 10)
    parts = []
    energy_total, loudest = 0.0, 0.0  # loudest: the most energetic 100 ms window of the blocks before
    while True:
        block = sim.next(chunk)
        parts.append(block)
        energy = (block.reshape(chunk, -1) ** 2).sum(axis=1)
        energy_total += float(energy.sum())
        tail = float(energy[-window:].sum())
        seconds = len(parts) * chunk / fs
        if not np.isfinite(energy_total):
            raise AdacError(f"rt60: the model of {ir.get('name')!r} grows without bound within {seconds:g} s "
                            "(an unstable loop has no reverberation time)")
        if energy_total > 0 and tail <= energy_total * 10 ** (tail_db / 10):
            return decay_time(np.concatenate(parts), fs, fit)
        if energy_total == 0:
            raise AdacError(f"rt60: the model of {ir.get('name')!r} has a zero impulse response")
        windows = energy[: chunk // window * window].reshape(-1, window).sum(axis=1)
        if len(parts) > 1 and tail >= loudest:  # growing: stop now, not after 60 s
            raise AdacError(f"rt60: the model of {ir.get('name')!r} does not decay: its last 100 ms after "
                            f"{seconds:g} s carry as much energy as its loudest 100 ms before "
                            "(a lossless or growing loop has no finite reverberation time)")
        loudest = max(float(windows.max()), loudest)
        if seconds >= max_seconds:
            raise AdacError(f"rt60: the model of {ir.get('name')!r} does not decay {-tail_db:.0f} dB within "
                            f"{max_seconds:g} s (a lossless or unstable loop has no finite reverberation time)")


__all__ = ["T20", "T30", "energy_decay_curve", "decay_time", "ir_decay_time"]
