"""A user's model: the factory a manifest names, and the checkpoint loaded into the model it returns.

The factory (``model.factory``: ``file.py:function`` or ``module:function``) is called as
``build_model(fs: int) -> flamo.processor.system.Shell``; the checkpoint is loaded with
``torch.load(weights_only=True)`` (unless the manifest opts in to pickles) and
``load_state_dict(strict=True)``. Every failure is an :class:`AdacError` naming the file and field.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys

import torch

from ...common.errors import AdacError

STATE_DICT_KEYS = ("state_dict", "model")


def load_factory(manifest):
    """The model factory named by ``model.factory`` (``file.py:function`` or ``module:function``)."""
    target, _, function = manifest.factory.rpartition(":")
    where = f"{manifest.path}: /model/factory"
    if target.endswith(".py"):
        file = (manifest.folder / target).resolve()
        if not file.is_file():
            raise AdacError(f"{where}: no such file {file}")
        spec = importlib.util.spec_from_file_location(f"adac_factory_{manifest.name}", file)
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(file.parent))  # the factory may import its neighbours
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: report, don't crash
            raise AdacError(f"{where}: importing {file} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(file.parent))
    else:
        sys.path.insert(0, str(manifest.folder))
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise AdacError(f"{where}: importing module {target!r} (from {manifest.folder} or the installed "
                            f"packages) failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(manifest.folder))
    factory = getattr(module, function, None)
    if not callable(factory):
        raise AdacError(f"{where}: {target} has no function {function!r}")
    return factory


def _state_dict(loaded, manifest):
    if isinstance(loaded, torch.nn.Module):
        return loaded.state_dict()
    if isinstance(loaded, dict):
        for key in STATE_DICT_KEYS:
            entry = loaded.get(key)
            if isinstance(entry, torch.nn.Module):
                return entry.state_dict()
            if isinstance(entry, dict):
                return entry
        if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return loaded
    raise AdacError(f"{manifest.checkpoint}: not a state_dict (nor a dict with a 'state_dict' or 'model' entry); "
                    f"got {type(loaded).__name__}" + (f" with keys {', '.join(map(str, list(loaded)[:8]))}"
                                                      if isinstance(loaded, dict) else ""))


def load_model(manifest):
    """Build the factory's model and load the checkpoint into it (weights only unless the manifest opts in).

    ``manifest``: a :class:`adac.build.manifest.Manifest` (its path, folder, name, factory, checkpoint,
    fs and allow_pickle fields are read).
    """
    if not manifest.checkpoint.is_file():
        raise AdacError(f"{manifest.path}: /model/checkpoint: no such file {manifest.checkpoint}")
    factory = load_factory(manifest)
    try:
        model = factory(manifest.fs)
    except Exception as exc:
        raise AdacError(f"{manifest.path}: /model/factory: {manifest.factory}({manifest.fs}) failed: "
                        f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise AdacError(f"{manifest.path}: /model/factory: {manifest.factory}({manifest.fs}) returned "
                        f"{type(model).__name__}, not a FLAMO model (flamo.processor.system.Shell)")
    try:
        loaded = torch.load(manifest.checkpoint, map_location="cpu", weights_only=not manifest.allow_pickle)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        hint = "" if manifest.allow_pickle else (" (it is loaded with weights_only=True; a whole pickled model "
                                                 "needs model.allow_pickle: true in the manifest)")
        raise AdacError(f"{manifest.checkpoint}: cannot load checkpoint: {first}{hint}") from exc
    state = _state_dict(loaded, manifest)
    complex_keys = sorted(k for k, v in state.items() if isinstance(v, torch.Tensor) and torch.is_complex(v))
    if complex_keys:
        # load_state_dict would cast them into the model's real parameters, dropping the imaginary part
        raise AdacError(f"{manifest.checkpoint}: complex-valued tensor(s) {', '.join(complex_keys[:8])}"
                        f"{' ...' if len(complex_keys) > 8 else ''}: FLAMO parameters are real, and loading them would "
                        "drop the imaginary part; save the real parameters the model was trained with")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
              for k in sorted(set(state) & set(expected))
              if hasattr(state[k], "shape") and tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        details = "; ".join(filter(None, [
            f"missing keys: {', '.join(missing)}" if missing else "",
            f"unexpected keys: {', '.join(unexpected)}" if unexpected else "",
            f"shape mismatches: {', '.join(shapes)}" if shapes else "",
        ]))
        raise AdacError(f"{manifest.checkpoint}: does not fit the architecture of {manifest.factory} "
                        f"(manifest {manifest.path}): {details}")
    try:
        model.load_state_dict(state, strict=True)
    except Exception as exc:  # e.g. dtype trouble a shape check does not see
        raise AdacError(f"{manifest.checkpoint}: load_state_dict failed: {exc}") from exc
    return model
