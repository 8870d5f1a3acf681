"""The build steps, one function per artefact; SCons calls them through ``python3 -m adac``.

    checkpoint + factory --write_ir--> <Name>.json --write_dsp--> <Name>.dsp --write_juce_project--> juce/
                                          '--write_certificate--> <Name>.cert.json     build_plugin --> bundles

Every step validates the manifest again and writes atomically (temp file + rename), so a
failed step leaves no target behind: SCons itself does not delete the target of a failed
action, and a half-written file would otherwise look built to the next reader.

The model factory named by the manifest's ``model.factory`` is called as
``build_model(fs: int) -> flamo.processor.system.Shell``; the checkpoint is loaded into the
model it returns with ``load_state_dict(strict=True)``.
"""
from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path

from .errors import AdacError, StabilityError
from .fileio import sha256_of, write_json_atomic, write_text_atomic
from .manifest import Manifest

STATE_DICT_KEYS = ("state_dict", "model")


# ------------------------------------------------------------------------------------ model loading

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


def _state_dict(loaded, manifest: Manifest):
    import torch

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


def load_model(manifest: Manifest):
    """Build the factory's model and load the checkpoint into it (weights only unless the manifest opts in)."""
    import torch

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


# ----------------------------------------------------------------------------------------- the steps

def write_ir(manifest: Manifest, out: Path) -> Path:
    """checkpoint + factory -> IR (validated before it is written)."""
    from .flamo_frontend import flamo_to_json
    from .ir import save_ir

    return save_ir(flamo_to_json(load_model(manifest), manifest.fs, name=manifest.display_name), out)


def write_dsp(manifest: Manifest, ir_path: Path, out: Path) -> Path:
    """IR + the manifest's controls -> FAUST ``.dsp``."""
    from .faust_backend import json_to_faust
    from .ir import load_ir

    options = {"fractional_order": manifest.fractional_order} if manifest.fractional_order else {}
    return write_text_atomic(out, json_to_faust(load_ir(ir_path), manifest.controls or None, **options))


def refused_path(out: Path) -> Path:
    """Where a refused certificate goes (``X.cert.json`` -> ``X.cert.refused.json``): readable, but no target."""
    out = Path(out)
    stem = out.name[:-len(".json")] if out.name.endswith(".json") else out.name
    return out.with_name(f"{stem}.refused.json")


def write_certificate(manifest: Manifest, ir_path: Path, out: Path) -> Path:
    """IR -> stability certificate. Strict manifests refuse a model it does not certify: then the
    certificate is written to ``<Name>.cert.refused.json`` for reading, and the target is not written."""
    from .certify import certify, gate
    from .ir import load_ir

    out = Path(out)
    certificate = certify(load_ir(ir_path), manifest.controls or None)
    refused = refused_path(out)
    try:
        gate(certificate, strict=manifest.strict)
    except StabilityError as exc:
        out.unlink(missing_ok=True)
        write_json_atomic(refused, certificate)
        raise StabilityError(f"{manifest.path}: {exc} (certificate: {refused})") from None
    refused.unlink(missing_ok=True)
    return write_json_atomic(out, certificate)


def write_juce_project(manifest: Manifest, dsp_path: Path, out: Path) -> Path:
    """``.dsp`` -> JUCE CMake project folder (files whose content did not change keep their mtime)."""
    from .juce import export_juce

    identity = manifest.identity
    return export_juce(Path(dsp_path).read_text(), out, name=manifest.name, display_name=manifest.display_name,
                       manufacturer=identity["manufacturer"], manufacturer_code=identity["manufacturer_code"],
                       plugin_code=identity["plugin_code"], version=identity["version"], formats=manifest.formats,
                       bundle_id=identity.get("bundle_id"), faust_flags=manifest.faust_options)


def build_plugin(manifest: Manifest, project_dir: Path, listing_path: Path, *, juce_build: Path | None = None,
                 config: str = "Release", jobs: int = 2) -> Path:
    """JUCE project -> plugin bundles, copied to ``<out>/bundles/`` and listed (with sha256) in ``listing_path``.

    ``juce_build`` is the build tree shared by every plugin of a build (JUCE's modules are compiled
    there once, each plugin adds its own sources and links).
    """
    from .juce import build_plugin as cmake_build, copy_bundles

    out = Path(listing_path).parent
    built = cmake_build(project_dir, juce_build or out / "juce-build", config=config, jobs=jobs)
    listing = copy_bundles(built, out / "bundles")
    return write_json_atomic(listing_path, {"name": manifest.name, "version": manifest.version,
                                            "config": config, "bundles": listing})


