"""Release packaging: a plugin's artefacts copied to ``release/<Name>-<version>/`` (stripped bundles)
with a ``release-manifest.json`` listing each artefact's sha256, and the combined release manifest."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from ..backends.juce import copy_bundles, strip_binaries
from ..common.errors import AdacError
from ..common.fileio import sha256_of, write_json_atomic
from ..common.version import __version__
from .manifest import Manifest


REPORT_PAGE = "index.html"  # the report page (adac.report.page): its whole folder is released


def _copy_report(folder: Path, target: Path) -> Path:
    """The report folder copied as a whole (beside the target, then renamed)."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(folder, tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)
    return target


def package_release(manifest: Manifest, out_dir: Path, artefacts: list[Path]) -> Path:
    """Release copy of a built plugin: ``out_dir`` (``build/release/<Name>-<version>``) receives the IR,
    .dsp and certificate, the bundles listed by ``<Name>.bundles.json`` (stripped), the report page's folder
    (``report/``, given as its ``index.html``), and a ``release-manifest.json`` listing each with its
    sha256 (every file of the report). Returns the release manifest's path."""
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
        elif source.name == REPORT_PAGE:
            listed.append(_copy_report(source.parent, out_dir / source.parent.name) / REPORT_PAGE)
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
    listings (each bundle they list is entered), report pages (``report/index.html``: every file of
    the folder) and other release manifests (merged).
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
        if source.name == REPORT_PAGE:
            plugin = json.loads((source.parent / "report.json").read_text())["plugin"]
            for path in sorted(p for p in source.parent.rglob("*") if p.is_file()):
                artefacts.append({"plugin": plugin, "kind": "report", "path": rel(path),
                                  "sha256": sha256_of(path)})
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
    return write_json_atomic(out, {"format": "adac-release", "adac_version": __version__, "artefacts": artefacts})


def _plugin_of(path: Path) -> str:
    name = path.name
    for suffix in (".cert.json", ".bundles.json", ".json", ".dsp"):
        if name.endswith(suffix):
            return name[:-len(suffix)]
    return name
