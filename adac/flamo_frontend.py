"""FLAMO frontend: the only part of adac that touches torch and FLAMO objects.

It walks a FLAMO model (any nesting of Shell, Series, Parallel, Recursion and
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
import inspect
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

import flamo
from flamo.processor import dsp, system

from . import __version__
from .errors import AdacError, InvalidParameterError, UnsupportedModuleError
from .ir import IR_FORMAT, IR_VERSION, validate_ir

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


def _reconfigure(model: nn.Module, *, dtype=None, nfft=None, alias_decay_db=None) -> None:
    targets = [model] if hasattr(model, "set_dtype") else [m for m in model.modules() if isinstance(m, dsp.DSP)]
    for target in targets:
        if dtype is not None:
            target.set_dtype(dtype)
            _set_mapping_dtype(target, dtype)
        if nfft is not None:
            target.set_nfft(nfft)
        if alias_decay_db is not None:
            target.set_alias_decay_db(alias_decay_db)
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


def _set_mapping_dtype(model: nn.Module, dtype) -> None:
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
        _reconfigure(model, dtype=dtype, nfft=nfft, alias_decay_db=alias_decay_db)
        yield model
    finally:
        _reconfigure(model, dtype=before["dtype"], nfft=before["nfft"], alias_decay_db=before["alias_decay_db"])


# ----------------------------------------------------------------------------
# Helpers shared by the registry rows
# ----------------------------------------------------------------------------


def _real(t: torch.Tensor, path: str, what: str) -> np.ndarray:
    if torch.is_complex(t):
        if torch.any(t.imag != 0):
            raise UnsupportedModuleError(path, what, "has complex-valued effective parameters")
        t = t.real
    arr = t.detach().to(torch.float64).cpu().numpy()
    bad = ~np.isfinite(arr)
    if bad.any():
        raise InvalidParameterError(f"{path}: {what} has non-finite effective values (NaN/Inf) at index {tuple(np.argwhere(bad)[0])}")
    return arr


def _raw_param(module: nn.Module, path: str) -> torch.Tensor:
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


@contextlib.contextmanager
def _recorded_polynomials():
    """Record the coefficient tensors FLAMO's filter classes evaluate.

    Every filter class computes ``B = poly_freq_response(b, ...)`` then
    ``A = poly_freq_response(a, ...)`` and ``stable_cascade_response(B, A, dim)``;
    recording those calls gives the exact time-domain coefficients and which
    axes hold taps and cascaded sections.
    """
    calls: list = []
    orig_poly, orig_cascade = dsp.poly_freq_response, dsp.stable_cascade_response

    def poly(coeffs, nfft, dim=0):
        calls.append(("poly", coeffs.detach().clone(), dim))
        return orig_poly(coeffs, nfft, dim)

    def cascade(B, A, dim, out_dtype=None):
        calls.append(("cascade", dim))
        return orig_cascade(B, A, dim, out_dtype)

    dsp.poly_freq_response, dsp.stable_cascade_response = poly, cascade
    try:
        yield calls
    finally:
        dsp.poly_freq_response, dsp.stable_cascade_response = orig_poly, orig_cascade


def iir_sections(module: nn.Module, path: str) -> np.ndarray:
    """Normalised SOS ``(K, 6, *io)`` from the module's own ``get_poly_coeff``."""
    with _recorded_polynomials() as calls, torch.no_grad():
        module.get_poly_coeff(module.map(module.param))
    polys = [c for c in calls if c[0] == "poly"]
    cascades = [c for c in calls if c[0] == "cascade"]
    if len(polys) != 2 or len(cascades) != 1:
        raise UnsupportedModuleError(path, type(module).__name__, "does not compute a single b/a cascade adac can read")
    (_, b, tap_dim), (_, a, tap_dim_a), (_, section_dim) = polys[0], polys[1], cascades[0]
    if tap_dim != tap_dim_a or b.shape != a.shape or b.shape[tap_dim] != 3:
        raise UnsupportedModuleError(path, type(module).__name__, "has filter sections that are not second order")
    b = torch.movedim(b, (tap_dim, section_dim), (0, 1))
    a = torch.movedim(a, (tap_dim, section_dim), (0, 1))
    b, a = _real(b, path, "filter numerator"), _real(a, path, "filter denominator")
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
    g = _real(m.map(m.param), path, type(m).__name__)
    return {"kind": "gain", "diagonal": False, "matrix": g.tolist(), **_io(m)}


def _parallel_gain(m, path):
    g = _real(m.map(m.param), path, type(m).__name__)
    return {"kind": "gain", "diagonal": True, "gains": g.tolist(), **_io(m)}