def _is_elf(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) == b"\x7fELF"


def strip_binaries(bundle: Path) -> list[Path]:
    """Remove symbols from every ELF file of a bundle folder (or from one executable)."""
    from . import toolchain

    files = [bundle] if bundle.is_file() else sorted(p for p in bundle.rglob("*") if p.is_file() and not p.is_symlink())
    stripped = [f for f in files if _is_elf(f)]
    for binary in stripped:
        toolchain.run(["strip", "--strip-unneeded", str(binary)], f"strip {binary}")
    return stripped


def package_release(manifest: Manifest, out_dir: Path, artefacts: list[Path]) -> Path:
    """Release copy of a built plugin: ``out_dir`` (``build/release/<Name>-<version>``) receives the IR,
    .dsp and certificate, the bundles listed by ``<Name>.bundles.json`` (stripped), and a
    ``release-manifest.json`` listing each with its sha256. Returns the release manifest's path."""
    import shutil

    from .juce import copy_bundles

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    listed: list[Path] = []
    for source in map(Path, artefacts):
        if source.name.endswith(".bundles.json"):
            bundles = json.loads(source.read_text())["bundles"]
            copied = copy_bundles({fmt: entry["path"] for fmt, entry in bundles.items()}, out_dir / "bundles")
            for entry in copied.values():
                strip_binaries(Path(entry["path"]))
            listing = {"name": manifest.name, "version": manifest.version, "release": True,
                       "bundles": {fmt: {"path": entry["path"], "sha256": sha256_of(Path(entry["path"]))}
                                   for fmt, entry in copied.items()}}
            listed.append(write_json_atomic(out_dir / source.name, listing))
        else:
            target = out_dir / source.name
            tmp = target.with_name(f".{target.name}.tmp")
            shutil.copyfile(source, tmp)
            tmp.replace(target)
            listed.append(target)
    return write_release_manifest(out_dir / "release-manifest.json", listed)


# ---------------------------------------------------------------------------------- release manifest

_KINDS = ((".cert.json", "certificate"), (".bundles.json", None), ("release-manifest.json", None),
          (".json", "ir"), (".dsp", "dsp"))


def write_release_manifest(out: Path, inputs: list[Path]) -> Path:
    """List every artefact with its sha256, paths relative to ``out``'s folder.

    ``inputs`` are IR / .dsp / certificate files (listed as they are), ``<Name>.bundles.json``
    listings (each bundle they list is entered) and other release manifests (merged).
    """
    out = Path(out).resolve()
    base = out.parent
    artefacts: list[dict] = []

    def rel(path) -> str:
        path = Path(path).resolve()
        try:
            return path.relative_to(base).as_posix()
        except ValueError:
            raise AdacError(f"{out}: artefact {path} is not inside {base}") from None

    for source in map(Path, inputs):
        if source.name == "release-manifest.json":
            for entry in json.loads(source.read_text())["artefacts"]:
                artefacts.append({**entry, "path": rel(source.parent / entry["path"])})
            continue
        kind = next((k for suffix, k in _KINDS if source.name.endswith(suffix)), "file")
        if source.name.endswith(".bundles.json"):
            listing = json.loads(source.read_text())
            for fmt, entry in sorted(listing["bundles"].items()):
                bundle = source.parent / entry["path"]
                artefacts.append({"plugin": listing["name"], "kind": fmt, "path": rel(bundle), "sha256": sha256_of(bundle)})
        artefacts.append({"plugin": _plugin_of(source), "kind": kind or "bundle-listing", "path": rel(source),
                          "sha256": sha256_of(source)})
    artefacts.sort(key=lambda a: a["path"])
    from . import __version__

    return write_json_atomic(out, {"format": "adac-release", "adac_version": __version__, "artefacts": artefacts})


def _plugin_of(path: Path) -> str:
    name = path.name
    for suffix in (".cert.json", ".bundles.json", ".json", ".dsp"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name
