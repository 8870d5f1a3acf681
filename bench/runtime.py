"""How fast the C++ runtime plays a model, against the FAUST class and the native kernel of the same model.

    python3 bench/runtime.py [--sizes 4,16,64,128] [--forms dense,householder,hadamard] [--geq 16,64]
                             [--controls both|off|on] [--quick] [--instructions] [--seconds 0.5]
                             [--rounds 7] [--runtime-rev HEAD]

Each model is timed three ways, as ``adac.backends.native.timing`` times a plugin's two realisations for
``backend: auto``: the timing architecture ``faust/arch/timing.cpp`` (class ``AdacTimedDsp``, ``timing SAMPLE_RATE
BLOCK BLOCKS``: blocks of 256 samples of noise, the output checked finite) compiled with the plugin's flags
(:data:`adac.backends.native.timing.PLUGIN_CXXFLAGS`), the binaries run in turns (7 rounds each, 0.5 s of timed runs
per model in all: ``--rounds``, ``--seconds``), medians:

  faust    the FAUST class of ``adac.json_to_faust`` (the plugin's FAUST flags, ``-mcd 0``)
  native   the native kernel's class (``native_to_cpp``: the FDN loop as a C++ block kernel, the rest FAUST)
  runtime  ``adac::runtime::FaustDsp<float>`` playing the model's runtime document (``runtime_document`` +
           ``write_model``): one binary for every model, timing.cpp around a class whose constructor loads the file
           named by $ADAC_TIMED_MODEL, linked with the runtime's Release static library. No model code is compiled.
           The library is that of a commit (``--runtime-rev``, default HEAD: ``runtime/`` exported with ``git archive``
           and built with CMake, Release, as ``build_runtime`` builds it), so work in progress in the checkout is not
           what is timed; ``--runtime-rev worktree`` times the files as they are (``build_runtime``).

Models: the FDNs of bench/run.py (``tests/flamo_models.fdn``: delays spread over 601..1999 samples, per-line gain and
lowpass biquad in the loop, dense orthogonal / Householder / Hadamard feedback), 1 input and 2 outputs with the
direct path, alone and with the three macro-controls (rt60, dry_wet, pre_delay at their defaults); and dense FDNs
with FLAMO's octave-band ``parallelGEQ`` per line (12 sections per line) instead of the biquad.

``--instructions``: also callgrind's instruction count per sample of each binary (the difference of two runs of
different lengths, so loading and set-up cancel), which does not depend on the load.

Prints a table (ns per sample, runtime/native and runtime/FAUST in the same run) with the machine and its load
(``adac.common.machine.machine()``, before and after each model); writes bench/results/runtime.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
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
from adac.backends.faust.render import digest, faust_to_cpp  # noqa: E402
from adac.backends.juce.project import DEFAULT_FAUST_FLAGS  # noqa: E402
from adac.backends.native import native_to_cpp  # noqa: E402
from adac.backends.native import timing  # noqa: E402
from adac.backends.native.timing import (BLOCK, PLUGIN_CXXFLAGS, TIMED_CLASS, TIMING_ARCH, measure,  # noqa: E402
                                         timing_binary)
from adac.backends.runtime import build_runtime, runtime_document, write_model  # noqa: E402
from adac.common import toolchain  # noqa: E402
from adac.common.errors import AdacError  # noqa: E402
from adac.common.fileio import write_bytes_atomic  # noqa: E402
from adac.common.machine import machine  # noqa: E402
from adac.common.resources import data_dir  # noqa: E402

RESULTS = ROOT / "bench" / "results"
FS = 48000
CONTROLS = {"rt60": True, "dry_wet": True, "pre_delay": True}  # the example plugin's macro-controls
FORMS = {"dense": "orthogonal", "householder": "householder", "hadamard": "hadamard"}  # bench name -> FLAMO matrix
MODEL_ENV = "ADAC_TIMED_MODEL"
REALISATIONS = ("faust", "native", "runtime")

# timing.cpp's class: the runtime playing the model file named by $ADAC_TIMED_MODEL (float, as the plugin plays it)
RUNTIME_CLASS = r"""
#include <cstdlib>
#include <string>

