"""``adac`` / ``python3 -m adac``: the build steps as commands (the SCons builders run these).

    adac [--build-root build] build-ir  MANIFEST OUT.json            checkpoint + factory -> IR
    adac [--build-root build] emit      MANIFEST IR.json OUT.dsp     IR + controls -> FAUST
    adac [--build-root build] certify   MANIFEST IR.json OUT.cert.json
    adac [--build-root build] backend   MANIFEST IR.json IN.dsp OUT.json   backend: auto: measure FAUST vs native
    adac [--build-root build] juce      MANIFEST IN.dsp OUTDIR [--ir IR.json] [--backend-choice backend.json]
                                                                      FAUST (or IR, native backend) -> JUCE CMake project
    adac [--build-root build] plugin    MANIFEST PROJECTDIR OUT.bundles.json [--juce-build DIR] [--config C]
    adac [--build-root build] report    MANIFEST IR.json X.dsp X.cert.json OUT/index.html [--bundles X.bundles.json]
    adac [--build-root build] package   MANIFEST OUTDIR ARTEFACT...   release copy (stripped) + release-manifest.json
    adac [--build-root build] release-manifest OUT.json ARTEFACT...
    adac [--build-root build] install   LISTING.bundles.json RECORD.json [--prefix DIR]
    adac check MANIFEST...                                            validate manifests
    adac plan MANIFEST...                                             the SCons build plan (JSON)

Beside the build steps (no --build-root):

    adac new DIR [--name N] [--factory file.py:fn [--checkpoint ck.pt]] [--force]   start a project
    adac doctor [--json]                                              the toolchain, and what is missing
    adac verify MANIFEST|IR.json [--samples N] [--tolerance T]        compiled DSP against FLAMO, per path
    adac render MANIFEST|IR.json|X.dsp --in dry.wav --out wet.wav [--set /adac/rt60=1.2 ...]
    adac plot MANIFEST|IR.json --out plot.png                         impulse response, decay, rt60 sweep

(``ir``, ``dsp`` and ``cert`` are accepted for ``build-ir``, ``emit`` and ``certify``.)
Every output of a build step must lie inside the build root. User mistakes print one line naming
the file and the field, and exit 2 — no traceback. ``verify`` exits 1 when a path is out of tolerance,
``doctor`` when a tool is missing.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..common.errors import AdacError, exit_code_for_user_errors
from ..common.fileio import read_json, read_text, write_json_atomic
from .manifest import build_plan, inside_build_tree, load_manifest

COMMANDS = {
    # name: (aliases, help, positional arguments)
    "build-ir": (["ir"], "checkpoint + model factory -> IR .json", ["manifest", "out"]),
    "emit": (["dsp"], "IR -> FAUST .dsp (with the manifest's controls)", ["manifest", "ir", "out"]),
    "certify": (["cert"], "IR -> stability certificate (refused if strict and not certified)", ["manifest", "ir", "out"]),
    "backend": ([], "IR + .dsp -> backend.json: the faster realisation, FAUST or native (manifest backend: auto)",
                ["manifest", "ir", "dsp", "out"]),
    "juce": ([], ".dsp (or the IR, native backend) -> JUCE CMake project folder", ["manifest", "dsp", "out"]),
    "plugin": ([], "JUCE project -> plugin bundles + listing", ["manifest", "project", "out"]),
    "report": ([], "the report page: responses vs FLAMO, certificate, rt60 sweep, cost, audition (WebAssembly)",
               ["manifest", "ir", "dsp", "cert", "out"]),
    "package": ([], "release copy of built artefacts (stripped bundles) + release-manifest.json", ["manifest", "out"]),
    "release-manifest": ([], "list artefacts with their sha256", ["out"]),
    "install": ([], "install the bundles a <Name>.bundles.json lists; record them in OUT", ["listing", "out"]),
    "check": ([], "validate manifests", []),
    "plan": ([], "validate manifests and print the SCons build plan as JSON", []),
}
CANONICAL = {alias: name for name, (aliases, _, _) in COMMANDS.items() for alias in aliases}
# commands beside the build steps (scaffold.py, doctor.py and the functions at the end of this file)
TOOLS = ("new", "doctor", "verify", "render", "plot")
FLOAT32_TOLERANCE = 1e-6  # max abs error / peak, FAUST's default float build (README: "equivalent")
DOUBLE_TOLERANCE = 1e-9   # the same for -double


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="adac", description="adac: FLAMO models to FAUST DSP, certificates and plugins. "
                                "The build steps (the SCons builders run these), then new, doctor, verify, render, plot.")
    p.add_argument("--build-root", type=Path, default=Path("build"),
                   help="every output must lie inside this folder (default: ./build)")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (aliases, helptext, args) in COMMANDS.items():
        s = sub.add_parser(name, aliases=aliases, help=helptext)
        for arg in args:
            s.add_argument(arg, type=Path)
        if name == "plugin":
            s.add_argument("--juce-build", type=Path, default=None,
                           help="JUCE build tree shared by all plugins, of this project or others (default: <build-root>/juce-build)")
            s.add_argument("--config", default="Release", help="CMake build type (default Release)")
            s.add_argument("--jobs", type=int, default=2, help="parallel compile jobs")
        if name == "juce":
            s.add_argument("--ir", type=Path, help="the IR: the native kernel's classes are made from it "
                                                   "(manifest backend: native or auto)")
            s.add_argument("--backend-choice", type=Path, help="backend.json of the backend step (manifest backend: auto)")
        if name == "report":
            s.add_argument("--bundles", type=Path, help="the plugin's <Name>.bundles.json: its cost is measured")
        if name == "install":
            s.add_argument("--prefix", help="install under this folder instead of the home folder")
        if name in ("release-manifest", "package"):
            s.add_argument("artefacts", type=Path, nargs="+")
        if name in ("check", "plan"):
            s.add_argument("manifests", type=Path, nargs="+")
    _tool_parsers(sub)
    return p


def _tool_parsers(sub) -> None:
    s = sub.add_parser("new", help="start a project: SConstruct, plugins/<Name>/ (manifest, factory, checkpoint), "
                                   "train.py, README")
    s.add_argument("dir", type=Path)
    s.add_argument("--name", help="plugin name (default: from DIR)")
    s.add_argument("--factory", help="start from your model factory: file.py:function (copied into the project)")
    s.add_argument("--checkpoint", type=Path, help="its checkpoint (copied; default: the factory's initial state)")
    s.add_argument("--fs", type=int, default=48000, help="sample rate (default 48000)")
    s.add_argument("--manufacturer", default="My Company", help="company name shown in hosts")
    s.add_argument("--force", action="store_true",
                   help="add the missing files to a non-empty DIR (existing files are never overwritten)")

    s = sub.add_parser("doctor", help="find faust, libfaust, JUCE, cmake, ninja, a C++ compiler; say how to "
                                      "install what is missing")
    s.add_argument("--json", action="store_true", help="machine-readable output")

    s = sub.add_parser("verify", help="render the compiled DSP and compare it with FLAMO, per input/output path")
    s.add_argument("input", type=Path, help="plugin.yaml (factory + checkpoint) or an IR .json")
    s.add_argument("--samples", type=int, default=8192, help="impulse response length compared (default 8192)")
    s.add_argument("--tolerance", type=float, default=FLOAT32_TOLERANCE,
                   help=f"max abs error / peak for the float32 build (default {FLOAT32_TOLERANCE:g})")
    s.add_argument("--double-tolerance", type=float, default=DOUBLE_TOLERANCE,
                   help=f"the same for the -double build (default {DOUBLE_TOLERANCE:g})")
    s.add_argument("--precision", choices=("float32", "double", "both"), default="both")
    s.add_argument("--nfft", type=int, help="FLAMO's FFT size for the reference (default: grown until the "
                                            "response has decayed within it, up to 2^24)")

    s = sub.add_parser("render", help="process a sound file with the compiled DSP")
    s.add_argument("input", type=Path, help="plugin.yaml (with its controls), an IR .json, or a FAUST .dsp")
    s.add_argument("--in", dest="wav_in", type=Path, required=True, help="dry sound file (any format soundfile reads)")
    s.add_argument("--out", dest="wav_out", type=Path, required=True, help="wet sound file to write")
    s.add_argument("--set", dest="settings", action="append", default=[], metavar="/ADDRESS=VALUE",
                   help="set a control by its FAUST address, e.g. --set /adac/rt60=1.2 (repeatable); the "
                        "macro-controls hold that value from the first sample")
    s.add_argument("--controls", default="",
                   help="for an IR .json: macro-controls to add, e.g. rt60,dry_wet,pre_delay (a manifest has its own)")
    s.add_argument("--tail", type=float, default=2.0, help="seconds of silence appended for the tail (default 2)")
    s.add_argument("--double", action="store_true", help="render with FAUST -double")
    s.add_argument("--subtype", default="FLOAT", help="soundfile subtype of the output (default FLOAT)")

    s = sub.add_parser("plot", help="impulse response, energy decay (compiled vs FLAMO) and rt60 sweep, as PNG")
    s.add_argument("input", type=Path, help="an IR .json or a plugin.yaml")
    s.add_argument("--out", type=Path, required=True, help="PNG file to write")
    s.add_argument("--seconds", type=float, help="length of the impulse response panel")


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    args.command = CANONICAL.get(args.command, args.command)
    status = {}
    code = exit_code_for_user_errors(lambda: status.setdefault("code", run(args)))
    return code or status.get("code") or 0


def run(args) -> int | None:
    if args.command in TOOLS:
        return TOOL_COMMANDS[args.command](args)
    if args.command == "check":
        for path in args.manifests:
            m = load_manifest(path)
            print(f"{path}: ok ({m.name} {m.version}, fs {m.fs} Hz, formats {', '.join(m.formats)})")
        return
    if args.command == "plan":
        print(json.dumps(build_plan(args.manifests), sort_keys=True))
        return
    out = inside_build_tree(args.out, args.build_root, "output")
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
    start = time.perf_counter()
    if args.command == "build-ir":
        steps.ir_step(manifest, out)
    elif args.command == "emit":
        steps.dsp_step(manifest, args.ir, out)
    elif args.command == "certify":
        steps.cert_step(manifest, args.ir, out)
    elif args.command == "backend":
        steps.backend_step(manifest, args.ir, args.dsp, out)
    elif args.command == "juce":
        steps.juce_step(manifest, args.dsp, out, ir_path=args.ir, choice_path=args.backend_choice)
    elif args.command == "plugin":
        juce_build = args.juce_build or args.build_root / "juce-build"  # a tree the user names may be shared
        steps.plugin_step(manifest, args.project, out, juce_build=juce_build, config=args.config, jobs=args.jobs)
    elif args.command == "package":
        release.package_release(manifest, out, args.artefacts)
    elif args.command == "report":
        from ..report.page import build_report

        build_report(manifest, args.ir, args.dsp, args.cert, out, bundles=args.bundles)
    if args.command in TIMED_STEPS:  # each of their outputs lies in the plugin's output folder
        _record_time(out.parent, args.command, time.perf_counter() - start)


TIMED_STEPS = ("build-ir", "emit", "certify", "juce", "plugin")


def _record_time(folder: Path, step: str, seconds: float) -> None:
    """The wall-clock time of a step in ``folder/.times/<step>.json``, which the report reads (one file per
    step: SCons runs steps side by side)."""
    write_json_atomic(folder / ".times" / f"{step}.json", {"step": step, "seconds": round(seconds, 3),
                                                            "time": time.strftime("%Y-%m-%dT%H:%M:%S")})


def _install(listing_path: Path, record: Path, prefix) -> None:
    from ..backends.juce import install_bundles

    listing = read_json(listing_path, "bundle listing")
    if not isinstance(listing, dict) or not isinstance(listing.get("bundles"), dict):
        raise AdacError(f"{listing_path}: not a bundle listing (no 'bundles' mapping)")
    listing = listing["bundles"]
    try:
        installed = install_bundles(listing, prefix)
    except OSError as exc:
        raise AdacError(f"install: {exc}") from None
    write_json_atomic(record, {"installed": {k: str(v) for k, v in installed.items()},
                               "time": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for fmt, path in installed.items():
        print(f"installed {fmt}: {path}")


# ------------------------------------------------------------------------ new, doctor, verify, render, plot

def _new(args) -> int:
    from .scaffold import new_project

    print(new_project(args.dir, name=args.name, factory=args.factory, checkpoint=args.checkpoint,
                      force=args.force, fs=args.fs, manufacturer=args.manufacturer).summary())
    return 0


def _doctor(args) -> int:
    from . import doctor

    return doctor.main(as_json=args.json)


def _source(path: Path):
    """(ir, manifest or None) of a plugin.yaml (the factory's model with its checkpoint) or an IR .json."""
    path = Path(path)
    if path.suffix in (".yaml", ".yml"):
        from ..frontend.flamo import flamo_to_json, load_model

        manifest = load_manifest(path)
        return flamo_to_json(load_model(manifest), manifest.fs, name=manifest.display_name), manifest
    if path.suffix == ".json":
        from ..ir import load_ir

        return load_ir(path), None
    raise AdacError(f"{path}: expected a plugin.yaml or an IR .json")


def _codegen_options(manifest) -> dict:
    """The manifest's code-generation options, as the build's .dsp and certificate steps pass them."""
    return manifest.codegen_options if manifest is not None else {}


def _verify(args) -> int:
    from ..equivalence import verify

    ir, manifest = _source(args.input)
    precisions = ("float32", "double") if args.precision == "both" else (args.precision,)
    tolerances = {"float32": args.tolerance, "double": args.double_tolerance}
    report = verify(ir, n_samples=args.samples, precisions=precisions, nfft=args.nfft, **_codegen_options(manifest))
    print(f"{args.input}: {ir.get('name', '')} at {report.fs} Hz, {report.n_samples} samples against FLAMO "
          f"(float64, nfft {report.nfft}); error = max |compiled - FLAMO| / peak {report[precisions[0]].peak:.4g}")
    print(f"{'precision':<10} {'out':>3} {'in':>3} {'max abs error':>14} {'error / peak':>13} {'tolerance':>10}  result")
    failed = 0
    for precision in precisions:
        for path in report[precision].paths():
            ok = path["relative_error"] <= tolerances[precision]
            failed += not ok
            print(f"{precision:<10} {path['out']:>3} {path['in']:>3} {path['max_abs_error']:>14.3e} "
                  f"{path['relative_error']:>13.3e} {tolerances[precision]:>10.1e}  {'ok' if ok else 'FAIL'}")
    print("all paths within tolerance" if not failed else f"{failed} path(s) out of tolerance")
    return 1 if failed else 0


def _parse_settings(settings: list[str]) -> dict[str, float]:
    params = {}
    for item in settings:
        address, sep, value = item.partition("=")
        try:
            if not sep or not address.startswith("/"):
                raise ValueError
            params[address] = float(value)
        except ValueError:
            raise AdacError(f"--set {item!r}: expected /address=number, e.g. /adac/rt60=1.2") from None
    return params


MACRO_CONTROLS = ("rt60", "dry_wet", "pre_delay")


def _controls_at(controls: dict, params: dict[str, float]) -> tuple[dict, dict[str, float]]:
    """Macro-controls set on the command line become the compiled defaults: the whole file is rendered at
    that value (a slider set on running code would ramp there from its default through the smoother).
    Returns the controls and the settings left for the renderer (other FAUST addresses)."""
    controls, rest = dict(controls), {}
    for address, value in params.items():
        name = address[len("/adac/"):] if address.startswith("/adac/") else None
        if name not in MACRO_CONTROLS:
            rest[address] = value
            continue
        control = controls.get(name)
        if control is None or control is False or (isinstance(control, dict) and control.get("enabled") is False):
            raise AdacError(f"--set {address}: the model has no {name} control (enable it in the manifest's "
                            f"controls, or --controls {name} for an IR)")
        controls[name] = {**(control if isinstance(control, dict) else {}), "default": value}
    return controls, rest


def _render(args) -> int:
    import numpy as np
    import soundfile

    from ..backends.faust import json_to_faust
    from ..backends.faust.render import render_signal

    params = _parse_settings(args.settings)
    if args.input.suffix == ".dsp":
        code, fs = read_text(args.input, "FAUST file"), None
    else:
        ir, manifest = _source(args.input)
        if manifest is not None:
            controls = manifest.controls or {}
        else:
            controls = {c.strip(): True for c in args.controls.split(",") if c.strip()}
        controls, params = _controls_at(controls, params)
        code, fs = json_to_faust(ir, controls or None, **_codegen_options(manifest)), ir["fs"]
    try:
        dry, rate = soundfile.read(str(args.wav_in), dtype="float64", always_2d=True)
    except (OSError, RuntimeError, soundfile.LibsndfileError) as exc:
        raise AdacError(f"--in {args.wav_in}: cannot read the sound file ({exc})") from None
    if fs is not None and rate != fs:
        raise AdacError(f"--in {args.wav_in}: sample rate {rate} Hz, the model is compiled for {fs} Hz (resample it)")
    from ..backends.faust.render import render_impulse_responses

    n_in = render_impulse_responses(code, rate, 1).shape[2]  # the DSP's input count (builds the cached renderer)
    if dry.shape[1] != n_in:
        if dry.shape[1] == 1:
            dry = np.repeat(dry, n_in, axis=1)  # a mono file feeds every input
        else:
            raise AdacError(f"--in {args.wav_in}: {dry.shape[1]} channels, the DSP has {n_in} inputs")
    dry = np.concatenate([dry, np.zeros((int(round(args.tail * rate)), dry.shape[1]))])
    wet = render_signal(code, rate, dry, double=args.double, params=params)
    args.wav_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.wav_out.with_name(f".{args.wav_out.name}.tmp{args.wav_out.suffix}")
    try:
        soundfile.write(str(tmp), wet, rate, subtype=args.subtype)
    except (ValueError, RuntimeError, soundfile.LibsndfileError) as exc:
        tmp.unlink(missing_ok=True)
        raise AdacError(f"--out {args.wav_out}: cannot write ({exc})") from None
    tmp.replace(args.wav_out)
    peak = float(np.abs(wet).max()) if wet.size else 0.0
    print(f"wrote {args.wav_out}: {wet.shape[0]} samples x {wet.shape[1]} channels at {rate} Hz, peak {peak:.3g}"
          + (" (above 1: clips in fixed-point formats)" if peak > 1 else ""))
    return 0


def _plot(args) -> int:
    import tempfile

    from ..ir import save_ir
    from ..report.plots import plot

    if args.input.suffix in (".yaml", ".yml"):
        ir, _ = _source(args.input)
        with tempfile.TemporaryDirectory(prefix="adac-plot-") as tmp:
            print(plot(save_ir(ir, Path(tmp) / "model.json"), args.out, args.seconds))
    else:
        print(plot(args.input, args.out, args.seconds))
    return 0


TOOL_COMMANDS = {"new": _new, "doctor": _doctor, "verify": _verify, "render": _render, "plot": _plot}


if __name__ == "__main__":
    sys.exit(main())
