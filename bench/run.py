"""adac benchmarks: every figure is a ratio against baselines measured in the same run.

    python3 -m bench.run [--quick] [--only SECTIONS] [--forms F,..] [--sizes N,..] [--no-scons] [--no-callgrind]

1. DSP cost per sample of the compiled .dsp (faust -> C++ -> g++ -O3), scalar and -vec,
   for FDNs of N = 4..128 lines (per-line gain and lowpass biquad in the loop; Hadamard,
   Householder and dense orthogonal feedback), against (i) a hand-written C++ FDN of the
   same structure (bench/fdn_handwritten.cpp) and (ii) the naive emission (bench/naive.py:
   dense N x N sums of products, nothing folded). The ratios quoted first are those of the
   FAUST flags plugins are built with (adac.backends.juce.project.DEFAULT_FAUST_FLAGS), then the best variant;
   the same code with the three macro-controls gives their cost. Beside them the native block kernel
   (adac.backends.native: the same IR, its FDN loop as C++ over blocks, the rest FAUST with the shipped
   flags), alone and with the controls. Every binary renders SECONDS of noise in
   blocks of 256; runs are interleaved and each figure is the median of the repeats.
   Callgrind instruction counts per sample (compute() only) are a second, load-independent
   measure. Also a sweep of FAUST options at N = 64.
2. Compile pipeline time vs N up to 128: flamo_to_json, json_to_faust, certify, faust -> C++.
3. SCons on a private copy of the example plugin: no-op build, checkpoint change -> plugin.

Writes bench/results/bench.json and bench/results/bench.png, prints the tables.
"""
from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # this checkout's adac, and the shared FLAMO model builders

import adac  # noqa: E402
from adac.common import toolchain  # noqa: E402
from adac.common.machine import machine as common_machine  # noqa: E402
from adac.backends.juce.project import DEFAULT_FAUST_FLAGS  # noqa: E402
from adac.ir.hadamard import hadamard_form  # noqa: E402
from adac.ir.passes import fold_gains  # noqa: E402
from adac.ir.sections import svf_parameters  # noqa: E402
from adac.backends.faust.render import faust_to_cpp  # noqa: E402
from adac.backends.native import native_to_cpp  # noqa: E402
from bench.naive import naive_faust  # noqa: E402
from flamo_models import fdn  # noqa: E402

try:
    from adac.certificate import certify  # noqa: E402
except ImportError:  # pragma: no cover
    certify = None

RESULTS = ROOT / "bench" / "results"
ARCH = ROOT / "bench" / "faust_arch.cpp"
HAND = ROOT / "bench" / "fdn_handwritten.cpp"
FS = 48000
CXX = ["-std=c++17", "-O3", "-march=x86-64-v2", "-DFAUSTFLOAT=float"]
VEC = ("-vec", "-vs", "32")
MCD0 = ("-mcd", "0")  # every delay, even a one-sample mem, as a ring buffer: no per-sample copies
ADAC_VARIANTS = ("adac", "adac -vec", "adac -mcd 0", "adac -vec -mcd 0")
SHIPPED = "adac " + " ".join(DEFAULT_FAUST_FLAGS)  # the variant plugins are built as
assert SHIPPED in ADAC_VARIANTS
NAIVE_VARIANTS = ("naive", "naive -vec", "naive -mcd 0")
def with_unbuilt(times: dict[str, float]) -> dict[str, float]:
    """``times`` with NaN for the variants not built (for the printed tables)."""
    return {**dict.fromkeys(ADAC_VARIANTS + NAIVE_VARIANTS, float("nan")), **times}


def naive_best(times: dict[str, float]) -> float:
    """The fastest naive build measured (``naive -vec`` is not built above VEC_MAX_N)."""
    return min(times[k] for k in NAIVE_VARIANTS if k in times)


VEC_MAX_N = 64  # above, g++ -O3 did not finish -vec code of N^2 unfolded sums (naive; adac dense) in 8 minutes: left out
NATIVE = "native"  # the native kernel (its FAUST part built with the shipped flags)
SIZES = (4, 8, 16, 32, 64, 128)  # the line counts the hand-written FDN is instantiated for
NATIVE_GOALS = {"dense_vs_handwritten": 0.8, "dense_from_n": 16, "vs_faust": 1.0}  # issue 16's goals
CONTROLS = {"rt60": True, "dry_wet": True, "pre_delay": True}  # the example plugin's macro-controls
FORMS = {"hadamard": "hadamard", "householder": "householder", "dense": "orthogonal"}  # bench name -> FLAMO matrix
SWEEP = {  # FAUST 2.54 options tried on the N = 64 loops
    "scalar": (),
    "-vec -vs 32": VEC,
    "-vec -vs 16": ("-vec", "-vs", "16"),
    "-vec -vs 64": ("-vec", "-vs", "64"),
    "-vec -lv 1 -vs 32": ("-vec", "-lv", "1", "-vs", "32"),
    "-vec -vs 32 -dfs": ("-vec", "-vs", "32", "-dfs"),
    "-ftz 2": ("-ftz", "2"),
    "-vec -vs 32 -ftz 2": ("-vec", "-vs", "32", "-ftz", "2"),
    "-mcd 0": ("-mcd", "0"),
    "-mcd 64": ("-mcd", "64"),
    "-dlt 0 (select ring buffers)": ("-dlt", "0"),
}


