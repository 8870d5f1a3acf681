"""The build steps, one function per artefact; SCons runs them through ``python3 -m adac``.

    checkpoint + factory --ir_step--> <Name>.json --dsp_step--> <Name>.dsp --juce_step--> juce/ --plugin_step--> bundles
                                          |--cert_step--> <Name>.cert.json             ^
                                          '--backend_step--> backend.json -------------' (backend: auto)

The JUCE project holds the FAUST classes of the .dsp, or (manifest ``backend: native``, or ``auto`` when
``backend.json`` chose it) the native kernel's classes of the IR: then the IR is an input of the JUCE step too.

Every step validates the manifest again and writes atomically (temp file + rename), so a
failed step leaves no target behind: SCons itself does not delete the target of a failed
action, and a half-written file would otherwise look built to the next reader.
"""
from __future__ import annotations

from pathlib import Path

from ..backends.faust import json_to_faust
from ..backends.juce import build_plugin, copy_bundles, export_juce
from ..backends.juce.project import PROJECT_INFO, NativeModel, plugin_faust_flags
from ..backends.native import NativeUnsupported
from ..backends.native.timing import choose_backend
from ..certificate import certify_rates, gate
from ..common.errors import AdacError, StabilityError
from ..common.fileio import read_json, read_text, write_json_atomic, write_text_atomic
from ..frontend.flamo import flamo_to_json, load_model
from ..ir import load_ir, save_ir
from .manifest import Manifest


# ----------------------------------------------------------------------------------------- the steps

def ir_step(manifest: Manifest, out: Path) -> Path:
    """checkpoint + factory -> IR (validated before it is written)."""
    return save_ir(flamo_to_json(load_model(manifest), manifest.fs, name=manifest.display_name), out)


def dsp_step(manifest: Manifest, ir_path: Path, out: Path) -> Path:
    """IR + the manifest's controls -> FAUST ``.dsp`` (in relowered mode with the model lowered for every
    rate of ``sample_rate.rates``, :func:`adac.backends.faust.rate_process`)."""
    code = json_to_faust(load_ir(ir_path), manifest.controls or None, rates=manifest.lowered_rates,
                         **manifest.codegen_options)
    return write_text_atomic(out, code)


def refused_path(out: Path) -> Path:
    """Where a refused certificate goes (``X.cert.json`` -> ``X.cert.refused.json``): readable, but no target."""
    out = Path(out)
    stem = out.name[:-len(".json")] if out.name.endswith(".json") else out.name
    return out.with_name(f"{stem}.refused.json")


def cert_step(manifest: Manifest, ir_path: Path, out: Path) -> Path:
    """IR -> stability certificate (with one per lowered rate). Strict manifests refuse a model it does not certify: then the
    certificate is written to ``<Name>.cert.refused.json`` for reading, and the target is not written."""
    out = Path(out)
    certificate = certify_rates(load_ir(ir_path), manifest.controls or None, manifest.lowered_rates,
                                **manifest.codegen_options)
    refused = refused_path(out)
    try:
        gate(certificate, strict=manifest.strict)
    except StabilityError as exc:
        out.unlink(missing_ok=True)
        write_json_atomic(refused, certificate)
        raise StabilityError(f"{manifest.path}: {exc} (certificate: {refused})") from None
    refused.unlink(missing_ok=True)
    return write_json_atomic(out, certificate)


def backend_step(manifest: Manifest, ir_path: Path, dsp_path: Path, out: Path) -> Path:
    """IR + ``.dsp`` -> ``backend.json``: which realisation the plugin takes with ``backend: auto``, the faster of
    FAUST's and the native kernel's at the model's rate (:func:`adac.backends.native.timing.choose_backend`, compiled
    as the plugin is), with both figures; one line on stdout says which and why."""
    choice = choose_backend(read_text(dsp_path, "FAUST file"), load_ir(ir_path), manifest.controls or None,
                            faust_flags=plugin_faust_flags(manifest.faust_options), **manifest.codegen_options)
    write_json_atomic(out, choice)
    print(f"{manifest.name}: backend auto -> {choice['backend']}: {choice['reason']}")
    return Path(out)


def _chosen_backend(manifest: Manifest, choice_path: Path | None) -> str:
    """The realisation the plugin takes: the manifest's ``backend``, or with ``auto`` what ``backend.json`` chose."""
    if manifest.backend != "auto":
        return manifest.backend
    if choice_path is None:
        raise AdacError(f"{manifest.path}: backend: auto: the JUCE step needs the measured choice (backend.json)")
    choice = read_json(choice_path, "backend choice")
    if not isinstance(choice, dict) or choice.get("backend") not in ("faust", "native"):
        raise AdacError(f"{choice_path}: not a backend choice (expected backend: faust or native); build it again")
    return choice["backend"]


def juce_step(manifest: Manifest, dsp_path: Path, out: Path, *, ir_path: Path | None = None,
              choice_path: Path | None = None) -> Path:
    """``.dsp`` (FAUST backend) or IR (native backend) -> JUCE CMake project folder (files whose content did not
    change keep their mtime). ``ir_path`` is needed unless the manifest's backend is faust, ``choice_path`` (the
    :func:`backend_step`'s ``backend.json``) with ``backend: auto``. A model the native kernel cannot realise
    with ``backend: native`` is an error naming the manifest and the field; nothing is written then."""
    backend = _chosen_backend(manifest, choice_path)
    if backend == "faust":
        model = read_text(dsp_path, "FAUST file")
    elif ir_path is None:
        raise AdacError(f"{manifest.path}: backend: {manifest.backend}: the JUCE step needs the IR (--ir)")
    else:
        model = NativeModel(load_ir(ir_path), manifest.controls or None, **manifest.codegen_options)
    identity = manifest.identity
    try:
        return export_juce(model, out, name=manifest.name, display_name=manifest.display_name,
                           manufacturer=identity["manufacturer"], manufacturer_code=identity["manufacturer_code"],
                           plugin_code=identity["plugin_code"], version=identity["version"], formats=manifest.formats,
                           bundle_id=identity.get("bundle_id"), faust_flags=manifest.faust_options,
                           sample_rate=manifest.sample_rate)
    except NativeUnsupported as exc:
        raise AdacError(f"{manifest.path}: backend: {manifest.backend}: {exc}") from None


def plugin_step(manifest: Manifest, project_dir: Path, listing_path: Path, *, juce_build: Path | None = None,
                 config: str = "Release", jobs: int = 2) -> Path:
    """JUCE project -> plugin bundles, copied to ``<out>/bundles/`` and listed (with sha256) in ``listing_path``.

    ``juce_build`` is the build tree shared by every plugin of a build (JUCE's modules are compiled
    there once, each plugin adds its own sources and links).
    """
    out = Path(listing_path).parent
    built = build_plugin(project_dir, juce_build or out / "juce-build", config=config, jobs=jobs)
    backend = read_json(Path(project_dir) / PROJECT_INFO, "JUCE project info").get("backend", "faust")
    listing = copy_bundles(built, out / "bundles")
    return write_json_atomic(listing_path, {"name": manifest.name, "version": manifest.version,
                                            "config": config, "backend": backend, "bundles": listing})
