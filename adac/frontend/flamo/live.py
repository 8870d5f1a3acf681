"""Incremental extraction for training: a model's IR, step after step, with its structure read once.

    extractor = LiveExtractor(48000, name="MyReverb")
    for step in range(steps):
        ...optimiser step...
        ir = extractor(model)    # the IR flamo_to_json(model, 48000, name="MyReverb") gives, in a fraction of its time

Training changes a FLAMO model's parameter values, not its structure. The first call (and any call after
the structure changed) is a full :func:`adac.frontend.flamo.extract.extract`: the IR, validated once, and
its leaves (one node per FLAMO DSP module). It also keeps a *shadow* of the model: a copy held in the
analysis view every extraction reads in (float64, no anti-aliasing envelope: :func:`analysis_view`), set
up once per structure. A later call copies the model's parameters into the shadow (float32 -> float64 is
exact) and re-reads the values of each leaf whose parameter changed, through the same registry rows
(:data:`MODULES`) the full extraction uses, on the shadow's module: the same functions on the same float64 numbers, so the values
are the full extraction's, bit for bit. Filter sections come from FLAMO's own coefficient computation
(``get_poly_coeff``), never from a frequency response; nothing per step depends on ``nfft``, and the
schema is not validated again (only numbers changed, and the rows check them: finite values, delays
not negative, stable designs).

*Structure*, compared at every call (a full extraction when it differs): the module tree (names and
classes), each DSP module's parameter shape, constructor arguments (``fs``, ``isint``, band layout, ...),
maps (by identity) and construction-time state, and the Shell's input/output layers. Delay lengths are
values: a new length is re-read like any other value, and changes the code's integers (the hot-reload
host then compiles rather than updating constants).
"""
from __future__ import annotations

import copy

import torch
from torch import nn

from flamo.processor import dsp, system

from .extract import constructor_args, extract, module_state, record_param, shell_layers
from .modules import MAP_ATTRIBUTES, MODULES, reconfigure


def structure(model: nn.Module) -> list:
    """What a training step does not change, as a comparable list (one entry per module, plus the Shell's layers)."""
    key: list = [shell_layers(model) if isinstance(model, system.Shell) else None]
    for name, module in model.named_modules():
        cls = type(module).__name__
        row = MODULES.get(cls) if type(module) is getattr(dsp, cls, None) else None
        if row is None:
            key.append((name, cls))
            continue
        maps = tuple(id(module.__dict__.get(attribute)) for attribute in MAP_ATTRIBUTES)
        key.append((name, cls, tuple(module.param.shape), constructor_args(module, row, name), maps,
                    module_state(module)))
    return key


class LiveExtractor:
    """IR of a model that trains: the structure once, then only values (see the module doc).

    Args:
        fs, name: as for :func:`adac.frontend.flamo.flamo_to_json`.

    Attributes:
        extractions: full extractions so far (1 after the first call; one more per structural change).
    """

    def __init__(self, fs: int, name: str = "adac_model"):
        self.fs, self.name = fs, name
        self.extractions = 0
        self._structure: list | None = None
        self._document: dict | None = None
        self._leaves: list = []   # (node, index of the module in model.modules(), row)
        self._shadow_modules: list[nn.Module] = []  # the shadow's model.modules()

    def __call__(self, model: nn.Module) -> dict:
        """The IR of ``model`` now (the same document object, its values updated, while the structure stays)."""
        key = structure(model) if isinstance(model, nn.Module) else None
        if key is None or key != self._structure:
            return self._extract(model, key)
        changed = set()
        with torch.no_grad():
            for i, (live, shadow) in enumerate(zip(model.modules(), self._shadow_modules)):
                if isinstance(live, dsp.DSP):
                    value = live.param.detach().to(shadow.param.dtype)
                    if not torch.equal(value, shadow.param):
                        shadow.param.copy_(value)
                        changed.add(i)
            for node, index, row in self._leaves:
                if index in changed:
                    module, path = self._shadow_modules[index], node["path"]
                    node.update(row.extract(module, path))
                    node["flamo"]["param"] = record_param(module, node["flamo"]["map"], path)
        return self._document

    def _extract(self, model: nn.Module, key: list | None) -> dict:
        document, leaves = extract(model, self.fs, self.name)  # validates; refuses what is not a model
        index = {id(module): i for i, module in enumerate(model.modules())}
        shadow = copy.deepcopy(model)
        reconfigure(shadow, dtype=torch.float64, alias_decay_db=0.0)  # analysis_view's settings, kept
        self._shadow_modules = list(shadow.modules())
        self._leaves = [(node, index[id(module)], row) for node, module, row in leaves]
        self._document, self._structure = document, key
        self.extractions += 1
        return document
