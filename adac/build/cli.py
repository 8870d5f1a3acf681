"""``adac`` / ``python3 -m adac``: the build steps as commands (the SCons builders run these).

    adac [--build-root build] build-ir  MANIFEST OUT.json            checkpoint + factory -> IR
    adac [--build-root build] emit      MANIFEST IR.json OUT.dsp     IR + controls -> FAUST
    adac [--build-root build] certify   MANIFEST IR.json OUT.cert.json
    adac [--build-root build] juce      MANIFEST IN.dsp OUTDIR        FAUST -> JUCE CMake project
    adac [--build-root build] plugin    MANIFEST PROJECTDIR OUT.bundles.json [--juce-build DIR] [--config C]
    adac [--build-root build] package   MANIFEST OUTDIR ARTEFACT...   release copy (stripped) + release-manifest.json
    adac [--build-root build] release-manifest OUT.json ARTEFACT...
    adac [--build-root build] install   LISTING.bundles.json RECORD.json [--prefix DIR]
    adac check MANIFEST...                                            validate manifests
    adac plan MANIFEST...                                             the SCons build plan (JSON)

(``ir``, ``dsp`` and ``cert`` are accepted for ``build-ir``, ``emit`` and ``certify``.)
Every output must lie inside the build root. User mistakes print one line naming the file
and the field, and exit 2 — no traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..common.errors import AdacError, exit_code_for_user_errors
from ..common.fileio import write_json_atomic
from .manifest import build_plan, load_manifest

COMMANDS = {
    # name: (aliases, help, positional arguments)
    "build-ir": (["ir"], "checkpoint + model factory -> IR .json", ["manifest", "out"]),
    "emit": (["dsp"], "IR -> FAUST .dsp (with the manifest's controls)", ["manifest", "ir", "out"]),
    "certify": (["cert"], "IR -> stability certificate (refused if strict and not certified)", ["manifest", "ir", "out"]),
    "juce": ([], ".dsp -> JUCE CMake project folder", ["manifest", "dsp", "out"]),
    "plugin": ([], "JUCE project -> plugin bundles + listing", ["manifest", "project", "out"]),
    "package": ([], "release copy of built artefacts (stripped bundles) + release-manifest.json", ["manifest", "out"]),
    "release-manifest": ([], "list artefacts with their sha256", ["out"]),
    "install": ([], "install the bundles a <Name>.bundles.json lists; record them in OUT", ["listing", "out"]),
    "check": ([], "validate manifests", []),
    "plan": ([], "validate manifests and print the SCons build plan as JSON", []),
}
CANONICAL = {alias: name for name, (aliases, _, _) in COMMANDS.items() for alias in aliases}


def _inside(path: Path, root: Path, what: str) -> Path:
    path, root = Path(path).resolve(), Path(root).resolve()
    if root == path or root not in path.parents:
        raise AdacError(f"{what} {path} is outside the build tree {root} (outputs go under --build-root)")
    return path


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adac", description="adac build steps (the SCons builders run these)")
    p.add_argument("--build-root", type=Path, default=Path("build"),
                   help="every output must lie inside this folder (default: ./build)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (aliases, helptext, args) in COMMANDS.items():
        s = sub.add_parser(name, aliases=aliases, help=helptext)
        for arg in args:
            s.add_argument(arg, type=Path)
        if name == "plugin":
            s.add_argument("--juce-build", type=Path, default=None,
                           help="JUCE build tree shared by all plugins (default: <build-root>/juce-build)")
            s.add_argument("--config", default="Release", help="CMake build type (default Release)")
            s.add_argument("--jobs", type=int, default=2, help="parallel compile jobs")
        if name == "install":
            s.add_argument("--prefix", help="install under this folder instead of the home folder")
        if name in ("release-manifest", "package"):
            s.add_argument("artefacts", type=Path, nargs="+")
        if name in ("check", "plan"):
            s.add_argument("manifests", type=Path, nargs="+")
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    args.command = CANONICAL.get(args.command, args.command)
    return exit_code_for_user_errors(lambda: run(args))


def run(args) -> None:
    if args.command == "check":
        for path in args.manifests:
            m = load_manifest(path)
            print(f"{path}: ok ({m.name} {m.version}, fs {m.fs} Hz, formats {', '.join(m.formats)})")
        return
    if args.command == "plan":
        print(json.dumps(build_plan(args.manifests), sort_keys=True))
        return
    out = _inside(args.out, args.build_root, "output")
    # the steps import torch, FLAMO and the backends: only a step that runs pays for them
    if args.command == "release-manifest":
        from .release import write_release_manifest

        write_release_manifest(out, args.artefacts)
        return
    if args.command == "install":
        _install(args.listing, out, args.prefix)
        return
    from . import release, steps

    manifest = load_manifest(args.manifest)
    if args.command == "build-ir":
        steps.ir_step(manifest, out)
    elif args.command == "emit":
        steps.dsp_step(manifest, args.ir, out)
    elif args.command == "certify":
        steps.cert_step(manifest, args.ir, out)
    elif args.command == "juce":
        steps.juce_step(manifest, args.dsp, out)
    elif args.command == "plugin":
        juce_build = args.juce_build or args.build_root / "juce-build"
        _inside(juce_build, args.build_root, "JUCE build tree")
        steps.plugin_step(manifest, args.project, out, juce_build=juce_build, config=args.config, jobs=args.jobs)
    elif args.command == "package":
        release.package_release(manifest, out, args.artefacts)


def _install(listing_path: Path, record: Path, prefix) -> None:
    from ..backends.juce import install_bundles

    try:
        listing = json.loads(Path(listing_path).read_text())["bundles"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise AdacError(f"{listing_path}: not a bundle listing ({exc})") from None
    try:
        installed = install_bundles(listing, prefix)
    except OSError as exc:
        raise AdacError(f"install: {exc}") from None
    write_json_atomic(record, {"installed": {k: str(v) for k, v in installed.items()},
                               "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for fmt, path in installed.items():
        print(f"installed {fmt}: {path}")


if __name__ == "__main__":
    sys.exit(main())
