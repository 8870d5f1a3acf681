"""A reverb's response per octave: T30 and energy per octave band, the spectral centroid, and the comparison of
two responses of one model at one rate (what the sample-rate targets of docs/sample_rate.md are measured with):
:func:`at_rate` is a model's response at another rate, :func:`band_limited` keeps what lies below a frequency.

Octave bands are fourth-order Butterworth band-passes (``scipy.signal.butter``, second-order sections) around
the centres 125 Hz .. 8 kHz, edges at ``centre / sqrt(2)`` and ``centre * sqrt(2)``; T30 per band is
:func:`adac.analysis.rt60.decay_time` of the band-passed response.
"""
from __future__ import annotations

from math import gcd

import numpy as np
from scipy import signal

from ..common.errors import AdacError
from .rt60 import decay_time

OCTAVES = (125, 250, 500, 1000, 2000, 4000, 8000)
CENTROID_SECONDS = 0.5


def at_rate(response: np.ndarray, fs0: int, fs: int) -> np.ndarray:
    """A response at ``fs0`` resampled to ``fs`` (time on axis 0) and scaled by ``fs0 / fs``: the same continuous
    system's response at ``fs`` (a unit impulse at ``fs`` carries ``fs0 / fs`` of the one at ``fs0``).

    ``scipy.signal.resample_poly`` with a long filter (Kaiser, beta 14, 64 zero crossings a side): scipy's
    default (beta 5, 10 zero crossings) is itself 0.3 % of the peak off below 0.9 x Nyquist."""
    g = gcd(fs, fs0)
    longest = max(fs, fs0) // g
    taps = signal.firwin(2 * 64 * longest + 1, 1.0 / longest, window=("kaiser", 14.0))
    return signal.resample_poly(response, fs // g, fs0 // g, axis=0, window=taps) * fs0 / fs


def band_limited(x: np.ndarray, fs: int, edge: float) -> np.ndarray:
    """``x`` (time on axis 0) low-passed below ``edge`` Hz by a linear-phase FIR (Kaiser, 20 ms: flat up to
    ``edge`` - 400 Hz, about 120 dB down at ``edge``), aligned (``same``)."""
    h = signal.firwin(2 * (fs // 100) + 1, edge - 200, fs=fs, window=("kaiser", 12.0))
    return signal.fftconvolve(x, h.reshape((-1,) + (1,) * (x.ndim - 1)), mode="same", axes=0)


def octave_band(h: np.ndarray, fs: int, centre: float) -> np.ndarray:
    """``h`` (time on axis 0, any further axes: paths) band-passed to the octave around ``centre`` Hz."""
    sos = signal.butter(4, [centre / np.sqrt(2), centre * np.sqrt(2)], btype="bandpass", fs=fs, output="sos")
    return signal.sosfilt(sos, np.asarray(h, dtype=float), axis=0)


def octave_t30(h: np.ndarray, fs: int, octaves=OCTAVES, *, undecayed: str = "raise") -> dict[int, float | None]:
    """``{centre Hz: T30 in seconds}`` of ``h`` (time on axis 0; paths summed in energy). A band that does not
    decay 35 dB within ``h`` raises (``undecayed="raise"``) or maps to None (``undecayed="none"``)."""
    out = {}
    for c in octaves:
        try:
            out[c] = decay_time(octave_band(h, fs, c), fs)
        except AdacError:
            if undecayed != "none":
                raise
            out[c] = None
    return out


def octave_energy_db(h: np.ndarray, fs: int, octaves=OCTAVES) -> dict[int, float]:
    """``{centre Hz: energy in dB}`` of ``h`` per octave (time on axis 0; paths summed)."""
    return {c: float(10 * np.log10(np.sum(octave_band(h, fs, c) ** 2))) for c in octaves}


def spectral_centroid(h: np.ndarray, fs: int, seconds: float = CENTROID_SECONDS) -> float:
    """Spectral centroid (Hz, power-weighted) of the first ``seconds`` of ``h`` (time on axis 0; paths summed)."""
    head = np.asarray(h, dtype=float)[: int(round(seconds * fs))]
    power = np.abs(np.fft.rfft(head, axis=0)) ** 2
    power = power.reshape(power.shape[0], -1).sum(axis=1)
    freqs = np.fft.rfftfreq(head.shape[0], 1 / fs)
    return float(np.sum(freqs * power) / np.sum(power))


def compare(reference: np.ndarray, candidate: np.ndarray, fs: int, octaves=OCTAVES) -> dict:
    """How far ``candidate`` is from ``reference`` (two responses at ``fs``, time on axis 0, same shape).

    Returns ``{"t30": {centre: relative error}, "energy_db": {centre: dB difference}, "centroid": relative
    error, "worst_t30", "worst_energy_db"}`` (errors signed: candidate minus reference)."""
    t_ref, t_can = octave_t30(reference, fs, octaves), octave_t30(candidate, fs, octaves)
    e_ref, e_can = octave_energy_db(reference, fs, octaves), octave_energy_db(candidate, fs, octaves)
    t30 = {c: t_can[c] / t_ref[c] - 1 for c in octaves}
    energy = {c: e_can[c] - e_ref[c] for c in octaves}
    return {"t30": t30, "energy_db": energy,
            "centroid": spectral_centroid(candidate, fs) / spectral_centroid(reference, fs) - 1,
            "worst_t30": max(t30.values(), key=abs), "worst_energy_db": max(energy.values(), key=abs)}
