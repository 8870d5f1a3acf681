"""Small FLAMO models for the tests: one builder per module kind, plus full FDNs.

Every builder is seeded, so a model is the same in every run.
"""
from __future__ import annotations

import warnings

import numpy as np
import torch
from flamo.processor import dsp, system

warnings.filterwarnings("ignore", module="flamo")

FS = 48000
CPU = {"device": "cpu"}


def seeded(fn):
    def wrapper(*args, **kwargs):
        torch.manual_seed(kwargs.pop("seed", 0))
        return fn(*args, **kwargs)

    wrapper.__name__ = fn.__name__
    return wrapper


def shell(core) -> system.Shell:
    return system.Shell(core)


def coprime_delays(n: int, lo: int = 37, hi: int = 197) -> list[int]:
    """n distinct primes spread between lo and hi samples."""
    primes = [p for p in range(lo, hi * 4) if all(p % q for q in range(2, int(p ** 0.5) + 1))]
    idx = np.linspace(0, len([p for p in primes if p <= hi]) - 1, n).round().astype(int)
    return [primes[i] for i in idx]


def set_delays_samples(module, samples, fs=FS):
    """Assign delays in samples through the module's own conversion (seconds, unit)."""
    module.assign_value(module.sample2s(torch.tensor(samples, dtype=module.param.dtype)))


def delay_lines(samples, fs=FS):
    """parallelDelay with these integer lengths in samples."""
    module = dsp.parallelDelay(size=(len(samples),), max_len=max(samples) + 1, isint=True, fs=fs, **CPU)
    set_delays_samples(module, samples, fs)
    return module


def line_gains(values):
    """parallelGain with these values."""
    module = dsp.parallelGain(size=(len(values),), **CPU)
    module.assign_value(torch.tensor(values, dtype=torch.float32))
    return module


def gains_for_t60(samples, t60, fs=FS):
    """Per-line gain that gives a lossless prototype the decay time t60 (seconds)."""
    return [10 ** (-3 * d / (fs * t60)) for d in samples]


# --- single modules (no loop), each wrapped in a Shell -----------------------------------

@seeded
def single(kind: str, fs: int = FS):
    n = 3
    makers = {
        "Gain": lambda: dsp.Gain(size=(2, 3), **CPU),
        "parallelGain": lambda: dsp.parallelGain(size=(n,), **CPU),
        "Matrix-random": lambda: dsp.Matrix(size=(2, 3), **CPU),
        "Matrix-orthogonal": lambda: dsp.Matrix(size=(4, 4), matrix_type="orthogonal", **CPU),
        "Matrix-hadamard": lambda: dsp.Matrix(size=(4, 4), matrix_type="hadamard", **CPU),
        "Matrix-rotation": lambda: dsp.Matrix(size=(4, 4), matrix_type="rotation", **CPU),
        "HouseholderMatrix": lambda: dsp.HouseholderMatrix(size=(4, 4), **CPU),
        "Filter": lambda: dsp.Filter(size=(16, 2, 3), **CPU),
        "parallelFilter": lambda: dsp.parallelFilter(size=(16, n), **CPU),
        "Biquad-lowpass": lambda: dsp.Biquad(size=(2, 2), n_sections=2, filter_type="lowpass", fs=fs, **CPU),
        "Biquad-highpass": lambda: dsp.Biquad(size=(1, 2), n_sections=1, filter_type="highpass", fs=fs, **CPU),
        "Biquad-bandpass": lambda: dsp.Biquad(size=(2, 1), n_sections=2, filter_type="bandpass", fs=fs, **CPU),
        "parallelBiquad": lambda: dsp.parallelBiquad(size=(n,), n_sections=2, filter_type="lowpass", fs=fs, **CPU),
        "SOSFilter": lambda: _sos(dsp.SOSFilter(size=(2, 2), n_sections=2, fs=fs, **CPU)),
        "parallelSOSFilter": lambda: _sos(dsp.parallelSOSFilter(size=(n,), n_sections=3, fs=fs, **CPU)),
        "SVF": lambda: dsp.SVF(size=(2, 2), n_sections=2, filter_type="lowpass", fs=fs, **CPU),
        "parallelSVF": lambda: dsp.parallelSVF(size=(n,), n_sections=2, filter_type="peaking", fs=fs, **CPU),
        "GEQ": lambda: dsp.GEQ(size=(1, 2), octave_interval=1, fs=fs, **CPU),
        "parallelGEQ": lambda: dsp.parallelGEQ(size=(n,), octave_interval=1, fs=fs, **CPU),
        "PEQ": lambda: dsp.PEQ(size=(1, 2), n_bands=4, fs=fs, **CPU),
        "parallelPEQ": lambda: dsp.parallelPEQ(size=(n,), n_bands=4, design="svf", fs=fs, **CPU),
        "AccurateGEQ": lambda: _accurate_geq(dsp.AccurateGEQ(size=(1, 1), fs=fs, **CPU)),
        "parallelAccurateGEQ": lambda: _accurate_geq(dsp.parallelAccurateGEQ(size=(2,), fs=fs, **CPU)),
        "Delay": lambda: dsp.Delay(size=(2, 3), max_len=300, isint=True, fs=fs, **CPU),
        "parallelDelay": lambda: dsp.parallelDelay(size=(n,), max_len=300, isint=True, fs=fs, **CPU),
        "GainDelay": lambda: dsp.GainDelay(size=(2, 2), max_len=300, isint=True, fs=fs, **CPU),
        "parallelGainDelay": lambda: dsp.parallelGainDelay(size=(n,), max_len=300, isint=True, fs=fs, **CPU),
        "ScatteringMatrix": lambda: dsp.ScatteringMatrix(size=(3, 4, 4), sparsity=2, gain_per_sample=0.999,
                                                         m_L=torch.tensor([0, 1, 2, 3]), m_R=torch.tensor([3, 0, 1, 2]), **CPU),
        "VelvetNoiseMatrix": lambda: dsp.VelvetNoiseMatrix(size=(3, 4, 4), density=0.5, gain_per_sample=0.999,
                                                           m_L=torch.tensor([0, 1, 2, 3]), m_R=torch.tensor([3, 0, 1, 2]), **CPU),
    }
    return shell(makers[kind]())