# --- building ---------------------------------------------------------------------------------


def compile_cpp(source: str, name: str, workdir: Path, include_dirs: tuple[Path, ...] = ()) -> tuple[Path, float]:
    src, exe = workdir / f"{name}.cpp", workdir / name
    src.write_text(source)
    t = time.perf_counter()
    toolchain.run([toolchain.cxx(), *CXX, *(f"-I{d}" for d in include_dirs), str(src), "-o", str(exe)], f"compile {name}")
    return exe, time.perf_counter() - t


def build_faust(code: str, flags: tuple[str, ...], name: str, workdir: Path) -> dict:
    """The benchmark binary of FAUST source ``code``; ``emit_s`` is the time of faust -> C++."""
    t = time.perf_counter()
    cpp = faust_to_cpp(code, architecture=ARCH, extra_flags=flags)
    emit_seconds = time.perf_counter() - t
    exe, cxx_seconds = compile_cpp(cpp, name, workdir)
    return {"exe": exe, "emit_s": emit_seconds, "cxx_s": cxx_seconds}


def build_native(ir: dict, controls: dict | None, name: str, workdir: Path) -> dict:
    """The benchmark binary of the native kernel's class for ``ir``; ``emit_s`` is the time of native_to_cpp."""
    t = time.perf_counter()
    cpp = native_to_cpp(ir, controls, architecture=ARCH, faust_flags=DEFAULT_FAUST_FLAGS)
    emit_seconds = time.perf_counter() - t
    exe, cxx_seconds = compile_cpp(cpp, name, workdir, include_dirs=(toolchain.eigen_include(),))
    return {"exe": exe, "emit_s": emit_seconds, "cxx_s": cxx_seconds}


def bench_model(n: int, kind: str):
    return fdn(n, t60=1.0, matrix=FORMS[kind], attenuation="biquad", n_in=1, n_out=1, direct=True,
               delays=[int(d) for d in np.linspace(601, 1999, n).round()])


def handwritten_config(ir: dict, kind: str) -> str:
    """The hand-written FDN's parameters, read from the same IR, folded as adac folds them."""
    wet, dry = ir["graph"]["children"]  # Parallel(Series(b, loop, c), dry)
    b, loop, c = wet["children"]
    feedback = fold_gains(loop["feedback"])["children"]
    n = loop["in"]
    if kind == "householder":
        mix, gains, damping = feedback
        g = gains["gains"]
    else:
        (mix, damping), g = feedback, [1.0] * n
    lines = [f"{n} {kind}", " ".join(str(int(d)) for d in loop["feedforward"]["samples"]),
             " ".join(repr(r[0]) for r in b["matrix"]), " ".join(repr(v) for v in c["matrix"][0]), repr(dry["matrix"][0][0])]
    if kind == "hadamard":
        form = hadamard_form(mix["matrix"])
        assert form is not None and np.all(form.col == 1) and np.array_equal(form.pi, np.arange(n)) \
            and np.array_equal(form.sigma, np.arange(n)), "the benchmark's Hadamard is FLAMO's Sylvester ordering"
        g = form.row.tolist()  # 1/sqrt(N) x per-line gain
    lines.append(" ".join(repr(float(v)) for v in g))
    if kind == "dense":
        lines.append(" ".join(repr(v) for row in mix["matrix"] for v in row))  # per-line gains folded in
    elif kind == "householder":
        lines.append(" ".join(repr(v) for v in mix["u"]))
    sections = np.asarray(damping["sections"])
    for i in range(n):
        lines.append(" ".join(repr(v) for v in svf_parameters(sections[0, :, i])))
    return "\n".join(lines) + "\n"


# --- measuring --------------------------------------------------------------------------------


def timed_runs(commands: dict[str, list[str]], repeats: int) -> tuple[dict[str, float], dict[str, float]]:
    samples: dict[str, list[float]] = {name: [] for name in commands}
    checksums: dict[str, float] = {}
    for _ in range(repeats):  # interleaved, so load on the machine hits every variant alike
        for name, cmd in commands.items():
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()
            samples[name].append(float(out[0]))
            checksums[name] = float(out[1])
    return {name: statistics.median(v) for name, v in samples.items()}, checksums