def _matrix(m, path):
    node = _gain(m, path)
    node["structure"] = {"random": "dense"}.get(m.matrix_type, m.matrix_type)
    return node


def _householder(m, path):
    u = _real(m.map(m.param), path, "HouseholderMatrix")[:, 0]
    return {"kind": "householder", "u": u.tolist(), **_io(m)}


def _fir(m, path):
    taps = _real(m.map(m.param), path, type(m).__name__)
    return {"kind": "fir", "diagonal": taps.ndim == 2, "taps": taps.tolist(), **_io(m)}


def _scattering(m, path):
    taps = _real(m.map_filter(m.map(m.param)), path, type(m).__name__)
    return {"kind": "fir", "diagonal": False, "taps": taps.tolist(), **_io(m)}


def _sos(m, path):
    sections = iir_sections(m, path)
    return {"kind": "sos", "diagonal": sections.ndim == 3, "sections": sections.tolist(), **_io(m)}


def _delay(m, path):
    samples = _delays(_real(m.get_delays()(m.param), path, type(m).__name__), m.isint, path, type(m).__name__)
    integer = bool(np.all(samples == np.round(samples)))
    return {"kind": "delay", "diagonal": samples.ndim == 1, "integer": integer, "samples": samples.tolist(), **_io(m)}


def _gain_delay(m, path):
    samples = _delays(_real(m.get_delays()(m.param), path, type(m).__name__), m.isint, path, type(m).__name__)
    gains = _real(m.get_gains()(m.param), path, type(m).__name__)
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

# Constructor arguments that are not plain attributes of the same name.
_SKIPPED_ARGS = {"self", "size", "device", "dtype", "map", "map_gain", "map_delay", "nfft", "alias_decay_db"}
_ARG_ATTRIBUTES = {"density": lambda m: 1.0 / m.sparsity}
# Constructor defaults that FLAMO does not keep on the module; the round-trip check below
# (rebuild, compare effective values) catches any module built with other values.
_UNSTORED_DEFAULTS = {"start_freq", "end_freq"}


def _json_value(value):
    if isinstance(value, torch.Tensor):
        return {"tensor": value.detach().to(torch.float64).cpu().tolist()}
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)


def constructor_args(module: nn.Module, row: ModuleRow, path: str) -> dict:
    """The constructor arguments (besides nfft/alias/dtype/device/maps) that rebuild ``module``."""
    cls = type(module)
    args = {"size": list(row.ctor_size(module))}
    for name in inspect.signature(cls.__init__).parameters:
        if name in _SKIPPED_ARGS or name in _UNSTORED_DEFAULTS:
            continue
        if name in _ARG_ATTRIBUTES:
            value = _ARG_ATTRIBUTES[name](module)
        elif hasattr(module, name):
            value = getattr(module, name)
        else:
            raise UnsupportedModuleError(path, cls.__name__, f"keeps no attribute for constructor argument {name!r}")
        try:
            args[name] = _json_value(value)
        except TypeError:
            raise UnsupportedModuleError(path, cls.__name__, f"has a constructor argument {name!r} adac cannot store") from None
    return args


def _module_state(module: nn.Module) -> dict:
    """Random state drawn at construction that the round trip must restore."""
    mapping = getattr(module, "map_filter", None)
    if mapping is not None and hasattr(mapping, "shifts"):
        return {"shifts": mapping.shifts.detach().to(torch.float64).tolist(),
                "m_L": mapping.m_L.detach().to(torch.float64).tolist(),
                "m_R": mapping.m_R.detach().to(torch.float64).tolist()}
    return {}


def _flamo_record(module: nn.Module, row: ModuleRow, node: dict, path: str, construct_dtype) -> dict:
    """Raw tensor, constructor args, and whether the class's own map reproduces the node."""
    from .flamo_rebuild import build_module  # the rebuilder is the judge of reproducibility

    record = {
        "class": type(module).__name__,
        "args": constructor_args(module, row, path),
        "param": _raw_param(module, path).to(torch.float64).cpu().tolist(),
        "map": "constructor",
    }
    state = _module_state(module)
    if state:
        record["state"] = state
    settings = {"nfft": int(module.nfft), "alias_decay_db": 0.0, "dtype": torch.float64, "construct_dtype": construct_dtype}
    twin_node = None
    try:
        twin = build_module(record, **settings)
        twin_node = row.extract(twin, path)
    except (AdacError, AssertionError, TypeError, ValueError, RuntimeError):
        twin_node = None
    if twin_node != node:
        if row.bakeable:
            record["map"] = "baked"
            record["param"] = _real(module.map(module.param), path, type(module).__name__).tolist()
        else:
            record["map"] = "custom"
    return record