def _sos(module):
    """Stable random SOS sections: poles inside radius 0.9."""
    k = module.param.shape[0]
    io = module.param.shape[2:]
    r = 0.5 + 0.4 * torch.rand((k, *io))
    theta = np.pi * torch.rand((k, *io))
    coeffs = torch.zeros(module.param.shape)
    coeffs[:, 0:3] = torch.randn((k, 3, *io))
    coeffs[:, 3] = 2.0  # a0 != 1: FLAMO normalises
    coeffs[:, 4] = 2.0 * (-2 * r * torch.cos(theta))
    coeffs[:, 5] = 2.0 * r ** 2
    module.assign_value(coeffs)
    return module


def _accurate_geq(module):
    gains_db = torch.linspace(-6, 3, module.param.shape[0])
    value = 10 ** (gains_db / 20)
    module.assign_value(value.view(-1, *([1] * (module.param.dim() - 1))).expand(module.param.shape).clone())
    return module


SINGLE_KINDS = ["Gain", "parallelGain", "Matrix-random", "Matrix-orthogonal", "Matrix-hadamard", "Matrix-rotation",
                "HouseholderMatrix", "Filter", "parallelFilter", "Biquad-lowpass", "Biquad-highpass", "Biquad-bandpass",
                "parallelBiquad", "SOSFilter", "parallelSOSFilter", "SVF", "parallelSVF", "GEQ", "parallelGEQ", "PEQ",
                "parallelPEQ", "AccurateGEQ", "parallelAccurateGEQ", "Delay", "parallelDelay", "GainDelay",
                "parallelGainDelay", "ScatteringMatrix", "VelvetNoiseMatrix"]


# --- FDNs ---------------------------------------------------------------------------------

@seeded
def fdn(n_lines: int = 8, t60: float = 0.15, fs: int = FS, n_in: int = 1, n_out: int = 2, attenuation: str = "biquad",
        matrix: str = "orthogonal", direct: bool = True, isint: bool = True, delays=None):
    """A full FDN: input gains -> loop(delays; feedback: matrix, attenuation) -> output gains, plus a direct path.

    The loop is a FLAMO Recursion with the delay lines as feedforward and
    matrix + per-line attenuation (gains for t60, followed by ``attenuation``: a lowpass biquad per line
    ("biquad"), an octave-band graphic equaliser per line sloping from 0 to -3 dB ("geq": FLAMO's parallelGEQ, 10
    sections), or nothing ("none")) as feedback.
    """
    if attenuation not in ("biquad", "geq", "none"):
        raise ValueError(f"fdn: attenuation is 'biquad', 'geq' or 'none', not {attenuation!r}")
    samples = delays if delays is not None else coprime_delays(n_lines)
    lines = dsp.parallelDelay(size=(n_lines,), max_len=max(samples) + 1, isint=isint, fs=fs, **CPU)
    set_delays_samples(lines, samples, fs)
    if matrix == "householder":
        mix = dsp.HouseholderMatrix(size=(n_lines, n_lines), **CPU)
    else:
        mix = dsp.Matrix(size=(n_lines, n_lines), matrix_type=matrix, **CPU)
    gains = dsp.parallelGain(size=(n_lines,), **CPU)
    gains.assign_value(torch.tensor(gains_for_t60(samples, t60, fs)))
    feedback = [mix, gains]
    if attenuation == "biquad":
        lowpass = dsp.parallelBiquad(size=(n_lines,), n_sections=1, filter_type="lowpass", fs=fs, **CPU)
        with torch.no_grad():
            lowpass.param[:, 0, :] = torch.linspace(0.35, 0.6, n_lines)  # cutoff / Nyquist
            lowpass.param[:, 1, :] = 1.0  # 0 dB
        feedback.append(lowpass)
    elif attenuation == "geq":
        geq = dsp.parallelGEQ(size=(n_lines,), octave_interval=1, fs=fs, **CPU)
        gains_db = torch.linspace(0.0, -3.0, geq.param.shape[0]).unsqueeze(1).expand(-1, n_lines)
        geq.assign_value(10 ** (gains_db / 20))
        feedback.append(geq)
    loop = system.Recursion(lines, system.Series(*feedback))
    b = dsp.Gain(size=(n_lines, n_in), **CPU)
    c = dsp.Gain(size=(n_out, n_lines), **CPU)
    wet = system.Series(b, loop, c)
    if not direct:
        return shell(wet)
    dry = dsp.Gain(size=(n_out, n_in), **CPU)
    return shell(system.Parallel(wet, dry, sum_output=True))
