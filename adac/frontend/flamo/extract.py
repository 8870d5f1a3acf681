"""FLAMO frontend: a FLAMO model -> the IR (:func:`flamo_to_json`).

Walks any nesting of Shell, Series, Parallel, Recursion and ``flamo.processor.dsp`` modules and writes,
for code generation, the effective values the model applies (read through the registry in
:mod:`adac.frontend.flamo.modules`) and, for the round trip, each module's raw parameter tensor with
its constructor arguments (checked by rebuilding it: :mod:`adac.frontend.flamo.rebuild`).
"""
from __future__ import annotations

import inspect
from importlib.metadata import PackageNotFoundError, version

import numpy as np
import torch
from torch import nn

from flamo.processor import dsp, system

from ...common.errors import AdacError, UnsupportedModuleError
from ...common.version import __version__
from ...ir import IR_FORMAT, IR_VERSION, validate_ir
from .modules import MODULES, ModuleRow, analysis_view, model_settings, raw_param, real_values
from .rebuild import build_module


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


def module_state(module: nn.Module) -> dict:
    """Random state drawn at construction that the round trip must restore."""
    mapping = getattr(module, "map_filter", None)
    if mapping is not None and hasattr(mapping, "shifts"):
        return {"shifts": mapping.shifts.detach().to(torch.float64).tolist(),
                "m_L": mapping.m_L.detach().to(torch.float64).tolist(),
                "m_R": mapping.m_R.detach().to(torch.float64).tolist()}
    return {}


def _flamo_record(module: nn.Module, row: ModuleRow, node: dict, path: str, construct_dtype) -> dict:
    """Raw tensor, constructor args, and whether the class's own map reproduces the node."""
    # the rebuilder is the judge of reproducibility
    record = {
        "class": type(module).__name__,
        "args": constructor_args(module, row, path),
        "param": record_param(module, "constructor", path),
        "map": "constructor",
    }
    state = module_state(module)
    if state:
        record["state"] = state
    settings = {"nfft": int(module.nfft), "alias_decay_db": 0.0, "dtype": torch.float64, "construct_dtype": construct_dtype}
    twin_node, twin = None, None
    try:
        twin = build_module(record, **settings)
        twin_node = row.extract(twin, path)
    except (AdacError, AssertionError, TypeError, ValueError, RuntimeError):
        twin_node = None
    if twin_node != node:
        if row.bakeable:
            record["map"] = "baked"
            record["param"] = record_param(module, "baked", path)
        else:
            record["map"] = "custom"
            if _other_band_edges(module, twin):
                record["reason"] = ("was built with band edges (start_freq/end_freq) other than FLAMO's defaults, "
                                    "which the module does not keep and the IR has not stored, so json_to_flamo cannot "
                                    "rebuild it (the compiled DSP is exact: only the round trip is refused)")
    return record


def record_param(module: nn.Module, how: str, path: str) -> list:
    """The round trip's parameter of ``module``: its raw ``param``, or for a ``baked`` map (``how``) the
    mapped values, as nested lists of the param's (or the mapped values') shape."""
    if how == "baked":
        return real_values(module.map(module.param), path, type(module).__name__).tolist()
    return raw_param(module, path).to(torch.float64).cpu().tolist()


def _other_band_edges(module: nn.Module, twin: nn.Module | None) -> bool:
    """A module whose constructor took start_freq/end_freq (not kept by FLAMO) and whose bands differ
    from the ones a default construction gives."""
    if not _UNSTORED_DEFAULTS & set(inspect.signature(type(module).__init__).parameters):
        return False
    ours, theirs = getattr(module, "center_freq", None), getattr(twin, "center_freq", None)
    if not isinstance(ours, torch.Tensor) or not isinstance(theirs, torch.Tensor):
        return twin is None
    return ours.shape != theirs.shape or not torch.equal(ours.to(torch.float64), theirs.to(torch.float64))


# ----------------------------------------------------------------------------
# Traversal
# ----------------------------------------------------------------------------


class _Walker:
    """Writes the graph; ``leaves`` lists, in the order written, ``(node, module, row)`` for every FLAMO DSP
    module (the nodes a training step changes the values of: :mod:`adac.frontend.flamo.live`)."""

    def __init__(self, construct_dtype):
        self.count = 0
        self.construct_dtype = construct_dtype
        self.leaves: list[tuple[dict, nn.Module, ModuleRow]] = []

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
        raw_param(module, path)
        fields = row.extract(module, path)
        node = self.node(fields, path, name)
        node["flamo"] = _flamo_record(module, row, fields, path, self.construct_dtype)
        self.leaves.append((node, module, row))
        return node


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _layer_name(layer) -> str:
    return type(layer).__name__


# Shell layers the round trip rebuilds, with the constructor arguments each keeps as attributes
LAYER_ARGS = {"FFT": ("nfft", "norm"), "iFFT": ("nfft", "norm"), "FFTAntiAlias": ("nfft", "norm", "alias_decay_db"),
              "iFFTAntiAlias": ("nfft", "norm", "alias_decay_db")}


def shell_layers(model) -> dict:
    """The Shell's input/output layer classes and, for the FFT layers, their arguments (a custom
    ``Transform`` keeps only its class name: its function cannot be stored, and json_to_flamo refuses it)."""
    shell = {}
    for which, layer in (("input_layer", model.get_inputLayer()), ("output_layer", model.get_outputLayer())):
        name = _layer_name(layer)
        shell[which] = name
        if name in LAYER_ARGS and type(layer) is getattr(dsp, name, None):
            args = {key: getattr(layer, key) for key in LAYER_ARGS[name]}
            args["nfft"] = int(args["nfft"])
            if "alias_decay_db" in args:
                args["alias_decay_db"] = float(args["alias_decay_db"])
            shell[f"{which}_args"] = args
    return shell


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
    return extract(model, fs, name)[0]


def extract(model: nn.Module, fs: int, name: str = "adac_model") -> tuple[dict, list[tuple[dict, nn.Module, ModuleRow]]]:
    """:func:`flamo_to_json`'s IR (validated) and the walker's leaves: ``(node, module, row)`` per FLAMO DSP
    module, ``node`` being the document's own node of ``module``."""
    if not isinstance(model, nn.Module):
        raise AdacError(f"flamo_to_json: expected a FLAMO model (torch.nn.Module), got {type(model).__name__}")
    if not isinstance(fs, (int, np.integer)) or isinstance(fs, bool) or fs <= 0:
        raise AdacError(f"flamo_to_json: fs must be a positive integer sample rate in Hz, got {fs!r}")
    settings = model_settings(model)
    shell = None
    if isinstance(model, system.Shell):
        shell = shell_layers(model)
    walker = _Walker(settings["dtype"])
    with analysis_view(model, dtype=torch.float64, alias_decay_db=0.0), torch.no_grad():
        graph = walker.walk(model, "", "model")
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
    return validate_ir(document, source=f"IR of {name!r}"), walker.leaves


def flamo_version() -> str:
    try:
        return version("flamo")
    except PackageNotFoundError:
        return "unknown"
