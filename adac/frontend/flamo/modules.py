"""FLAMO classes adac reads: the registry (one row per class, :data:`MODULES`), the analysis view a
model is read in, and the helpers that read effective values. The traversal that writes the IR is
:mod:`adac.frontend.flamo.extract`; the rebuilder, :mod:`adac.frontend.flamo.rebuild`.

The frontend walks a FLAMO model (any nesting of Shell, Series, Parallel, Recursion and
``flamo.processor.dsp`` modules) and writes the IR: for code generation the
*effective* values the model applies (after FLAMO's ``map``, unit and fs
conversions, ``isint`` rounding, matrix galleries), and for the round trip the
raw parameter tensor with the constructor arguments.

FLAMO semantics that matter here:

* FLAMO is frequency-domain: every module is a transfer function sampled on
  ``nfft // 2 + 1`` rfft bins, so its time response is circular over ``nfft``
  samples. The anti-aliasing decay (``alias_decay_db``) evaluates each transfer
  function on a circle of radius ``gamma^-1`` and undoes it after the inverse
  FFT; it is an analysis device, not part of the DSP. Extraction therefore runs
  with ``alias_decay_db = 0`` (coefficients without the envelope) in float64,
  and restores the model afterwards.
* Effective values always come from the module's own functions (``map``,
  ``get_delays``, ``get_poly_coeff``), never from re-derived formulas: the
  filter classes are read by recording the exact polynomial coefficients they
  hand to ``flamo.functional.poly_freq_response``.
"""
from __future__ import annotations

import contextlib
import types
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from flamo.processor import dsp

from ...common.errors import AdacError, InvalidParameterError, UnsupportedModuleError

# ----------------------------------------------------------------------------
# Model-wide analysis view: float64, no anti-aliasing envelope, restored after.
# ----------------------------------------------------------------------------


def _first_dsp(model: nn.Module):
    return next((m for m in model.modules() if isinstance(m, dsp.DSP)), None)


def model_settings(model: nn.Module) -> dict:
    """nfft, alias_decay_db and dtype the model currently uses."""
    probe = _first_dsp(model)
    if probe is None:
        raise AdacError("<model>: the model contains no FLAMO DSP module")
    return {
        "nfft": int(probe.nfft),
        "alias_decay_db": float(probe.alias_decay_db),
        "dtype": probe.param.dtype,
    }


MAP_ATTRIBUTES = ("map", "map_delay", "map_gain")  # a module's maps, which the user may have set


def reconfigure(model: nn.Module, *, dtype=None, nfft=None, alias_decay_db=None) -> None:
    # FLAMO's delay classes rebuild their frequency grid (initialize_class) only when set_nfft changes
    # nfft, and then reset the map of a requires_grad delay to softplus. The grid is rebuilt here in every
    # case (same nfft, new dtype: a float32 grid cast to float64 would carry float32 noise into a float64
    # response), and every module keeps the map it had (the user's own map included).
    maps = {(module, key): module.__dict__[key] for module in model.modules() if isinstance(module, dsp.DSP)
            for key in MAP_ATTRIBUTES if key in module.__dict__}
    targets = [model] if hasattr(model, "set_dtype") else [m for m in model.modules() if isinstance(m, dsp.DSP)]
    for target in targets:
        if dtype is not None:
            target.set_dtype(dtype)
            set_mapping_dtype(target, dtype)
        if nfft is not None:
            target.set_nfft(nfft)
        if alias_decay_db is not None:
            target.set_alias_decay_db(alias_decay_db)
    for module in model.modules():
        if isinstance(module, dsp.DSP) and hasattr(module, "omega") and (dtype is not None or nfft is not None):
            module.initialize_class()  # the grid at the module's nfft, in its dtype; param untouched
    for (module, key), mapping in maps.items():
        setattr(module, key, mapping)
    _invalidate_memoized_responses(model)