def instructions_per_sample(cmd: list[str], seconds: float) -> float | None:
    """Callgrind's instruction count inside adac_run_block (the DSP only), per sample."""
    if shutil.which("valgrind") is None:
        return None
    with tempfile.TemporaryDirectory(prefix="adac-cg-") as tmp:
        out = Path(tmp) / "cg.out"
        proc = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--toggle-collect=*adac_run_block*",
                               *cmd], capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            return None
        summary = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(), re.M)
    return int(summary.group(1)) / (seconds * FS) if summary else None


def dsp_cost(sizes, kinds, seconds: float, repeats: int, callgrind: bool, work: Path, on_row=lambda rows: None) -> list[dict]:
    """The DSP cost rows (one per form and N); ``on_row(rows)`` is called after each (to save what was measured)."""
    rows = []
    hand, _ = compile_cpp(HAND.read_text(), "handwritten", work)
    cg_seconds = 0.05
    with ThreadPoolExecutor(max_workers=2) as pool:
        for kind in kinds:
            for n in sizes:
                ir = adac.flamo_to_json(bench_model(n, kind), FS)
                code, naive, controlled = adac.json_to_faust(ir), naive_faust(ir), adac.json_to_faust(ir, controls=CONTROLS)
                config = work / f"{kind}{n}.txt"
                config.write_text(handwritten_config(ir, kind))
                jobs = {"adac": (code, ()), "adac -vec": (code, VEC), "adac -mcd 0": (code, MCD0),
                        "adac -vec -mcd 0": (code, VEC + MCD0), SHIPPED + " +controls": (controlled, DEFAULT_FAUST_FLAGS),
                        "naive": (naive, ()), "naive -vec": (naive, VEC), "naive -mcd 0": (naive, MCD0)}
                if n > VEC_MAX_N:
                    unbuilt = ["naive -vec"] + (["adac -vec", "adac -vec -mcd 0"] if kind == "dense" else [])
                    for name in unbuilt:
                        del jobs[name]
                    print(f"  {kind:11s} N={n:3d}  not built: {', '.join(unbuilt)} (g++ -O3 did not finish such -vec code of "
                          "N^2 unfolded sums in 8 minutes at N = 128 on the loaded machine)", flush=True)
                builds = {name: pool.submit(build_faust, src, flags, f"{re.sub(r'[^a-z0-9]', '', name)}_{kind}{n}", work)
                          for name, (src, flags) in jobs.items()}
                builds[NATIVE] = pool.submit(build_native, ir, None, f"native_{kind}{n}", work)
                builds[NATIVE + " +controls"] = pool.submit(build_native, ir, CONTROLS, f"nativecontrols_{kind}{n}", work)
                builds = {name: f.result() for name, f in builds.items()}
                commands = {name: [str(b["exe"])] for name, b in builds.items()}
                commands["hand-written"] = [str(hand), str(config)]
                times, checksums = timed_runs({k: v + [str(seconds), str(FS)] for k, v in commands.items()}, repeats)
                ref = checksums["hand-written"]
                # the controls at their defaults leave the model as trained: that build must agree too
                agree = all(abs(v - ref) <= 1e-3 * max(1.0, abs(ref)) for v in checksums.values())
                best_name = min((k for k in ADAC_VARIANTS if k in times), key=times.get)
                best, naive_time = times[best_name], naive_best(times)
                row = {"matrix": kind, "N": n, "ns_per_sample": times, "checksums": checksums, "checksums_agree": agree,
                       "emit_s": {k: b["emit_s"] for k, b in builds.items()}, "cxx_s": {k: b["cxx_s"] for k, b in builds.items()},
                       "shipped": SHIPPED,
                       "shipped_vs_handwritten": times[SHIPPED] / times["hand-written"],
                       "shipped_vs_naive": times[SHIPPED] / naive_time,
                       "controls_cost": times[SHIPPED + " +controls"] / times[SHIPPED],
                       "best_adac": best_name,
                       "best_adac_vs_handwritten": best / times["hand-written"],
                       "scalar_adac_vs_handwritten": times["adac"] / times["hand-written"],
                       "adac_vs_naive": best / naive_time,
                       "scalar_adac_vs_scalar_naive": times["adac"] / times["naive"],
                       "native_vs_handwritten": times[NATIVE] / times["hand-written"],
                       "native_vs_shipped": times[NATIVE] / times[SHIPPED],
                       "native_vs_best_adac": times[NATIVE] / best,
                       "native_controls_vs_shipped_controls": times[NATIVE + " +controls"] / times[SHIPPED + " +controls"],
                       "native_controls_cost": times[NATIVE + " +controls"] / times[NATIVE],
                       "measured": {"time": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "load_average": common_machine()["load_average"]}}
                if callgrind:
                    row["instructions_per_sample"] = {k: instructions_per_sample(v + [str(cg_seconds), str(FS)], cg_seconds)
                                                      for k, v in commands.items()}
                rows.append(row)
                on_row(rows)
                t = with_unbuilt(times)
                print(f"  {kind:11s} N={n:3d}  adac {t['adac']:7.1f}  -vec {t['adac -vec']:7.1f}  -mcd 0 {t['adac -mcd 0']:7.1f}  "
                      f"-vec -mcd 0 {t['adac -vec -mcd 0']:7.1f}  hand {t['hand-written']:7.1f}  "
                      f"naive {naive_time:7.1f} ns/sample   shipped/hand {row['shipped_vs_handwritten']:.2f}  "
                      f"shipped/naive {row['shipped_vs_naive']:.2f}  best/hand {row['best_adac_vs_handwritten']:.2f}  "
                      f"controls x{row['controls_cost']:.2f}{'' if agree else '  CHECKSUMS DIFFER'}", flush=True)
                print(f"  {'':11s}        native {t[NATIVE]:7.1f}  +controls {t[NATIVE + ' +controls']:7.1f} ns/sample   "
                      f"native/hand {row['native_vs_handwritten']:.2f}  native/shipped {row['native_vs_shipped']:.2f}  "
                      f"+controls: native/shipped {row['native_controls_vs_shipped_controls']:.2f}", flush=True)
    return rows