# ----------------------------------------------------------------------------
# Traversal
# ----------------------------------------------------------------------------


class _Walker:
    def __init__(self, construct_dtype):
        self.count = 0
        self.construct_dtype = construct_dtype

    def node(self, fields: dict, path: str, name: str) -> dict:
        node = {"id": f"n{self.count}", "path": path, "name": name}
        self.count += 1
        node.update(fields)
        return node

    def walk(self, module: nn.Module, path: str, name: str) -> dict:
        cls_name = type(module).__name__
        if isinstance(module, system.Shell):
            return self.walk(module.get_core(), _join(path, "core"), "core")
        if isinstance(module, (system.Series, nn.Sequential)) and type(module) in (system.Series, nn.Sequential):
            node = self.node({"kind": "series"}, path, name)
            node["flamo_container"] = cls_name
            children = [self.walk(child, _join(path, key), key) for key, child in module.named_children()]
            if not children:
                raise UnsupportedModuleError(path, cls_name, "is empty")
            node.update({"in": children[0]["in"], "out": children[-1]["out"], "children": children})
            return node
        if type(module) is system.Recursion:
            node = self.node({"kind": "recursion"}, path, name)
            ff = self.walk(module.feedforward, _join(path, "feedforward"), "feedforward")
            fb = self.walk(module.feedback, _join(path, "feedback"), "feedback")
            node.update({"in": ff["in"], "out": ff["out"], "feedforward": ff, "feedback": fb})
            return node
        if type(module) is system.Parallel:
            node = self.node({"kind": "parallel"}, path, name)
            a = self.walk(module.branchA, _join(path, "branchA"), "branchA")
            b = self.walk(module.branchB, _join(path, "branchB"), "branchB")
            out = a["out"] if module.sum_output else a["out"] + b["out"]
            node.update({"in": a["in"], "out": out, "sum_output": bool(module.sum_output), "children": [a, b]})
            return node
        row = MODULES.get(cls_name) if type(module) is getattr(dsp, cls_name, None) else None
        if row is None:
            reason = "is not supported"
            if isinstance(module, dsp.Transform):
                reason = "is a domain transform; only Shell input/output layers may be transforms"
            elif isinstance(module, dsp.DSP):
                reason = "is not supported (a subclass of a FLAMO module may change its behaviour)"
            raise UnsupportedModuleError(path, cls_name, reason)
        _raw_param(module, path)
        fields = row.extract(module, path)
        node = self.node(fields, path, name)
        node["flamo"] = _flamo_record(module, row, fields, path, self.construct_dtype)
        return node


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _layer_name(layer) -> str:
    return type(layer).__name__


def flamo_to_json(model: nn.Module, fs: int, name: str = "adac_model") -> dict:
    """Traverse a FLAMO model and return its IR (validated).

    Args:
        model: a FLAMO ``Shell`` or any FLAMO system/DSP module.
        fs: sample rate in Hz the DSP is generated for. Modules that carry their
            own ``fs`` (delays, filters) keep theirs: their effective values come
            from their own conversions.
        name: the model's display name (sanitised by each backend).

    Returns:
        dict: the IR document; see ``schemas/ir.schema.json``.
    """
    if not isinstance(model, nn.Module):
        raise AdacError(f"flamo_to_json: expected a FLAMO model (torch.nn.Module), got {type(model).__name__}")
    if not isinstance(fs, (int, np.integer)) or isinstance(fs, bool) or fs <= 0:
        raise AdacError(f"flamo_to_json: fs must be a positive integer sample rate in Hz, got {fs!r}")
    settings = model_settings(model)
    shell = None
    if isinstance(model, system.Shell):
        shell = {"input_layer": _layer_name(model.get_inputLayer()), "output_layer": _layer_name(model.get_outputLayer())}
    with analysis_view(model, dtype=torch.float64, alias_decay_db=0.0), torch.no_grad():
        graph = _Walker(settings["dtype"]).walk(model, "", "model")
    document = {
        "format": IR_FORMAT,
        "version": IR_VERSION,
        "name": str(name),
        "fs": int(fs),
        "input_channels": graph["in"],
        "output_channels": graph["out"],
        "adac_version": __version__,
        "flamo": {
            "version": flamo_version(),
            "nfft": settings["nfft"],
            "alias_decay_db": settings["alias_decay_db"],
            "dtype": str(settings["dtype"]).replace("torch.", ""),
            "shell": shell,
        },
        "graph": graph,
    }
    return validate_ir(document, source=f"IR of {name!r}")


def flamo_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("flamo")
    except PackageNotFoundError:
        return "unknown"
