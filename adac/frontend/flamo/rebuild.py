"""FLAMO rebuilder: an IR back to an equivalent FLAMO model (reads only the IR).

Each DSP node carries its FLAMO class, constructor arguments and raw parameter
tensor; the model is rebuilt with the same constructors, so
``flamo_to_json(json_to_flamo(ir))`` re-exports ``ir`` bit-identically.
"""
from __future__ import annotations

import inspect
from collections import OrderedDict

import torch
from torch import nn

from flamo.processor import dsp, system

from ...common.errors import AdacError, UnsupportedModuleError
from ...ir import KindTable, validate_ir
from .modules import MODULES, set_mapping_dtype

_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def _decode(value):
    if isinstance(value, dict) and set(value) == {"tensor"}:
        return torch.tensor(value["tensor"])
    return value


def _identity(x):
    return x


def build_module(record: dict, *, nfft: int, alias_decay_db: float, dtype: torch.dtype,
                 construct_dtype: torch.dtype | None = None, path: str = "") -> nn.Module:
    """One FLAMO DSP module from its IR record (class, args, param, map, state).

    The module is constructed in ``construct_dtype`` (the exported model's dtype:
    some classes compute constants such as centre frequencies at construction)
    and then cast to ``dtype``, exactly as the frontend saw the original.
    """
    construct_dtype = construct_dtype or dtype
    cls_name = record["class"]
    if cls_name not in MODULES:
        raise UnsupportedModuleError(path, cls_name, "is not a FLAMO module adac can rebuild")
    if record["map"] == "custom":
        raise UnsupportedModuleError(path, cls_name, record.get("reason") or
                                     "was exported with a custom map; its raw parameters cannot be rebuilt "
                                     "(the compiled DSP is exact, only json_to_flamo is refused)")
    cls = getattr(dsp, cls_name)
    accepted = inspect.signature(cls.__init__).parameters
    kwargs = {k: _decode(v) for k, v in record["args"].items()}
    kwargs["size"] = tuple(kwargs["size"])
    for key in ("m_L", "m_R"):
        if isinstance(kwargs.get(key), torch.Tensor):
            kwargs[key] = kwargs[key].to(construct_dtype)
    kwargs.update({"nfft": nfft, "alias_decay_db": alias_decay_db, "dtype": construct_dtype, "device": "cpu"})
    kwargs = {k: v for k, v in kwargs.items() if k in accepted}
    module = cls(**kwargs)
    state = record.get("state")
    if state:
        mapping = module.map_filter
        mapping.shifts = torch.tensor(state["shifts"], dtype=mapping.shifts.dtype)
        mapping.m_L = torch.tensor(state["m_L"], dtype=mapping.m_L.dtype)
        mapping.m_R = torch.tensor(state["m_R"], dtype=mapping.m_R.dtype)
        module.get_freq_response()
        module.get_freq_convolve()
    param = torch.tensor(record["param"], dtype=construct_dtype)
    if tuple(param.shape) != tuple(module.param.shape):
        raise AdacError(f"{path}: {cls_name} param has shape {tuple(param.shape)}, the constructor makes {tuple(module.param.shape)}")
    module.assign_value(param)
    if dtype != construct_dtype:
        module.set_dtype(dtype)
        set_mapping_dtype(module, dtype)
        if hasattr(module, "omega"):
            # delay modules compute their frequency grid at construction: in float32 it would
            # put phase errors of ~1e-7 * omega * d into a float64 reference
            module.initialize_class()
    if record["map"] == "baked":
        module.map = _identity
    return module


REBUILD = KindTable("FLAMO rebuild")


def _build(node: dict, settings: dict) -> nn.Module:
    return REBUILD(node, settings)


@REBUILD.register("series")
def _series(node, settings):
    return system.Series(OrderedDict((c.get("name") or str(i), _build(c, settings)) for i, c in enumerate(node["children"])))


@REBUILD.register("parallel")
def _parallel(node, settings):
    a, b = node["children"]
    return system.Parallel(_build(a, settings), _build(b, settings), sum_output=node["sum_output"])


@REBUILD.register("recursion")
def _recursion(node, settings):
    return system.Recursion(_build(node["feedforward"], settings), _build(node["feedback"], settings))


@REBUILD.register("delay", "gain", "householder", "fir", "sos", "gain_delay")
def _dsp_module(node, settings):
    if "flamo" not in node:
        raise UnsupportedModuleError(node.get("path", ""), node["kind"], "has no FLAMO record to rebuild from")
    return build_module(node["flamo"], path=node.get("path", ""), **settings)


def _layer(shell: dict, which: str, settings: dict, overridden: dict) -> nn.Module:
    """A Shell layer rebuilt from its class and recorded arguments (an nfft or alias decay given to
    json_to_flamo overrides the recorded one, as for the core). A layer whose function is not stored
    (a custom ``Transform``, an unknown class) is refused rather than rebuilt as something else."""
    name = shell.get(which) or "Identity"
    if name == "Identity":
        return nn.Identity()
    args = dict(shell.get(f"{which}_args") or {})
    if name in ("FFT", "iFFT", "FFTAntiAlias", "iFFTAntiAlias"):
        args.setdefault("nfft", settings["nfft"])
        if overridden.get("nfft"):
            args["nfft"] = settings["nfft"]
        if name.endswith("AntiAlias"):
            args.setdefault("alias_decay_db", settings["alias_decay_db"])
            if overridden.get("alias_decay_db"):
                args["alias_decay_db"] = settings["alias_decay_db"]
        return getattr(dsp, name)(dtype=settings["dtype"], **args)
    raise UnsupportedModuleError(f"Shell {which.replace('_', ' ')}", name,
                                 "is a transform whose function is not stored in the IR, so "
                                 "json_to_flamo cannot rebuild it (the compiled DSP is exact: only the round trip is refused)")


def json_to_flamo(ir: dict, *, dtype: torch.dtype | None = None, nfft: int | None = None,
                  alias_decay_db: float | None = None) -> nn.Module:
    """Rebuild a FLAMO model from an IR.

    Args:
        ir: IR document (validated here).
        dtype, nfft, alias_decay_db: override the model's recorded settings, e.g.
            ``dtype=torch.float64`` and a large ``nfft`` for a reference response.

    Returns:
        ``flamo.processor.system.Shell`` if the exported model was a Shell, else the core module.
        Shell input/output layers are rebuilt by class and recorded arguments (Identity, FFT, iFFT,
        FFTAntiAlias, iFFTAntiAlias); a custom ``Transform`` is refused, since its function is not stored.
    """
    validate_ir(ir, source=f"IR of {ir.get('name', '?')!r}" if isinstance(ir, dict) else "IR")
    recorded = ir["flamo"]
    settings = {
        "nfft": int(nfft or recorded["nfft"]),
        "alias_decay_db": float(recorded["alias_decay_db"] if alias_decay_db is None else alias_decay_db),
        "dtype": dtype or _DTYPES[recorded["dtype"]],
        "construct_dtype": _DTYPES[recorded["dtype"]],
    }
    core = _build(ir["graph"], settings)
    shell = recorded.get("shell")
    if shell is None:
        return core
    overridden = {"nfft": nfft is not None, "alias_decay_db": alias_decay_db is not None}
    return system.Shell(core, input_layer=_layer(shell, "input_layer", settings, overridden),
                        output_layer=_layer(shell, "output_layer", settings, overridden))