#include "adac/runtime/faust_dsp.h"

namespace {
adac::runtime::Model adacTimedModel()
{
    const char* path = std::getenv("%(env)s");
    if (!path || !*path) {
        std::fprintf(stderr, "timing: set %(env)s to the runtime document to play\n");
        std::exit(2);
    }
    try {
        return adac::runtime::loadFile(path);
    } catch (const adac::runtime::Error& e) {
        std::fprintf(stderr, "timing: %%s\n", e.what());
        std::exit(2);
    }
}
}  // namespace

class %(cls)s : public adac::runtime::FaustDsp<float> {
public:
    %(cls)s() : adac::runtime::FaustDsp<float>(adacTimedModel()) {}
};
""" % {"env": MODEL_ENV, "cls": TIMED_CLASS}


# --- models ---------------------------------------------------------------------------------------


def delays(n: int) -> list[int]:
    return [int(d) for d in np.linspace(601, 1999, n).round()]


def fdn_model(n: int, form: str):
    """bench/run.py's FDN, with 1 input and 2 outputs."""
    from flamo_models import fdn

    return fdn(n, t60=1.0, matrix=FORMS[form], attenuation="biquad", n_in=1, n_out=2, direct=True, delays=delays(n))


def geq_model(n: int):
    """The same FDN (dense orthogonal matrix) with FLAMO's octave-band parallelGEQ per line instead of the biquad
    (12 sections per line: a broadband gain, 2 shelves and 9 peaks; gains 0 to -3 dB over the bands, as
    examples/live_training.py starts from). ``flamo_models.fdn(attenuation="geq")`` has no GEQ: it builds the loop
    without any filter."""
    import torch
    from flamo.processor import dsp, system
    from flamo_models import CPU, gains_for_t60, set_delays_samples, shell

    torch.manual_seed(0)
    samples = delays(n)
    lines = dsp.parallelDelay(size=(n,), max_len=max(samples) + 1, isint=True, fs=FS, **CPU)
    set_delays_samples(lines, samples, FS)
    mix = dsp.Matrix(size=(n, n), matrix_type="orthogonal", **CPU)
    gains = dsp.parallelGain(size=(n,), **CPU)
    gains.assign_value(torch.tensor(gains_for_t60(samples, 1.0, FS)))
    geq = dsp.parallelGEQ(size=(n,), octave_interval=1, fs=FS, **CPU)
    gains_db = torch.linspace(0.0, -3.0, geq.param.shape[0]).unsqueeze(1).expand(-1, n)
    geq.assign_value(10 ** (gains_db / 20))
    loop = system.Recursion(lines, system.Series(mix, gains, geq))
    wet = system.Series(dsp.Gain(size=(n, 1), **CPU), loop, dsp.Gain(size=(2, n), **CPU))
    return shell(system.Parallel(wet, dsp.Gain(size=(2, 1), **CPU), sum_output=True))


def models(sizes, forms, geq_sizes, controls: str) -> list[dict]:
    variants = {"off": (False,), "on": (True,), "both": (False, True)}[controls]
    out = []
    for form in forms:
        for n in sizes:
            out += [{"matrix": form, "attenuation": "biquad", "N": n, "controls": c} for c in variants]
    for n in geq_sizes:
        out += [{"matrix": "dense", "attenuation": "geq", "N": n, "controls": c} for c in variants]
    return out


def label(m: dict) -> str:
    return f"{m['matrix']}{' geq' if m['attenuation'] == 'geq' else ''} N={m['N']}{' +ctl' if m['controls'] else ''}"


# --- binaries -------------------------------------------------------------------------------------


