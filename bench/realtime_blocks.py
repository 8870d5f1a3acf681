"""Worst-case processing time per block on the audio thread, as a ratio to a steady block of the same run.

    python3 -m bench.realtime_blocks [--seconds 4] [--repeats 3]

The JUCE test host of the real-time test (``hosts/rtcheck``, here without the interposer: plain timing)
loads a VST3 and times every ``processBlock`` call (steady clock, 256-sample blocks at 48 kHz, stereo noise,
at real-time pace, as a host's audio callback comes):

  steady           the baseline: its median block is the denominator of every ratio
  automate         every parameter set every block from the audio thread
  automate-thread  every parameter set continuously from another thread
  rate             prepareToPlay again at 96 kHz, then blocks at the new rate
  coefficients     (hot-reload plugin) a coefficient-only publish: the constant update taking effect
  structure        (hot-reload plugin) a structural publish: the crossfade between two DSPs

for the example plugin (``scons plugins/AdacFDN``) and the hot-reload plugin playing the 16-line hand-written
FDN of bench/hotreload_latency.py (its coefficient change: every loop gain 1 % lower; its structural change:
the first delay one sample longer).
The hot-reload plugin runs with ADAC_HOTRELOAD_BACKEND=llvm (every DSP compiled by LLVM: the default tiered
mode would play libfaust's interpreter build first, and a short run would time the interpreter); its
"automate" scenario automates its audition choice too (live / pinned / bypass), as a host would.
The first 0.1 s of each run is left out (first touch of buffers and caches).
For each: the median block, the 99th percentile and the worst block (for a reload: of the blocks after the
publish), each as a ratio to the steady median; the worst is reported both as the maximum over the repeats
and as the median of each run's maximum (less sensitive to preemption by other load on the machine).
Machine and load are printed. Writes bench/results/realtime.json.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from adac.common.machine import machine  # noqa: E402
from adac.hotreload import HotReload, build_host  # noqa: E402
from bench.hotreload_latency import handwritten_fdn  # noqa: E402
from conftest import build_example  # noqa: E402
from test_realtime import BLOCK, FS, JUCE_BUILD, build_rtcheck, example_vst3_and_code  # noqa: E402

RESULTS = ROOT / "bench" / "results"


SCENARIOS = ("steady", "automate", "automate-thread", "rate")
RELOADS = {"coefficients": "updates", "structure": "compiles"}
WARM_UP = int(0.1 * FS / BLOCK)  # blocks left out at the start of a run: first-touch of buffers, caches


def timed(host: Path, plugin: Path, scenario: str, seconds: float, *args: str, env: dict | None = None) -> dict:
    """One run of the test host with --timings: its result (``block_us``: microseconds per block)."""
    proc = subprocess.run([str(host), str(plugin), scenario, "--rate", str(FS), "--block", str(BLOCK), "--seconds",
                           str(seconds), "--timings", "--paced", *args], env={**os.environ, **(env or {})}, capture_output=True,
                          text=True, timeout=600)
    if proc.returncode != 0:
        raise RuntimeError(f"{plugin.name} {scenario}: {proc.stdout[-500:]} {proc.stderr[-500:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summary(runs: list[list[float]], baseline: float) -> dict:
    """Median, 99th percentile and worst block of the runs, in microseconds and as ratios to ``baseline``."""
    every = np.concatenate([np.asarray(r) for r in runs])
    worst = max(max(r) for r in runs)
    typical_worst = statistics.median(max(r) for r in runs)
    return {"blocks": int(every.size), "median_us": float(np.median(every)), "p99_us": float(np.percentile(every, 99)),
            "worst_us": float(worst), "median_of_run_worst_us": float(typical_worst),
            "median_ratio": float(np.median(every)) / baseline, "p99_ratio": float(np.percentile(every, 99)) / baseline,
            "worst_ratio": worst / baseline, "median_of_run_worst_ratio": typical_worst / baseline}


def measure(host: Path, plugin: Path, seconds: float, repeats: int, reload_code: dict[str, str] | None, work: Path) -> dict:
    """Every scenario of one plugin; ``reload_code`` (hot-reload plugin): the initial code and its variants."""
    runs: dict[str, list[list[float]]] = {}
    env = None
    for repeat in range(repeats):  # interleaved, so load on the machine hits every scenario alike
        if reload_code is not None:
            live = HotReload(FS, path=work / f"live{repeat}.dsp", min_interval_s=0, emit=lambda code: code)
            live.publish(reload_code["initial"])
            env = {"ADAC_HOTRELOAD_PATH": str(live.path), "ADAC_HOTRELOAD_BACKEND": "llvm"}
        for scenario in SCENARIOS:
            runs.setdefault(scenario, []).append(timed(host, plugin, scenario, seconds, env=env)["block_us"][WARM_UP:])
        if reload_code is None:
            continue
        for change, counter in RELOADS.items():
            published = work / f"{change}.dsp"
            published.write_text(reload_code[change])
            result = timed(host, plugin, "reload", seconds, "--publish", str(published), "--expect", counter, env=env)
            runs.setdefault(change, []).append(result["block_us"][result["publish_block"]:])
    baseline = float(np.median(np.concatenate([np.asarray(r) for r in runs["steady"]])))
    return {"steady_median_us": baseline, "scenarios": {name: summary(r, baseline) for name, r in runs.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="audio per run (default 4)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per scenario (default 3)")
    args = parser.parse_args()
    if args.seconds <= 0 or args.repeats < 1:
        parser.error("--seconds must be positive and --repeats at least 1")

    rt = build_rtcheck()
    example_vst3 = example_vst3_and_code(build_example())[0]
    hotreload_vst3 = build_host(targets=("plugin",), juce_build=JUCE_BUILD)["vst3"]
    fdn = {"initial": handwritten_fdn(16), "coefficients": handwritten_fdn(16, gain_shift=0.01),
           "structure": handwritten_fdn(16, delay_shift=1)}
    results = {"machine": machine(), "time": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "fs": FS, "block": BLOCK,
               "seconds": args.seconds, "repeats": args.repeats, "plugins": {}}
    m = results["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load average {m['load_average'][0]:.2f} at start")
    print(f"blocks of {BLOCK} at {FS} Hz ({1e6 * BLOCK / FS:.0f} us of audio each); ratios to the steady median block")
    with tempfile.TemporaryDirectory(prefix="adac-bench-rt-") as tmp:
        plugins = {"AdacFDN (template)": (example_vst3, None),
                   "AdacHotReload (16-line FDN)": (hotreload_vst3, fdn)}
        for name, (plugin, reload_code) in plugins.items():
            try:
                measured = measure(rt.host, plugin, args.seconds, args.repeats, reload_code, Path(tmp))
            except RuntimeError as exc:  # e.g. the plugin could not load the code: the other plugin is still measured
                results["plugins"][name] = {"status": f"not measured: {exc}"}
                print(f"\n{name}: not measured: {exc}")
                continue
            results["plugins"][name] = measured
            print(f"\n{name}: steady median block {measured['steady_median_us']:.1f} us")
            print(f"  {'scenario':16s} {'median':>8s} {'p99':>8s} {'worst':>8s} {'worst (median of runs)':>24s}")
            for scenario, s in measured["scenarios"].items():
                print(f"  {scenario:16s} {s['median_ratio']:8.2f} {s['p99_ratio']:8.2f} {s['worst_ratio']:8.2f} "
                      f"{s['median_of_run_worst_ratio']:24.2f}")
    results["load_average_at_end"] = os.getloadavg()
    print(f"\nload average at end: {results['load_average_at_end'][0]:.2f}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "realtime.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
