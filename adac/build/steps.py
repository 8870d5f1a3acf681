"""The build steps, one function per artefact; SCons runs them through ``python3 -m adac``.

    checkpoint + factory --ir_step--> <Name>.json --dsp_step--> <Name>.dsp --juce_step--> juce/ --plugin_step--> bundles
                                          '--cert_step--> <Name>.cert.json

Every step validates the manifest again and writes atomically (temp file + rename), so a
failed step leaves no target behind: SCons itself does not delete the target of a failed
action, and a half-written file would otherwise look built to the next reader.
"""
from __future__ import annotations

from pathlib import Path

from ..backends.faust import json_to_faust
from ..backends.juce import build_plugin, copy_bundles, export_juce
from ..certificate import certify_rates, gate
from ..common.errors import StabilityError
from ..common.fileio import read_text, write_json_atomic, write_text_atomic
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


def juce_step(manifest: Manifest, dsp_path: Path, out: Path) -> Path:
    """``.dsp`` -> JUCE CMake project folder (files whose content did not change keep their mtime)."""
    identity = manifest.identity
    return export_juce(read_text(dsp_path, "FAUST file"), out, name=manifest.name, display_name=manifest.display_name,
                       manufacturer=identity["manufacturer"], manufacturer_code=identity["manufacturer_code"],
                       plugin_code=identity["plugin_code"], version=identity["version"], formats=manifest.formats,
                       bundle_id=identity.get("bundle_id"), faust_flags=manifest.faust_options,
                       sample_rate=manifest.sample_rate)


def plugin_step(manifest: Manifest, project_dir: Path, listing_path: Path, *, juce_build: Path | None = None,
                 config: str = "Release", jobs: int = 2) -> Path:
    """JUCE project -> plugin bundles, copied to ``<out>/bundles/`` and listed (with sha256) in ``listing_path``.

    ``juce_build`` is the build tree shared by every plugin of a build (JUCE's modules are compiled
    there once, each plugin adds its own sources and links).
    """
    out = Path(listing_path).parent
    built = build_plugin(project_dir, juce_build or out / "juce-build", config=config, jobs=jobs)
    listing = copy_bundles(built, out / "bundles")
    return write_json_atomic(listing_path, {"name": manifest.name, "version": manifest.version,
                                            "config": config, "bundles": listing})