def _invalidate_memoized_responses(model: nn.Module) -> None:
    # FLAMO memoises each module's freq_response by (id(param), param._version);
    # set_nfft/set_dtype do not invalidate it, so a response computed before would
    # be served at the new nfft or dtype. An in-place multiply by one bumps the
    # version and keeps every bit (including the sign of zeros).
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, dsp.DSP):
                module.param.mul_(1)


def set_mapping_dtype(model: nn.Module, dtype) -> None:
    # FLAMO's set_dtype does not reach the ScatteringMapping of Scattering/VelvetNoise
    # matrices, which casts to its own dtype attribute.
    for module in model.modules():
        mapping = getattr(module, "map_filter", None)
        if mapping is not None and hasattr(mapping, "dtype"):
            mapping.dtype = dtype


@contextlib.contextmanager
def analysis_view(model: nn.Module, *, dtype=torch.float64, nfft: int | None = None, alias_decay_db: float = 0.0):
    """Temporarily run ``model`` in ``dtype`` with the given nfft and alias decay.

    Parameters survive exactly (float32 -> float64 -> float32 is lossless) and
    the original settings are restored even if the body raises.
    """
    before = model_settings(model)
    try:
        reconfigure(model, dtype=dtype, nfft=nfft, alias_decay_db=alias_decay_db)
        yield model
    finally:
        reconfigure(model, dtype=before["dtype"], nfft=before["nfft"], alias_decay_db=before["alias_decay_db"])


# ----------------------------------------------------------------------------
# Helpers shared by the registry rows
# ----------------------------------------------------------------------------


def real_values(t: torch.Tensor, path: str, what: str) -> np.ndarray:
    if torch.is_complex(t):
        if torch.any(t.imag != 0):
            raise UnsupportedModuleError(path, what, "has complex-valued effective parameters")
        t = t.real
    arr = t.detach().to(torch.float64).cpu().numpy()
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InvalidParameterError(f"{path}: {what} has non-finite effective values (NaN/Inf) at index {tuple(np.argwhere(bad)[0])}")
    return arr


def raw_param(module: nn.Module, path: str) -> torch.Tensor:
    p = module.param.detach()
    if not torch.isfinite(p).all():
        idx = tuple(torch.nonzero(~torch.isfinite(p))[0].tolist())
        raise InvalidParameterError(f"{path}: {type(module).__name__}.param has a non-finite value (NaN/Inf) at index {idx}")
    return p


def _delays(samples: np.ndarray, isint: bool, path: str, what: str) -> np.ndarray:
    if isint:
        samples = np.round(samples)
    if (samples < 0).any():
        raise InvalidParameterError(f"{path}: {what} has a negative delay ({samples.min():.6g} samples)")
    return samples


def _recorded_polynomials(module: nn.Module) -> list:
    """The coefficient tensors FLAMO's filter class ``module`` computes, without evaluating them.

    Every filter class's ``get_poly_coeff`` computes b and a from its parameters, then
    ``B = poly_freq_response(b, nfft, dim)``, ``A = poly_freq_response(a, ...)`` and
    ``stable_cascade_response(B, A, dim)``. The class's own ``get_poly_coeff`` runs here with those two
    names bound to recorders in a private copy of its module's globals: the recorders keep the exact
    time-domain coefficients and the axes of taps and cascaded sections, and return nothing, so no
    response is evaluated on the nfft grid; FLAMO itself is not patched (a training loop in another
    thread runs FLAMO's own functions meanwhile).
    Returns ``[("poly", coeffs, tap_dim), ("poly", coeffs, tap_dim), ("cascade", section_dim)]``.
    """
    calls: list = []

    def poly(coeffs, nfft, dim=0):
        calls.append(("poly", coeffs.detach(), dim))

    def cascade(B, A, dim, out_dtype=None):
        calls.append(("cascade", dim))

    method = type(module).get_poly_coeff
    namespace = {**method.__globals__, "poly_freq_response": poly, "stable_cascade_response": cascade}
    recording = types.FunctionType(method.__code__, namespace, method.__name__, method.__defaults__, method.__closure__)
    with torch.no_grad():
        recording(module, module.map(module.param))
    return calls