def option_sweep(kinds, n: int, seconds: float, repeats: int, work: Path) -> list[dict]:
    rows = []
    hand, _ = compile_cpp(HAND.read_text(), "handwritten_sweep", work)
    with ThreadPoolExecutor(max_workers=2) as pool:
        for kind in kinds:
            ir = adac.flamo_to_json(bench_model(n, kind), FS)
            code = adac.json_to_faust(ir)
            config = work / f"sweep_{kind}{n}.txt"
            config.write_text(handwritten_config(ir, kind))
            futures = {name: pool.submit(build_faust, code, flags, f"sweep{i}_{kind}{n}", work) for i, (name, flags) in enumerate(SWEEP.items())}
            commands = {name: [str(f.result()["exe"]), str(seconds), str(FS)] for name, f in futures.items()}
            commands["hand-written"] = [str(hand), str(config), str(seconds), str(FS)]
            times, _ = timed_runs(commands, repeats)
            for name in SWEEP:
                rows.append({"matrix": kind, "N": n, "options": name, "ns_per_sample": times[name],
                             "vs_handwritten": times[name] / times["hand-written"]})
                print(f"  {kind:11s} N={n}  {name:30s} {times[name]:8.1f} ns/sample  {rows[-1]['vs_handwritten']:.2f} x hand-written", flush=True)
    return rows


def pipeline_times(sizes, kinds) -> list[dict]:
    rows = []
    for kind in kinds:
        for n in sizes:
            model = bench_model(n, kind)
            t0 = time.perf_counter()
            ir = adac.flamo_to_json(model, FS)
            t1 = time.perf_counter()
            code = adac.json_to_faust(ir)
            t2 = time.perf_counter()
            if certify is not None:
                certify(ir)
            t3 = time.perf_counter()
            row = {"matrix": kind, "N": n, "flamo_to_json": t1 - t0, "json_to_faust": t2 - t1,
                   "certify": (t3 - t2) if certify is not None else None}
            try:
                faust_to_cpp(code)
                row["faust"] = time.perf_counter() - t3
            except Exception as exc:  # noqa: BLE001 - e.g. FAUST's own 120 s compile timeout (exit -14, SIGALRM)
                row["faust"], row["faust_error"] = None, f"failed after {time.perf_counter() - t3:.0f}s: {str(exc).splitlines()[0]}"
                print(f"  {kind:11s} N={n:3d}  faust {row['faust_error']}", flush=True)
                rows.append(row)
                continue
            row["compile_and_certify"] = row["json_to_faust"] + (row["certify"] or 0) + row["faust"]
            rows.append(row)
            print(f"  {kind:11s} N={n:3d}  flamo_to_json {row['flamo_to_json']:6.2f}s  json_to_faust {row['json_to_faust']:6.2f}s  "
                  f"certify {row['certify'] if row['certify'] is None else round(row['certify'], 2)}s  faust {row['faust']:6.2f}s  "
                  f"-> json_to_faust + certify + faust {row['compile_and_certify']:6.2f}s", flush=True)
    return rows


