"""Publish-to-new-audio latency of the hot-reload host, for FDNs of 4, 16 and 64 delay lines.

    python bench/hotreload_latency.py [--reloads 20] [--lines 4 16 64] [--source adac|handwritten]

The command-line host processes 256-sample blocks at real-time pace (48 kHz) while the benchmark
publishes a changed model; latency = the start of the first block that plays the new model
(host, CLOCK_MONOTONIC) minus the moment before the publisher wrote the file (same clock).
Three kinds of change, each for libfaust's interpreter and LLVM backends:

  update   only coefficients change (a training step): no compile, the new constants are
           written into the running DSP (the host's constant-lifting fast path)
  compile  the structure changes: the lifted code is compiled and crossfaded. The first delay line
           alternates between a length of 8-14 samples (shorter than 16: a constant of the code) and
           its own length (a lifted delay length): each publish has a new skeleton. (A length that
           stays within the compiled capacity is an update, as in bench/hotreload_e2e.py.)
  plain    the same changes, host run with --no-lift: the plain code is compiled (the
           cost without the fast path's hidden controls)

Also reported: the compile time the host measured, the render cost (ns per sample of the running
DSP, no crossfade) and both as ratios to the interpreter in the same run, and what the Python side
costs per publish (emit = adac.flamo_to_faust, write = temp file + rename).
Writes bench/results/hotreload.json.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from adac.common.machine import machine  # noqa: E402
from adac.hotreload import CommandLineHost, HotReload, build_host  # noqa: E402

FS = 48000
BLOCK = 256


# --- FAUST code for an N-line FDN ------------------------------------------------------------


def _primes(n: int, lo: int = 401, hi: int = 1999) -> list[int]:
    primes = [p for p in range(lo, hi) if all(p % q for q in range(2, int(p ** 0.5) + 1))]
    step = len(primes) / n
    return [primes[int(i * step)] for i in range(n)]


def structural_length(base: int, i: int) -> int:
    """The first line's length in the i-th structural version: a constant of the code and a lifted length in turn."""
    return base + i if i % 2 else 8 + (i // 2) % 7


def handwritten_fdn(n: int, gain_shift: float = 0.0, structural: int | None = None) -> str:
    """A hand-written N-line FDN: input gains, prime delays, Householder matrix, per-line T60 gains, output gains;
    ``structural``: the i-th structural version (:func:`structural_length`)."""
    delays = _primes(n)
    if structural is not None:
        delays[0] = structural_length(delays[0], structural)
    gains = [10 ** (-3 * d / (FS * 1.5)) * (1 - gain_shift) for d in delays]
    b = [round(0.5 + 0.5 * ((7 * i) % n) / n, 6) for i in range(n)]
    c = [round(1 - 0.4 * ((5 * i) % n) / n, 6) for i in range(n)]
    par = lambda items: "(" + ", ".join(items) + ")"  # noqa: E731
    return "\n".join([
        'import("stdfaust.lib");',
        f"householder = si.bus({n}) <: si.bus({n}), (si.bus({n}) :> *({-2 / n!r}) <: si.bus({n})) : ro.interleave({n}, 2) : par(i, {n}, +);",
        f"loss = {par(f'*({g!r})' for g in gains)};",
        f"lines = {par(f'@({d - 1})' for d in delays)};",
        f"ins = _ <: {par(f'*({x!r})' for x in b)};",
        f"outs = {par(f'*({x!r})' for x in c)} :> _;",
        f"process = ins : ((ro.interleave({n}, 2) : par(i, {n}, +) : lines) ~ (householder : loss)) : outs;",
        "",
    ])


def adac_fdn_codes(n: int, count: int) -> tuple[list[str], list[str], float]:
    """adac.flamo_to_faust of a FLAMO FDN: `count` coefficient-only versions, `count` delay-changed versions."""
    import torch

    import adac
    from flamo_models import coprime_delays, fdn, set_delays_samples

    model = fdn(n, t60=1.0, matrix="householder", attenuation="biquad", direct=True, n_in=1, n_out=1)
    gains = [m for m in model.modules() if type(m).__name__ == "parallelGain"] or \
            [m for m in model.modules() if type(m).__name__ == "Gain"]
    delay = next(m for m in model.modules() if "Delay" in type(m).__name__)
    base_gain = gains[0].param.detach().clone()
    base_delays = coprime_delays(n)
    updates, structural, emit_s = [], [], []
    for i in range(count):
        with torch.no_grad():
            gains[0].param.copy_(base_gain * (1 - 0.001 * i))
        start = time.perf_counter()
        updates.append(adac.flamo_to_faust(model, FS, name=f"fdn{n}"))
        emit_s.append(time.perf_counter() - start)
    with torch.no_grad():
        gains[0].param.copy_(base_gain)
    for i in range(count):
        samples = list(base_delays)
        samples[0] = structural_length(samples[0], i)  # a new skeleton every time
        set_delays_samples(delay, samples)
        structural.append(adac.flamo_to_faust(model, FS, name=f"fdn{n}"))
    return updates, structural, 1000 * statistics.median(emit_s)


# --- measurement -----------------------------------------------------------------------------


def measure(cli: Path, versions: list[str], backend: str, kind: str) -> dict:
    """Publish versions[1:] one by one while the host plays in real time; latency of each."""
    with tempfile.TemporaryDirectory() as tmp:
        live = HotReload(FS, path=Path(tmp) / "live.dsp", min_interval_s=0, emit=lambda code: code)
        live.publish(versions[0])
        host = CommandLineHost(live.path, FS, "--block", BLOCK, "--backend", backend, *(["--no-lift"] if kind == "plain" else []),
                               binary=cli)
        assert host.ask("wait 1 120000") == "ok", host.status()
        latencies, work_ms, write_ms = [], [], []
        counter = "updates" if kind == "update" else "compiles"
        for code in versions[1:]:
            before = int(host.status()["activations"])
            done = int(host.status()[counter])
            host.send("realtime 60")
            time.sleep(0.01)
            published = time.monotonic_ns() // 1000
            assert live.publish(code)
            write_ms.append((time.monotonic_ns() // 1000 - published) / 1000)
            assert host.read() == "ok"
            while int(host.status()["activations"]) <= before:  # keep playing until the new model sounds
                assert host.ask("realtime 20") == "ok"
            status = host.status()
            assert int(status[counter]) == done + 1, (kind, status)  # it took the path under test
            latencies.append((int(host.ask("activation").split()[1]) - published) / 1000)
            work_ms.append(float(status["ms"]))
        seconds = 4
        start = time.perf_counter()
        host.ask(f"run {seconds * FS}")
        render_ns = (time.perf_counter() - start) * 1e9 / (seconds * FS)
        host.close()
    return {"median_ms": statistics.median(latencies), "worst_ms": max(latencies),
            "work_ms": statistics.median(work_ms), "write_ms": statistics.median(write_ms),
            "render_ns_per_sample": render_ns, "reloads": len(latencies)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=20)
    parser.add_argument("--lines", type=int, nargs="+", default=[4, 16, 64])
    parser.add_argument("--backends", nargs="+", default=["interpreter", "llvm"])
    parser.add_argument("--kinds", nargs="+", default=["update", "compile", "plain"])
    parser.add_argument("--source", choices=["adac", "handwritten"], default="adac")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hotreload.json")
    args = parser.parse_args(argv)
    cli = build_host(targets=("cli",))["cli"]
    rows = []
    print(f"{'lines':>5} {'backend':11} {'change':8} {'median':>9} {'worst':>9} {'host work':>10} {'render':>12}  "
          f"{'compile/interp':>14} {'render/interp':>13}", flush=True)
    for n in args.lines:
        count = args.reloads + 1
        if args.source == "adac":
            updates, structural, emit_ms = adac_fdn_codes(n, count)
        else:
            updates = [handwritten_fdn(n, gain_shift=0.001 * i) for i in range(count)]
            structural = [handwritten_fdn(n, structural=i) for i in range(count)]
            emit_ms = None
        for kind in args.kinds:
            for backend in args.backends:
                versions = updates if kind == "update" else structural
                row = {"lines": n, "backend": backend, "change": kind, "source": args.source,
                       "emit_ms": emit_ms, "code_chars": len(versions[0]), **measure(cli, versions, backend, kind)}
                ref = next((r for r in rows if r["lines"] == n and r["change"] == kind and r["backend"] == "interpreter"), None)
                if ref and backend != "interpreter":
                    row["work_vs_interpreter"] = row["work_ms"] / max(ref["work_ms"], 1e-9)
                    row["render_vs_interpreter"] = row["render_ns_per_sample"] / ref["render_ns_per_sample"]
                rows.append(row)
                ratio = (f"{row['work_vs_interpreter']:13.2f}x {row['render_vs_interpreter']:12.3f}x"
                         if "work_vs_interpreter" in row else "")
                print(f"{n:5d} {backend:11} {kind:8} {row['median_ms']:7.1f}ms {row['worst_ms']:7.1f}ms "
                      f"{row['work_ms']:8.2f}ms {row['render_ns_per_sample']:8.1f}ns/smp {ratio}", flush=True)
        if emit_ms is not None:
            print(f"{n:5d} python side: adac.flamo_to_faust {emit_ms:.1f} ms per emit, "
                  f"publish (write + rename) {statistics.median(r['write_ms'] for r in rows if r['lines'] == n):.2f} ms",
                  flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": machine(),
                "fs": FS, "block": BLOCK, "rows": rows}
    args.out.write_text(json.dumps(document, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