def runtime_cpp() -> str:
    """timing.cpp around the runtime's class (no intrinsics: no FAUST code)."""
    text = TIMING_ARCH.read_text()
    assert "<<includeIntrinsic>>" in text and "<<includeclass>>" in text
    return text.replace("<<includeIntrinsic>>", "").replace("<<includeclass>>", RUNTIME_CLASS)


def runtime_library(rev: str) -> tuple[Path, Path, str]:
    """The runtime's Release static library and its include folder: of the git revision ``rev`` (its ``runtime/``
    exported and built with CMake, cached per commit), or of the working tree for ``rev == "worktree"``
    (:func:`adac.backends.runtime.build_runtime`, which builds whatever the files hold now). Returns the build
    folder, the include folder and what was built (a commit, or the working tree's source digest)."""
    if rev == "worktree":
        build = build_runtime(("adac_runtime",), build_type="Release")
        return build, data_dir("runtime") / "include", f"worktree (source digest {build.name})"
    sha = subprocess.run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.strip()
    root = toolchain.cache_dir() / "bench-runtime" / sha[:12]
    build, source = root / "build", root / "src"
    if not (build / "libadac_runtime.a").exists():
        source.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "runtime"], cwd=ROOT, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
        cmake = os.environ.get("ADAC_CMAKE", "cmake")
        toolchain.run([cmake, "-S", str(source / "runtime"), "-B", str(build), "-G", "Ninja",
                       "-DCMAKE_BUILD_TYPE=Release", "-DADAC_RUNTIME_TOOLS=OFF"], "CMake configure of the runtime")
        toolchain.run([cmake, "--build", str(build), "--target", "adac_runtime"], "runtime build")
    return build, source / "runtime" / "include", f"commit {sha[:12]}"


def runtime_timing_binary(rev: str) -> tuple[Path, Path, str]:
    """The runtime's timing program (one for every model), the build folder of the library it links and what that
    library was built from; the program is cached by the C++ text, the flags, the compiler and the library's bytes."""
    build, include, what = runtime_library(rev)
    library = build / "libadac_runtime.a"
    compiler = toolchain.cxx()
    flags = [*PLUGIN_CXXFLAGS, "-isystem", str(toolchain.eigen_include()), "-I", str(include)]
    cpp = runtime_cpp()
    binary = toolchain.cache_dir() / "timing" / (
        f"timing-runtime-{digest(cpp, ' '.join(flags), compiler, hashlib.sha256(library.read_bytes()).hexdigest())}")
    if not binary.exists():
        with tempfile.TemporaryDirectory(prefix="adac-timing-") as tmp:
            source, built = Path(tmp) / "timing.cpp", Path(tmp) / "timing"
            source.write_text(cpp)
            toolchain.run([compiler, *flags, str(source), str(library), "-o", str(built)],
                          "C++ compile of the runtime's timing program")
            write_bytes_atomic(binary, built.read_bytes())
        os.chmod(binary, 0o755)
    return binary, build, what


def build_model(m: dict) -> dict:
    """The IR, the FAUST and native timing binaries and the runtime document of one model."""
    flamo = geq_model(m["N"]) if m["attenuation"] == "geq" else fdn_model(m["N"], m["matrix"])
    ir = adac.flamo_to_json(flamo, FS)
    controls = CONTROLS if m["controls"] else None
    t = time.perf_counter()
    code = adac.json_to_faust(ir, controls=controls)
    faust = timing_binary(faust_to_cpp(code, architecture=TIMING_ARCH, class_name=TIMED_CLASS,
                                       extra_flags=tuple(DEFAULT_FAUST_FLAGS)))
    faust_s = time.perf_counter() - t
    t = time.perf_counter()
    native = timing_binary(native_to_cpp(ir, controls, architecture=TIMING_ARCH, class_name=TIMED_CLASS,
                                         faust_flags=tuple(DEFAULT_FAUST_FLAGS)))
    native_s = time.perf_counter() - t
    document = write_model(runtime_document(ir, controls))
    return {"binaries": {"faust": faust, "native": native}, "document": document,
            "build_s": {"faust": faust_s, "native": native_s}}