def iir_sections(module: nn.Module, path: str) -> np.ndarray:
    """Normalised SOS ``(K, 6, *io)`` from the module's own ``get_poly_coeff`` (:func:`_recorded_polynomials`)."""
    calls = _recorded_polynomials(module)
    polys = [c for c in calls if c[0] == "poly"]
    cascades = [c for c in calls if c[0] == "cascade"]
    if len(polys) != 2 or len(cascades) != 1:
        raise UnsupportedModuleError(path, type(module).__name__, "does not compute a single b/a cascade adac can read")
    (_, b, tap_dim), (_, a, tap_dim_a), (_, section_dim) = polys[0], polys[1], cascades[0]
    if tap_dim != tap_dim_a or b.shape != a.shape or b.shape[tap_dim] != 3:
        raise UnsupportedModuleError(path, type(module).__name__, "has filter sections that are not second order")
    b = torch.movedim(b, (tap_dim, section_dim), (0, 1))
    a = torch.movedim(a, (tap_dim, section_dim), (0, 1))
    b, a = real_values(b, path, "filter numerator"), real_values(a, path, "filter denominator")
    a0 = a[0]
    if np.any(a0 == 0):
        raise InvalidParameterError(f"{path}: {type(module).__name__} has a section with a0 = 0")
    sections = np.concatenate([b / a0, a / a0], axis=0)  # (6, K, *io)
    return np.moveaxis(sections, 0, 1)


# ----------------------------------------------------------------------------
# The registry: one row per FLAMO class.
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ModuleRow:
    """How one FLAMO class becomes an IR node.

    ``extract(module, path)`` returns the effective fields of the node (kind,
    channel counts, values). ``ctor_size(module)`` recovers the ``size``
    argument the constructor was given (modules store a larger param shape).
    ``bakeable``: a custom ``map`` can be replaced by storing mapped values
    and rebuilding with the identity map.
    """

    extract: Callable[[nn.Module, str], dict]
    ctor_size: Callable[[nn.Module], tuple]
    bakeable: bool = False


def _io(m) -> dict:
    return {"in": int(m.input_channels), "out": int(m.output_channels)}


def _gain(m, path):
    g = real_values(m.map(m.param), path, type(m).__name__)
    return {"kind": "gain", "diagonal": False, "matrix": g.tolist(), **_io(m)}


def _parallel_gain(m, path):
    g = real_values(m.map(m.param), path, type(m).__name__)
    return {"kind": "gain", "diagonal": True, "gains": g.tolist(), **_io(m)}


def _matrix(m, path):
    node = _gain(m, path)
    node["structure"] = {"random": "dense"}.get(m.matrix_type, m.matrix_type)
    return node


def _householder(m, path):
    u = real_values(m.map(m.param), path, "HouseholderMatrix")[:, 0]
    return {"kind": "householder", "u": u.tolist(), **_io(m)}


def _fir(m, path):
    taps = real_values(m.map(m.param), path, type(m).__name__)
    return {"kind": "fir", "diagonal": taps.ndim == 2, "taps": taps.tolist(), **_io(m)}


def _scattering(m, path):
    taps = real_values(m.map_filter(m.map(m.param)), path, type(m).__name__)
    return {"kind": "fir", "diagonal": False, "taps": taps.tolist(), **_io(m)}


# classes whose sections FLAMO designs from other parameters (band gains, frequencies, Q): a design with a
# pole on or outside the unit circle has a finite frequency-domain response in FLAMO but no stable causal
# realisation, whatever the strictness. SOSFilter's coefficients are the user's own: the certificate judges them.
_RAW_SECTION_CLASSES = ("SOSFilter", "parallelSOSFilter")


