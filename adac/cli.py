"""``python3 -m adac``: the build steps as commands (SCons runs these).

User mistakes print one line naming the file and field, and exit 2 — no traceback.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .errors import AdacError, exit_code_for_user_errors


def _inside(path: Path, root: Path, what: str) -> Path:
    path, root = path.resolve(), root.resolve()
    if root != path and root not in path.parents:
        raise AdacError(f"{what} {path} is outside the build tree {root}")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="adac", description="adac build steps")
    parser.add_argument("--build-root", type=Path, default=Path("build"),
                        help="every output must lie inside this folder (default: ./build)")
    parser.add_argument("--release", action="store_true", help="optimised, stripped, versioned plugin bundles")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, helptext, args in (
        ("ir", "checkpoint + factory -> IR", ["manifest", "out"]),
        ("dsp", "IR -> FAUST .dsp", ["manifest", "ir", "out"]),
        ("cert", "IR -> stability certificate (gated by the manifest's strict)", ["manifest", "ir", "out"]),
        ("juce", ".dsp -> JUCE project folder", ["manifest", "dsp", "out"]),
        ("plugin", "JUCE project -> plugin bundles", ["manifest", "project", "out"]),
        ("check", "validate a manifest", ["manifest"]),
    ):
        p = sub.add_parser(name, help=helptext)
        for arg in args:
            p.add_argument(arg, type=Path)
    args = parser.parse_args(argv)
    return exit_code_for_user_errors(lambda: run(args))


def run(args) -> None:
    from . import pipeline
    from .manifest import load_manifest

    manifest = load_manifest(args.manifest)
    if hasattr(args, "out"):
        _inside(args.out, args.build_root, "output")
    steps = {
        "ir": lambda: pipeline.write_ir(manifest, args.out),
        "dsp": lambda: pipeline.write_dsp(manifest, args.ir, args.out),
        "cert": lambda: pipeline.write_certificate(manifest, args.ir, args.out),
        "juce": lambda: pipeline.write_juce_project(manifest, args.dsp, args.out),
        "plugin": lambda: pipeline.build_plugin(manifest, args.project, args.out, release=args.release),
        "check": lambda: None,
    }
    steps[args.command]()

if __name__ == "__main__":
    sys.exit(main())