# --- measuring ------------------------------------------------------------------------------------


def check_runtime(binary: Path, document: Path, expected: tuple[int, int]) -> None:
    """The runtime's timing program plays the document with the FAUST class's channels and a finite output
    (timing.cpp exits 3 otherwise)."""
    proc = toolchain.run([str(binary), str(FS), str(BLOCK), "64"], "runtime timing check",
                         env={**os.environ, MODEL_ENV: str(document)})
    words = proc.stdout.decode().split()
    if (int(words[0]), int(words[1])) != expected:
        raise AdacError(f"runtime plays {words[:2]} channels, the FAUST class {expected}")


def channels(binary: Path) -> tuple[int, int]:
    words = toolchain.run([str(binary), str(FS), str(BLOCK), "1"], "channels").stdout.decode().split()
    return int(words[0]), int(words[1])


def instructions(binary: Path, blocks: int) -> int:
    """Callgrind's total instruction count of one run of ``blocks`` timed blocks (as many untimed before)."""
    with tempfile.TemporaryDirectory(prefix="adac-cg-") as tmp:
        out = Path(tmp) / "cg.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(binary), str(FS),
                        str(BLOCK), str(blocks)], capture_output=True, check=True)
        found = re.search(r"^(?:summary|totals):\s*(\d+)", out.read_text(), re.M)
    return int(found.group(1))


def instructions_per_sample(binary: Path) -> float:
    """Instructions per sample of ``compute()``: the difference of a run of 40 and one of 8 blocks (each run
    computes its blocks twice: warm-up and timed)."""
    short, long = 8, 40
    return (instructions(binary, long) - instructions(binary, short)) / (2 * (long - short) * BLOCK)