def _refuse_unstable_design(m, sections: np.ndarray, path: str) -> None:
    cls = type(m).__name__
    if cls in _RAW_SECTION_CLASSES:
        return
    flat = sections.reshape(sections.shape[0], 6, -1)
    a1, a2 = flat[:, 4, :], flat[:, 5, :]  # (K, channels): poles are the roots of z^2 + a1 z + a2
    root = np.sqrt(a1.astype(complex) ** 2 - 4 * a2)
    radii = np.maximum(np.abs(-a1 + root), np.abs(-a1 - root)) / 2  # every section at once (not np.roots each)
    unstable = np.argwhere(radii >= 1)
    if len(unstable):
        k, c = unstable[0]  # the first in (section, channel) order
        raise InvalidParameterError(
            f"{path or '<root>'}: {cls} at fs = {getattr(m, 'fs', None)} Hz designs section {k} (channel {c}) with a "
            f"pole of radius {float(radii[k, c]):.6g}, on or outside the unit circle: FLAMO's frequency-domain response "
            "of it is finite, but no causal realisation is stable (the compiled DSP would blow up). Change the sample "
            "rate (e.g. 48000 Hz) or the band edges (start_freq/end_freq, octave_interval) so every band lies "
            "well below Nyquist")


def _sos(m, path):
    try:
        sections = iir_sections(m, path)
    except InvalidParameterError as exc:
        if type(m).__name__ in _RAW_SECTION_CLASSES:
            raise
        raise InvalidParameterError(f"{exc} ({type(m).__name__} at fs = {getattr(m, 'fs', None)} Hz: FLAMO's design "
                                    "failed; check its parameters, the sample rate and the band edges)") from None
    _refuse_unstable_design(m, sections, path)
    return {"kind": "sos", "diagonal": sections.ndim == 3, "sections": sections.tolist(), **_io(m)}


def _delay(m, path):
    samples = _delays(real_values(m.get_delays()(m.param), path, type(m).__name__), m.isint, path, type(m).__name__)
    integer = bool(np.all(samples == np.round(samples)))
    return {"kind": "delay", "diagonal": samples.ndim == 1, "integer": integer, "samples": samples.tolist(), **_io(m)}


def _gain_delay(m, path):
    samples = _delays(real_values(m.get_delays()(m.param), path, type(m).__name__), m.isint, path, type(m).__name__)
    gains = real_values(m.get_gains()(m.param), path, type(m).__name__)
    integer = bool(np.all(samples == np.round(samples)))
    return {"kind": "gain_delay", "diagonal": samples.ndim == 1, "integer": integer,
            "gains": gains.tolist(), "samples": samples.tolist(), **_io(m)}


def _last(n):
    return lambda m: tuple(int(s) for s in m.size[-n:])


def _all(m):
    return tuple(int(s) for s in m.size)


MODULES: dict[str, ModuleRow] = {
    "Gain": ModuleRow(_gain, _last(2), bakeable=True),
    "parallelGain": ModuleRow(_parallel_gain, _last(1), bakeable=True),
    "Matrix": ModuleRow(_matrix, _last(2)),
    "HouseholderMatrix": ModuleRow(_householder, lambda m: (int(m.size[0]), int(m.size[0]))),
    "Filter": ModuleRow(_fir, _all, bakeable=True),
    "parallelFilter": ModuleRow(_fir, _all, bakeable=True),
    "ScatteringMatrix": ModuleRow(_scattering, _all),
    "VelvetNoiseMatrix": ModuleRow(_scattering, _all),
    "Delay": ModuleRow(_delay, _last(2), bakeable=True),
    "parallelDelay": ModuleRow(_delay, _last(1), bakeable=True),
    "GainDelay": ModuleRow(_gain_delay, _last(2)),
    "parallelGainDelay": ModuleRow(_gain_delay, _last(1)),
}
# Every filter class computes its b/a sections the same way (see iir_sections): one row each,
# MIMO (size (N_out, N_in)) and parallel (size (N,)).
_FILTER_CLASSES = ("Biquad", "SOSFilter", "SVF", "GEQ", "PEQ", "AccurateGEQ")
MODULES.update({name: ModuleRow(_sos, _last(2)) for name in _FILTER_CLASSES})
MODULES.update({f"parallel{name}": ModuleRow(_sos, _last(1)) for name in _FILTER_CLASSES})
