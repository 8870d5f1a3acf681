"""The build steps, one function per artefact; SCons calls them through ``python3 -m adac``.

checkpoint + factory -> IR .json -> .dsp -> .cert.json -> JUCE project -> plugin bundles.
Every step writes atomically, so a failed step leaves no target behind.
"""
from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

from .errors import AdacError
from .fileio import write_json_atomic, write_text_atomic
from .manifest import Manifest


def load_factory(manifest: Manifest):
    """The model factory named by ``model.factory`` (``file.py:function`` or ``module:function``)."""
    target, _, function = manifest.factory.rpartition(":")
    where = f"{manifest.path}: /model/factory"
    if target.endswith(".py"):
        file = (manifest.folder / target).resolve()
        if not file.is_file():
            raise AdacError(f"{where}: no such file {file}")
        spec = importlib.util.spec_from_file_location(f"adac_factory_{manifest.name}", file)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:  # the user's code: report, don't crash
            raise AdacError(f"{where}: importing {file} failed: {type(exc).__name__}: {exc}") from exc
    else:
        sys.path.insert(0, str(manifest.folder))
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise AdacError(f"{where}: importing module {target!r} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.path.remove(str(manifest.folder))
    factory = getattr(module, function, None)
    if not callable(factory):
        raise AdacError(f"{where}: {target} has no function {function!r}")
    return factory


def _state_dict(loaded, manifest: Manifest):
    import torch

    if isinstance(loaded, torch.nn.Module):
        return loaded.state_dict()
    if isinstance(loaded, dict):
        for key in ("state_dict", "model"):
            if isinstance(loaded.get(key), dict):
                return loaded[key]
        if all(isinstance(v, torch.Tensor) for v in loaded.values()):
            return loaded
    raise AdacError(f"{manifest.checkpoint}: not a state_dict (nor a dict with a 'state_dict' or 'model' entry)")


def load_model(manifest: Manifest):
    """Build the factory's model and load the checkpoint into it (weights only unless the manifest opts in)."""
    import torch

    if not manifest.checkpoint.is_file():
        raise AdacError(f"{manifest.path}: /model/checkpoint: no such file {manifest.checkpoint}")
    try:
        model = load_factory(manifest)(manifest.fs)
    except AdacError:
        raise
    except Exception as exc:
        raise AdacError(f"{manifest.path}: /model/factory: {manifest.factory}({manifest.fs}) failed: {type(exc).__name__}: {exc}") from exc
    try:
        loaded = torch.load(manifest.checkpoint, map_location="cpu", weights_only=not manifest.allow_pickle)
    except Exception as exc:
        hint = "" if manifest.allow_pickle else " (it is loaded with weights_only=True; a whole pickled model needs model.allow_pickle: true)"
        raise AdacError(f"{manifest.checkpoint}: cannot load checkpoint: {str(exc).splitlines()[0]}{hint}") from exc
    state = _state_dict(loaded, manifest)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    shapes = [f"{k}: checkpoint {tuple(state[k].shape)}, model {tuple(expected[k].shape)}"
              for k in sorted(set(state) & set(expected)) if tuple(state[k].shape) != tuple(expected[k].shape)]
    if missing or unexpected or shapes:
        details = "; ".join(filter(None, [
            f"missing keys: {', '.join(missing)}" if missing else "",
            f"unexpected keys: {', '.join(unexpected)}" if unexpected else "",
            f"shape mismatches: {', '.join(shapes)}" if shapes else "",
        ]))
        raise AdacError(f"{manifest.checkpoint}: does not fit the architecture of {manifest.factory}: {details}")
    model.load_state_dict(state, strict=True)
    return model


def write_ir(manifest: Manifest, out: Path) -> Path:
    from .flamo_frontend import flamo_to_json
    from .ir import save_ir

    return save_ir(flamo_to_json(load_model(manifest), manifest.fs, name=manifest.display_name), out)


def write_dsp(manifest: Manifest, ir_path: Path, out: Path) -> Path:
    from .faust_backend import json_to_faust
    from .ir import load_ir

    options = {"fractional_order": manifest.fractional_order} if manifest.fractional_order else {}
    return write_text_atomic(out, json_to_faust(load_ir(ir_path), manifest.controls or None, **options))


def write_certificate(manifest: Manifest, ir_path: Path, out: Path) -> Path:
    """Write the stability certificate, then refuse the build if strict and not certified."""
    from .certify import certify, gate
    from .ir import load_ir

    certificate = certify(load_ir(ir_path), manifest.controls or None)
    write_json_atomic(out, certificate)
    gate(certificate, strict=manifest.strict)
    return out


def write_juce_project(manifest: Manifest, dsp_path: Path, out: Path) -> Path:
    from .juce import export_juce

    identity = manifest.identity
    return export_juce(Path(dsp_path).read_text(), out, name=manifest.name, display_name=manifest.display_name,
                       manufacturer=identity["manufacturer"], manufacturer_code=identity["manufacturer_code"],
                       plugin_code=identity["plugin_code"], version=identity["version"], formats=manifest.formats,
                       bundle_id=identity.get("bundle_id"), faust_flags=manifest.faust_options)


def build_plugin(manifest: Manifest, project_dir: Path, listing_path: Path, *, release: bool = False) -> Path:
    """Build the bundles, copy them next to the other artefacts, and list them with checksums."""
    from .juce import build_plugin as cmake_build, copy_bundles

    out = Path(listing_path).parent
    built = cmake_build(project_dir, out / ("juce-build-release" if release else "juce-build"), strip=release)
    dest = out / ("release" if release else "bundles")
    if release:
        dest = dest / f"{manifest.name}-{manifest.identity['version']}"
    listing = copy_bundles(built, dest)
    return write_json_atomic(listing_path, {"name": manifest.name, "version": manifest.identity["version"],
                                            "release": release, "bundles": listing})
