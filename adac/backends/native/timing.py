"""Which realisation of a model is faster in the plugin: the FAUST class or adac's native kernel (``backend: auto``).

Each realisation is compiled into a small timing program (``faust/arch/timing.cpp``, the class ``AdacTimedDsp``)
with the compiler and optimisation flags the plugin's ``FaustDsp.cpp`` is compiled with
(:data:`PLUGIN_CXXFLAGS`); the two programs run in turns, :data:`ROUNDS` times each, timing ``compute()`` on blocks
of :data:`BLOCK` samples of noise at the model's own rate; the faster median wins (the FAUST class on a tie).
Binaries are cached in ``<cache>/timing`` by the hash of their C++ text, flags and compiler. The native class
includes Eigen's headers (:func:`adac.common.toolchain.eigen_include`), as in the plugin.
"""
from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from ...common import toolchain
from ...common.errors import ToolchainError
from ...common.fileio import write_bytes_atomic
from ...common.machine import machine
from ...common.resources import data_dir
from ...ir.fractional import DEFAULT_ORDER
from ..faust.render import digest, faust_to_cpp
from . import NativeUnsupported, native_to_cpp

TIMING_ARCH = data_dir("faust") / "arch" / "timing.cpp"
TIMED_CLASS = "AdacTimedDsp"
# What CMake's Release configuration and JUCE's recommended flags give the plugin's FaustDsp.cpp with GCC (read
# from the JUCE build tree's compile_commands.json; tests/test_native_plugin.py compares them), C++17 as JUCE asks.
PLUGIN_CXXFLAGS = ("-std=gnu++17", "-O3", "-DNDEBUG", "-fPIC", "-fvisibility=hidden", "-fvisibility-inlines-hidden",
                   "-DFAUSTFLOAT=float")
BLOCK = 256          # samples per compute() call
ROUNDS = 7           # timed runs of each realisation, in turns
TIMED_SECONDS = 0.5  # both realisations' timed runs together (each run is preceded by as long a warm-up)


def timing_binary(cpp: str) -> Path:
    """The timing program of one realisation's C++ text (``timing.cpp`` filled in), compiled with
    :data:`PLUGIN_CXXFLAGS`; cached."""
    compiler = toolchain.cxx()
    flags = [*PLUGIN_CXXFLAGS, "-isystem", str(toolchain.eigen_include())]
    binary = toolchain.cache_dir() / "timing" / f"timing-{digest(cpp, ' '.join(flags), compiler)}"
    if binary.exists():
        return binary
    with tempfile.TemporaryDirectory(prefix="adac-timing-") as tmp:
        source, built = Path(tmp) / "timing.cpp", Path(tmp) / "timing"
        source.write_text(cpp)
        toolchain.run([compiler, *flags, str(source), "-o", str(built)], "C++ compile of the timing program")
        write_bytes_atomic(binary, built.read_bytes())
    os.chmod(binary, 0o755)
    return binary


def time_blocks(binary: Path, rate: int, blocks: int) -> float:
    """Nanoseconds per sample of ``blocks`` calls of ``compute(BLOCK)`` (after as many untimed)."""
    proc = toolchain.run([str(binary), str(int(rate)), str(BLOCK), str(int(blocks))], f"timing run of {binary.name}")
    words = proc.stdout.decode().split()
    if len(words) != 3:
        raise ToolchainError(f"timing run of {binary}: unexpected output {proc.stdout[:200]!r}")
    return int(words[2]) / (blocks * BLOCK)


def measure(binaries: dict[str, Path], rate: int) -> dict:
    """Time the programs ``{realisation: binary}`` in turns; returns ``{"blocks": per run, "runs": {realisation:
    [ns per sample] * ROUNDS}, "median": {realisation: ns per sample}}``. A first short run of each sizes the runs so
    that the timed part takes about :data:`TIMED_SECONDS` in all."""
    probe = 16
    slowest = max(time_blocks(binary, rate, probe) for binary in binaries.values())
    per_run = TIMED_SECONDS / (ROUNDS * len(binaries))
    blocks = max(probe, int(per_run / (slowest * 1e-9 * BLOCK)))
    runs: dict[str, list[float]] = {name: [] for name in binaries}
    for _ in range(ROUNDS):
        for name, binary in binaries.items():
            runs[name].append(time_blocks(binary, rate, blocks))
    return {"blocks": blocks, "runs": runs, "median": {name: statistics.median(r) for name, r in runs.items()}}


def choose_backend(dsp_code: str, ir: dict, controls: dict | None = None, *, faust_flags: tuple[str, ...] = (),
                   fractional_order: int = DEFAULT_ORDER, delay_limits: dict | None = None) -> dict:
    """Measure the model ``ir`` at its rate realised by FAUST (``dsp_code``'s ``process``, compiled with
    ``faust_flags`` as the plugin compiles it) and by the native kernel (with ``controls``, ``fractional_order``
    and ``delay_limits`` as the .dsp was emitted with); returns what ``backend.json`` records::

        {"backend": "faust" | "native", "reason": str, "fs": Hz, "block": 256, "rounds": 7, "blocks": per run,
         "ns_per_sample": {"faust": median, "native": median}, "runs": {...: [ns per sample] * 7},
         "cxx": compiler, "cxxflags": [...], "faust_flags": [...], "machine": adac.common.machine.machine()}

    When the kernel refuses the model, ``backend`` is ``faust``, ``reason`` says why and nothing is timed.
    """
    double = "-double" in faust_flags
    record = {"fs": int(ir["fs"]), "block": BLOCK, "cxx": toolchain.cxx(), "cxxflags": list(PLUGIN_CXXFLAGS),
              "faust_flags": list(faust_flags)}
    try:
        native = native_to_cpp(ir, controls, architecture=TIMING_ARCH, class_name=TIMED_CLASS, double=double,
                               faust_flags=faust_flags, fractional_order=fractional_order, delay_limits=delay_limits)
    except NativeUnsupported as exc:
        return {"backend": "faust", "reason": f"the native kernel cannot realise the model: {exc}", **record}
    faust = faust_to_cpp(dsp_code, architecture=TIMING_ARCH, class_name=TIMED_CLASS, extra_flags=tuple(faust_flags))
    timed = measure({"faust": timing_binary(faust), "native": timing_binary(native)}, ir["fs"])
    median = timed["median"]
    backend = "native" if median["native"] < median["faust"] else "faust"
    reason = (f"{backend} is faster: native {median['native']:.4g} ns/sample, FAUST {median['faust']:.4g} ns/sample "
              f"(ratio {median['native'] / median['faust']:.3f}; medians of {ROUNDS} runs in turns of "
              f"{timed['blocks']} blocks of {BLOCK} samples)")
    return {"backend": backend, "reason": reason, **record, "rounds": ROUNDS, "blocks": timed["blocks"],
            "ns_per_sample": median, "runs": timed["runs"], "machine": machine()}