def scons_times() -> dict:
    """No-op and checkpoint-change rebuild of a private copy of the example plugin (own build folder)."""
    example = ROOT / "plugins" / "AdacFDN"
    if not (ROOT / "SConstruct").exists() or not (example / "plugin.yaml").exists() or shutil.which("scons") is None:
        return {"status": "not measured: SCons build not available"}
    import torch

    build_root = "build/bench-scons"
    with tempfile.TemporaryDirectory(prefix="adac-bench-plugins-") as tmp:
        plugins = Path(tmp) / "plugins"
        shutil.copytree(example, plugins / "AdacFDN")

        def scons() -> float:
            t = time.perf_counter()
            proc = subprocess.run(["scons", "-Q", f"PLUGINS={plugins}", f"BUILD_ROOT={build_root}", "plugins/AdacFDN"],
                                  cwd=ROOT, capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError((proc.stdout + proc.stderr)[-2000:])
            return time.perf_counter() - t

        try:
            first = scons()  # cold (or warm, if bench ran before: the build folder is kept)
            noop = [scons() for _ in range(3)]
            checkpoint = plugins / "AdacFDN" / "checkpoint.pt"
            state = torch.load(checkpoint, weights_only=True)
            key = next(k for k, v in state.items() if torch.is_tensor(v) and v.is_floating_point() and v.numel() > 1)
            state[key] = state[key] * 0.99
            torch.save(state, checkpoint)
            changed = scons()
        except Exception as exc:  # noqa: BLE001 - report, never fake a number
            return {"status": f"not measured: SCons build failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else exc}"}
    return {"status": "measured", "build_root": build_root, "first_build_seconds": first, "noop_seconds": statistics.median(noop),
            "checkpoint_change_seconds": changed, "changed_tensor": key}


# --- report -----------------------------------------------------------------------------------


def machine() -> dict:
    """The machine (adac.common.machine) and the compilers the figures depend on."""
    gxx = subprocess.run([toolchain.cxx(), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    faust = subprocess.run([toolchain.faust(), "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return {**common_machine(), "gxx": gxx, "faust": faust, "cxx_flags": CXX}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 4.5))
    for kind in FORMS:
        rows = [r for r in results["dsp"] if r["matrix"] == kind]
        if not rows:
            continue
        ns = [r["N"] for r in rows]
        line, = axes[0].plot(ns, [r["ns_per_sample"]["hand-written"] for r in rows], "o:", label=f"hand-written ({kind})")
        axes[0].plot(ns, [r["ns_per_sample"][SHIPPED] for r in rows], "o-", color=line.get_color(), label=f"adac, shipped ({kind})")
        axes[0].plot(ns, [naive_best(r["ns_per_sample"]) for r in rows], "x--", color=line.get_color(),
                     label=f"naive ({kind})")
        axes[0].plot(ns, [r["ns_per_sample"][NATIVE] for r in rows], "^-.", color=line.get_color(), label=f"native ({kind})")
        axes[1].plot(ns, [r["native_vs_handwritten"] for r in rows], "^-.", color=line.get_color(),
                     label=f"native / hand-written ({kind})")
        axes[1].plot(ns, [r["shipped_vs_handwritten"] for r in rows], "o-", color=line.get_color(), label=f"adac / hand-written ({kind})")
        axes[1].plot(ns, [r["shipped_vs_naive"] for r in rows], "s--", color=line.get_color(), label=f"adac / naive ({kind})")
    axes[0].set(xscale="log", yscale="log", xlabel="delay lines N", ylabel="ns per sample", title="DSP cost per sample")
    axes[0].legend(fontsize=6)
    axes[1].axhline(1.2, color="grey", ls=":", label="target 1.2 x hand-written")
    axes[1].axhline(0.5, color="black", ls=":", label="target 0.5 x naive (N = 64)")
    axes[1].axhline(NATIVE_GOALS["dense_vs_handwritten"], color="tab:red", ls=":", label="goal native 0.8 x hand-written (dense)")
    axes[1].set(xscale="log", yscale="log", xlabel="delay lines N", ylabel="time ratio", title=f"ratios (shipped build, {SHIPPED})")
    axes[1].legend(fontsize=6)
    for kind in FORMS:
        rows = [r for r in results["pipeline"] if r["matrix"] == kind]
        if rows:
            rows = [r for r in rows if r.get("faust") is not None]
            axes[2].plot([r["N"] for r in rows], [r["compile_and_certify"] for r in rows], "o-", label=f"json_to_faust+certify+faust ({kind})")
    axes[2].axhline(2.0, color="grey", ls=":", label="target 2 s at N = 64")
    axes[2].set(xscale="log", yscale="log", xlabel="delay lines N", ylabel="seconds", title="compile pipeline")
    axes[2].legend(fontsize=7)
    for ax, section in zip(axes, ("dsp", "dsp", "pipeline")):  # the line counts as ticks, not powers of ten
        ticks = sorted({r["N"] for r in results[section]})
        ax.set_xticks(ticks, [str(n) for n in ticks])
        ax.minorticks_off()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def print_tables(results: dict) -> None:
    print(f"\nDSP cost, ns per sample (median); ratios of the shipped build ({SHIPPED}) and of the best adac variant; "
          "callgrind instructions per sample")
    print(f"{'matrix':11s} {'N':>3s} {'adac':>7s} {'-vec':>7s} {'-mcd0':>7s} {'-vec-mcd0':>9s} {'hand':>7s} {'naive':>7s} "
          f"{'ship/hand':>9s} {'ship/naive':>10s} {'best':>16s} {'best/hand':>9s} {'controls':>8s}   instr: shipped|hand|naive")
    for r in results["dsp"]:
        t = with_unbuilt(r["ns_per_sample"])
        ips = r.get("instructions_per_sample") or {}
        cg = " | ".join("-" if ips.get(k) is None else f"{ips[k]:.0f}" for k in (SHIPPED, "hand-written", "naive"))
        naive = naive_best(t)
        print(f"{r['matrix']:11s} {r['N']:3d} {t['adac']:7.1f} {t['adac -vec']:7.1f} {t['adac -mcd 0']:7.1f} "
              f"{t['adac -vec -mcd 0']:9.1f} {t['hand-written']:7.1f} {naive:7.1f} {r['shipped_vs_handwritten']:9.2f} "
              f"{r['shipped_vs_naive']:10.2f} {r['best_adac']:>16s} {r['best_adac_vs_handwritten']:9.2f} "
              f"{r['controls_cost']:7.2f}x   {cg}")
    if results.get("sweep"):
        print("\nFAUST options at N = 64 (ns per sample, x hand-written)")
        for r in results["sweep"]:
            print(f"  {r['matrix']:11s} {r['options']:30s} {r['ns_per_sample']:8.1f}  {r['vs_handwritten']:.2f}")
    print("\ncompile pipeline (seconds)")
    for r in results["pipeline"]:
        cert = "n/a" if r["certify"] is None else f"{r['certify']:.2f}"
        if r.get("faust") is None:
            print(f"  {r['matrix']:11s} N={r['N']:3d}  flamo_to_json {r['flamo_to_json']:.2f}  json_to_faust {r['json_to_faust']:.2f}  "
                  f"certify {cert}  faust {r.get('faust_error')}")
            continue
        print(f"  {r['matrix']:11s} N={r['N']:3d}  flamo_to_json {r['flamo_to_json']:.2f}  json_to_faust {r['json_to_faust']:.2f}  "
              f"certify {cert}  faust {r['faust']:.2f}  total(json_to_faust+certify+faust) {r['compile_and_certify']:.2f}")
    s = results.get("scons", {"status": "not measured"})
    print("\nSCons: " + (s["status"] if s["status"] != "measured" else
                         f"first build {s['first_build_seconds']:.1f}s, no-op {s['noop_seconds']:.2f}s, "
                         f"checkpoint change -> plugin {s['checkpoint_change_seconds']:.1f}s"))
    print("\ntargets:")
    dsp = results["dsp"]
    if not dsp:
        return
    for key, what in (("shipped_vs_handwritten", f"shipped ({SHIPPED})"), ("best_adac_vs_handwritten", "best variant")):
        worst = max(dsp, key=lambda r: r[key])
        print(f"  compiled <= 1.2x hand-written for every N, {what}: worst {worst[key]:.2f}x ({worst['matrix']}, N={worst['N']}); "
              + ", ".join(f"{k}: {max(r[key] for r in dsp if r['matrix'] == k):.2f}x" for k in FORMS
                          if any(r["matrix"] == k for r in dsp)))
    n64 = [r for r in dsp if r["N"] == 64]
    print("  <= 0.5x naive at N = 64 (shipped): " + ", ".join(f"{r['matrix']} {r['shipped_vs_naive']:.2f}x" for r in n64))
    print("  cost of the three macro-controls (shipped, x the model alone): "
          + ", ".join(f"{r['matrix']} N={r['N']} {r['controls_cost']:.2f}x" for r in dsp if r["N"] in (16, 64)))
    p64 = [r for r in results["pipeline"] if r["N"] == 64]
    print("  json_to_faust + certify + faust of N = 64 <= 2 s: " + ", ".join(f"{r['matrix']} {r.get('compile_and_certify', float('nan')):.2f}s" for r in p64))
    print_native(dsp)


def _instructions(row: dict, name: str) -> str:
    v = (row.get("instructions_per_sample") or {}).get(name)
    return "-" if v is None else f"{v:.0f}"


def _instruction_ratio(row: dict, name: str, baseline: str) -> str:
    ips = row.get("instructions_per_sample") or {}
    return "-" if ips.get(name) is None or ips.get(baseline) is None else f"{ips[name] / ips[baseline]:.2f}"


def print_native(dsp: list[dict]) -> None:
    """The native kernel beside the FAUST code (shipped flags), the hand-written FDN and the naive emission, and
    issue 16's goals: dense N >= 16 at most 0.8x the hand-written FDN, never slower than FAUST."""
    ctl = " +controls"
    print(f"\nNative kernel: ns per sample (median) and ratios; 'shipped' is FAUST {SHIPPED}, '+ctl' the same with the "
          "three macro-controls; instr. = callgrind instructions per sample")
    print(f"{'matrix':11s} {'N':>3s} {'hand':>7s} {'shipped':>8s} {'naive':>7s} {'native':>7s} {'nat/hand':>8s} "
          f"{'nat/ship':>8s} {'ship+ctl':>8s} {'nat+ctl':>8s} {'ratio+ctl':>9s}   instr: native|shipped|hand|naive  "
          "native+ctl|shipped+ctl")
    for r in dsp:
        t = r["ns_per_sample"]
        naive = naive_best(t)
        print(f"{r['matrix']:11s} {r['N']:3d} {t['hand-written']:7.1f} {t[SHIPPED]:8.1f} {naive:7.1f} {t[NATIVE]:7.1f} "
              f"{r['native_vs_handwritten']:8.2f} {r['native_vs_shipped']:8.2f} {t[SHIPPED + ctl]:8.1f} "
              f"{t[NATIVE + ctl]:8.1f} {r['native_controls_vs_shipped_controls']:9.2f}   "
              + "|".join(_instructions(r, k) for k in (NATIVE, SHIPPED, "hand-written", "naive")) + "  "
              + "|".join(_instructions(r, k) for k in (NATIVE + ctl, SHIPPED + ctl)))
    print("\nnative kernel goals (time ratio; callgrind instruction ratio in brackets):")
    limit, from_n = NATIVE_GOALS["dense_vs_handwritten"], NATIVE_GOALS["dense_from_n"]
    dense = [r for r in dsp if r["matrix"] == "dense" and r["N"] >= from_n]
    if dense:
        print(f"  dense, N >= {from_n}: native <= {limit}x hand-written: "
              + ", ".join(f"N={r['N']} {r['native_vs_handwritten']:.2f}x ({_instruction_ratio(r, NATIVE, 'hand-written')}) "
                          f"{'met' if r['native_vs_handwritten'] <= limit else 'MISSED'}" for r in dense))
    pairs = {"native_vs_shipped": (NATIVE, SHIPPED), "native_controls_vs_shipped_controls": (NATIVE + ctl, SHIPPED + ctl)}
    slower = [(r, key) for r in dsp for key in pairs if r[key] > NATIVE_GOALS["vs_faust"]]
    print(f"  never slower than FAUST ({SHIPPED}), every N and form, alone and with the controls: "
          + ", ".join(f"worst {r[key]:.2f}x ({r['matrix']}, N={r['N']}{'' if key == 'native_vs_shipped' else ctl})"
                      for key in pairs for r in [max(dsp, key=lambda row: row[key])])
          + (": met" if not slower else ": MISSED at " + ", ".join(
              f"{r['matrix']} N={r['N']}{'' if key == 'native_vs_shipped' else ctl} {r[key]:.2f}x "
              f"({_instruction_ratio(r, *pairs[key])})" for r, key in slower)))
    if not all(r["checksums_agree"] for r in dsp):
        print("  OUTPUT CHECKSUMS DIFFER at " + ", ".join(f"{r['matrix']} N={r['N']}" for r in dsp if not r["checksums_agree"]))


SECTIONS = ("dsp", "sweep", "pipeline", "scons")


def revision() -> str:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    dirty = git("status", "--porcelain", "--", "adac", "bench")
    return git("rev-parse", "--short", "HEAD") + (" + uncommitted changes in adac/ or bench/" if dirty else "")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 4, 16, 64 only, fewer repeats (a smoke run)")
    parser.add_argument("--no-scons", action="store_true", help="skip the SCons measurement")
    parser.add_argument("--no-callgrind", action="store_true", help="skip the callgrind instruction counts")
    parser.add_argument("--no-sweep", action="store_true", help="skip the FAUST option sweep")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help="comma-separated sections to run (dsp, sweep, pipeline, scons); the others are kept from "
                             "an existing bench.json, each section stamped with its own time and revision")
    parser.add_argument("--forms", default=",".join(FORMS), help=f"comma-separated matrix forms ({', '.join(FORMS)})")
    parser.add_argument("--sizes", default=None,
                        help=f"comma-separated line counts for the DSP cost (default {','.join(map(str, SIZES))})")
    parser.add_argument("--seconds", type=float, default=None, help="audio rendered per timing run (default 10, --quick 2)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per variant (default 7, --quick 3)")
    args = parser.parse_args(argv)
    only = {x.strip() for x in args.only.split(",") if x.strip()}
    if args.no_sweep:
        only.discard("sweep")
    if args.no_scons:
        only.discard("scons")
    forms = [f.strip() for f in args.forms.split(",") if f.strip()]
    unknown = sorted(set(forms) - set(FORMS))
    if unknown:
        parser.error(f"--forms: unknown {', '.join(unknown)} (known: {', '.join(FORMS)})")
    try:
        sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else ([4, 16, 64] if args.quick else list(SIZES))
    except ValueError:
        parser.error(f"--sizes: expected comma-separated integers, got {args.sizes!r}")
    if any(n not in SIZES for n in sizes):
        parser.error(f"--sizes: the hand-written FDN is instantiated for N = {', '.join(map(str, SIZES))}")
    seconds = args.seconds or (2.0 if args.quick else 10.0)
    repeats = args.repeats or (3 if args.quick else 7)
    out = RESULTS / "bench.json"
    results: dict = json.loads(out.read_text()) if out.exists() and only != set(SECTIONS) else {}
    if any("native_vs_handwritten" not in r for r in results.get("dsp", [])):
        print("(the DSP section of the existing bench.json was measured by an older bench: dropped)")
        results.pop("dsp")
    results.setdefault("stamps", {})
    results["machine"] = machine()
    stamp = {"time": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "revision": revision(), "seconds": seconds, "repeats": repeats,
             "block": 256, "fs": FS, "vec_flags": list(VEC)}
    RESULTS.mkdir(parents=True, exist_ok=True)

    def save():  # after every section, so a failure later keeps what was measured
        out.write_text(json.dumps(results, indent=1, default=str))

    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, {m['os']}; {m['gxx']}; {m['faust']}; "
          f"load average {' '.join(map(str, m['load_average']))} (1, 5, 15 min) at the start")
    with tempfile.TemporaryDirectory(prefix="adac-bench-") as tmp:
        work = Path(tmp)
        if "dsp" in only:
            print(f"1. DSP cost (ns per sample, median of {repeats} interleaved runs of {seconds:g} s of noise)")
            results["stamps"]["dsp"] = {**stamp, "load_average_start": m["load_average"]}  # saved with every row
            # rows of other forms and sizes stay from the previous run (each row names when it was measured)
            kept = [r for r in results.get("dsp", []) if r["matrix"] not in forms or r["N"] not in sizes]

            def merged(rows):
                return sorted(kept + rows, key=lambda r: (list(FORMS).index(r["matrix"]), r["N"]))

            results["dsp"] = merged(dsp_cost(sizes, forms, seconds, repeats, not args.no_callgrind, work,
                                             on_row=lambda rows: (results.update(dsp=merged(rows)), save())))
            results["stamps"]["dsp"]["load_average_end"] = common_machine()["load_average"]
        save()
        if "sweep" in only:
            print("1b. FAUST options at N = 64")
            results["sweep"] = option_sweep([f for f in forms if f != "dense"] or forms, 64, min(seconds, 4.0), repeats, work)
            results["stamps"]["sweep"] = stamp
        save()
    if "pipeline" in only:
        print("2. compile pipeline")
        results["pipeline"] = pipeline_times([4, 16, 64] if args.quick else [4, 8, 16, 32, 64, 128], forms)
        results["stamps"]["pipeline"] = stamp
        save()
    if "scons" in only:
        print("3. SCons (private copy of the example plugin)")
        results["scons"] = scons_times()
        results["stamps"]["scons"] = stamp
        save()
    results.setdefault("dsp", [])
    results.setdefault("sweep", [])
    results.setdefault("pipeline", [])
    results.setdefault("scons", {"status": "not measured: skipped (--no-scons)"})
    RESULTS.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1, default=str))
    plot(results, RESULTS / "bench.png")
    print_tables(results)
    print(f"\nwrote {out} and {RESULTS / 'bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