def run(args) -> dict:
    todo = models(args.sizes, args.forms, args.geq, args.controls)
    print(f"machine: {machine()}", flush=True)
    runtime, build, what = runtime_timing_binary(args.runtime_rev)
    print(f"runtime timing program {runtime.name}: the runtime of {what} ({build / 'libadac_runtime.a'})", flush=True)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:  # every binary first, then the timed runs (no compile beside them)
        built = list(pool.map(build_model, todo))
    print(f"built {len(todo)} models' binaries in {time.perf_counter() - t0:.0f} s", flush=True)
    rows = []
    for m, b in zip(todo, built):
        binaries = {**b["binaries"], "runtime": runtime}
        io = channels(b["binaries"]["faust"])
        check_runtime(runtime, b["document"], io)
        os.environ[MODEL_ENV] = str(b["document"])  # measure() runs the binaries in this environment
        before = machine()["load_average"]
        timed = measure(binaries, FS)
        after = machine()["load_average"]
        med = timed["median"]
        row = {**m, "inputs": io[0], "outputs": io[1], "document": b["document"].name, "ns_per_sample": med,
               "runs": timed["runs"], "blocks": timed["blocks"],
               "runtime_vs_native": med["runtime"] / med["native"], "runtime_vs_faust": med["runtime"] / med["faust"],
               "native_vs_faust": med["native"] / med["faust"], "runtime_output_finite": True,
               "build_s": b["build_s"], "load_average": {"before": before, "after": after},
               "time": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
        if args.instructions:
            row["instructions_per_sample"] = {k: instructions_per_sample(v) for k, v in binaries.items()}
            ips = row["instructions_per_sample"]
            row["instructions_runtime_vs_native"] = ips["runtime"] / ips["native"]
            row["instructions_runtime_vs_faust"] = ips["runtime"] / ips["faust"]
        rows.append(row)
        ips = row.get("instructions_per_sample")
        print(f"  {label(m):26s} faust {med['faust']:8.1f}  native {med['native']:8.1f}  runtime {med['runtime']:8.1f} "
              f"ns/sample   runtime/native {row['runtime_vs_native']:5.2f}  runtime/faust {row['runtime_vs_faust']:5.2f}"
              f"   load {before[0]:.1f}->{after[0]:.1f}"
              + (f"   instr. {ips['faust']:.0f} / {ips['native']:.0f} / {ips['runtime']:.0f}" if ips else ""), flush=True)
    os.environ.pop(MODEL_ENV, None)
    gxx = toolchain.run([toolchain.cxx(), "--version"], "g++ --version").stdout.decode().splitlines()[0]
    return {"machine": {**machine(), "gxx": gxx}, "cxxflags": list(PLUGIN_CXXFLAGS), "faust_flags": list(DEFAULT_FAUST_FLAGS),
            "fs": FS, "block": BLOCK, "rounds": timing.ROUNDS,
            "timed_seconds": timing.TIMED_SECONDS, "runtime_binary": runtime.name, "runtime_build": str(build),
            "runtime_source": what, "revision": revision(), "rows": rows}


def revision() -> str:
    def git(*a):
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return git("rev-parse", "--short", "HEAD") + (" (runtime/ modified)" if git("status", "--porcelain", "runtime") else "")


def print_table(results: dict) -> None:
    m = results["machine"]
    print(f"\nruntime of {results['runtime_source']}; bench at {results['revision']}")
    print(f"ns per sample (median of {results['rounds']} runs in turns, blocks of {results['block']}); "
          f"{m['cpu']}, {m['cores']} cores, load {m['load_average']} at the end; {m['gxx']}")
    print(f"{'model':26s} {'FAUST':>8s} {'native':>8s} {'runtime':>8s} {'rt/native':>9s} {'rt/FAUST':>8s} "
          f"{'load':>5s}   instr. FAUST/native/runtime (rt/native, rt/FAUST)")
    for r in results["rows"]:
        t, ips = r["ns_per_sample"], r.get("instructions_per_sample")
        print(f"{label(r):26s} {t['faust']:8.1f} {t['native']:8.1f} {t['runtime']:8.1f} {r['runtime_vs_native']:9.2f} "
              f"{r['runtime_vs_faust']:8.2f} {r['load_average']['before'][0]:5.1f}   "
              + (" / ".join(f"{ips[k]:.0f}" for k in REALISATIONS)
                 + f" ({ips['runtime'] / ips['native']:.2f}, {ips['runtime'] / ips['faust']:.2f})" if ips else "-"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    parser.add_argument("--sizes", type=ints, default=[4, 16, 64, 128])
    parser.add_argument("--forms", type=lambda s: [f for f in s.split(",") if f], default=list(FORMS))
    parser.add_argument("--geq", type=ints, default=[16, 64], help="line counts of the GEQ FDNs ('' for none)")
    parser.add_argument("--controls", choices=("both", "off", "on"), default="both")
    parser.add_argument("--quick", action="store_true", help="N = 4, 16; GEQ N = 16; without the controls")
    parser.add_argument("--instructions", action="store_true", help="callgrind instructions per sample too")
    parser.add_argument("--seconds", type=float, default=timing.TIMED_SECONDS,
                        help="timed seconds per model, all runs of the three binaries together (backend: auto's default "
                             f"{timing.TIMED_SECONDS}; longer on a loaded machine)")
    parser.add_argument("--rounds", type=int, default=timing.ROUNDS, help="runs of each binary, in turns")
    parser.add_argument("--runtime-rev", default="HEAD",
                        help="the git revision whose runtime/ is built and timed (default HEAD: what is committed, "
                             "not work in progress), or 'worktree' for the files as they are")
    parser.add_argument("--jobs", type=int, default=2, help="parallel builds")
    parser.add_argument("--out", type=Path, default=RESULTS / "runtime.json")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.geq, args.controls = [4, 16], [16], "off"
    timing.TIMED_SECONDS, timing.ROUNDS = args.seconds, args.rounds  # measure() reads them when called
    unknown = [f for f in args.forms if f not in FORMS]
    if unknown:
        parser.error(f"unknown forms {unknown}: choose from {list(FORMS)}")
    results = run(args)
    print_table(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1, default=str))
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
