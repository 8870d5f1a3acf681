"""Equivalence check: the compiled FAUST (native, runtime) render against FLAMO's own response.

The reference is FLAMO's time response in float64 with ``alias_decay_db = 0``
and an ``nfft`` well beyond the compared length. FLAMO's time response is
circular over ``nfft`` samples, so a response that has not decayed by then
folds its tail onto its start; :func:`flamo_reference` refuses an ``nfft``
whose last quarter still carries more than ``alias_tolerance`` x peak, so
aliasing can neither hide nor fake an error.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from ..backends.faust import json_to_faust
from ..backends.faust.render import build_renderer, impulse_responses, render_impulse_responses
from ..backends.native import build_native_renderer
from ..backends.runtime import build_runtime_renderer
from ..common.errors import AdacError
from ..frontend.flamo import flamo_to_json
from ..frontend.flamo.reference import flamo_frequency_response, flamo_reference


@dataclass
class PrecisionReport:
    precision: str
    errors: np.ndarray  # (n_out, n_in) max abs error per path
    peak: float

    @property
    def max_relative_error(self) -> float:
        return float(self.errors.max() / self.peak) if self.peak > 0 else float(self.errors.max())

    def paths(self) -> list[dict]:
        return [{"out": m, "in": n, "max_abs_error": float(self.errors[m, n]),
                 "relative_error": float(self.errors[m, n] / self.peak) if self.peak else float(self.errors[m, n])}
                for m in range(self.errors.shape[0]) for n in range(self.errors.shape[1])]


@dataclass
class VerifyReport:
    fs: int
    n_samples: int
    nfft: int
    reports: dict[str, PrecisionReport] = field(default_factory=dict)
    reference: np.ndarray | None = None
    renders: dict[str, np.ndarray] = field(default_factory=dict)

    def __getitem__(self, precision: str) -> PrecisionReport:
        return self.reports[precision]

    def summary(self) -> str:
        return ", ".join(f"{p}: max error {r.max_relative_error:.3g} x peak" for p, r in self.reports.items())


def verify(model_or_ir, fs: int | None = None, n_samples: int = 8192, *, precisions=("float32", "double"),
           nfft: int | None = None, controls=None, fractional_order: int | None = None, keep_signals: bool = False,
           delay_limits: dict | None = None, backend: str = "faust") -> VerifyReport:
    """Render the generated ``.dsp`` for real and compare it with FLAMO, sample by sample.

    Args:
        model_or_ir: a FLAMO model or an IR document.
        fs: sample rate (required for a model; an IR carries its own).
        n_samples: length compared.
        precisions: FAUST renders to make: ``"float32"`` (default FAUST) and/or ``"double"`` (``-double``).
        nfft: FLAMO's FFT size for the reference (default: from the next power of two >= 4 x n_samples, grown
            until FLAMO's response has decayed within it; see ``flamo_reference``). The
            reference is computed at this nfft whatever the model's own (every delay's frequency grid is
            rebuilt in float64), and the model is left as it was (settings, maps and parameters).
        delay_limits: raises the bounds on delay lengths and memory (see ``json_to_faust``).
        backend: ``"faust"`` renders the ``.dsp``; ``"native"`` the native backend's class
            (:mod:`adac.backends.native`); ``"runtime"`` the C++ runtime playing the IR (:mod:`adac.backends.runtime`).

    Returns:
        VerifyReport with per-path max abs errors for each precision (``report["double"].paths()``).
    """
    if isinstance(model_or_ir, dict):
        ir = model_or_ir
    else:
        if fs is None:
            raise AdacError("verify: fs is required when verifying a model")
        ir = flamo_to_json(model_or_ir, fs)
    fs = ir["fs"]
    kwargs = {} if fractional_order is None else {"fractional_order": fractional_order}
    if backend == "faust":
        code = json_to_faust(ir, controls, delay_limits=delay_limits, **kwargs)
        build = partial(build_renderer, code)
    elif backend == "native":
        build = partial(build_native_renderer, ir, controls, delay_limits=delay_limits, **kwargs)
    elif backend == "runtime":
        build = partial(build_runtime_renderer, ir, controls, delay_limits=delay_limits, **kwargs)
    else:
        raise AdacError(f"verify: backend {backend!r} is not 'faust', 'native' or 'runtime'")
    with ThreadPoolExecutor(max_workers=len(precisions)) as pool:  # the C++ builds dominate: run them side by side
        builds = {p: pool.submit(build, double=(p == "double")) for p in precisions}
        reference, nfft = flamo_reference(model_or_ir, n_samples, nfft)
        renderers = {p: b.result() for p, b in builds.items()}
    report = VerifyReport(fs=fs, n_samples=n_samples, nfft=nfft, reference=reference if keep_signals else None)
    peak = float(np.abs(reference).max())
    for precision in precisions:
        rendered = impulse_responses(renderers[precision], fs, n_samples)
        if rendered.shape != reference.shape:
            raise AdacError(f"verify: rendered shape {rendered.shape} differs from FLAMO's {reference.shape}")
        errors = np.abs(rendered - reference).max(axis=0)
        report.reports[precision] = PrecisionReport(precision, errors, peak)
        if keep_signals:
            report.renders[precision] = rendered
    return report


BANDS = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 0.9), (0.9, 1.0))


def band_errors(model_or_ir, fs: int | None = None, nfft: int = 1 << 15, *, precision: str = "double",
                bands=BANDS, fractional_order: int | None = None) -> list[dict]:
    """Error of the compiled DSP against FLAMO's frequency response, per band.

    For modules FLAMO defines only in the frequency domain (the ideal fractional
    delay ``exp(-j w d)``, whose time response is a periodic sinc that never
    decays within ``nfft``), the time-domain comparison is meaningless; this
    compares ``rfft`` of the rendered impulse response (``nfft`` samples, which
    must cover the compiled response's decay) with FLAMO's response on the same
    bins. ``bands`` are fractions of Nyquist. Returns, per band and path, the max
    ``|H_faust - H_flamo|`` relative to FLAMO's peak magnitude.
    """
    ir = model_or_ir if isinstance(model_or_ir, dict) else flamo_to_json(model_or_ir, fs)
    response = flamo_frequency_response(model_or_ir, nfft)
    kwargs = {} if fractional_order is None else {"fractional_order": fractional_order}
    rendered = render_impulse_responses(json_to_faust(ir, **kwargs), ir["fs"], nfft, double=(precision == "double"))
    compiled = np.fft.rfft(rendered, axis=0)
    peak = float(np.abs(response).max())
    normalised = np.linspace(0.0, 1.0, response.shape[0])
    out = []
    for lo, hi in bands:
        sel = (normalised >= lo) & (normalised <= hi)
        err = np.abs(compiled[sel] - response[sel]).max(axis=0) / peak
        out.append({"band": [lo, hi], "max_relative_error": float(err.max()), "per_path": err.tolist()})
    return out
