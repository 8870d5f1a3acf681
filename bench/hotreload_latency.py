"""Publish-to-new-audio latency of the hot-reload host, for FDNs of 4, 16 and 64 lines.

    python3 -m bench.hotreload_latency [--reloads 20]

The command-line host processes 256-sample blocks at real-time pace while the
benchmark publishes a changed model; latency = the moment the new DSP's first
block starts (host, CLOCK_MONOTONIC) minus the moment the file was renamed into
place (here, same clock). Reported per backend (LLVM, interpreter), with the
compile time and the render cost each backend buys, as ratios to the interpreter.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import adac  # noqa: E402
from adac.hotreload import HotReload, build_host  # noqa: E402
from flamo_models import fdn  # noqa: E402

FS = 48000


def codes(n_lines: int, count: int) -> list[str]:
    model = fdn(n_lines, t60=1.0, matrix="householder", attenuation="biquad", direct=True, n_in=1, n_out=1)
    ir = adac.flamo_to_json(model, FS)
    out = []
    for i in range(count):
        ir["graph"]["children"][1]["matrix"][0][0] = 0.5 + 0.001 * i  # the dry gain: a real, small change
        out.append(adac.json_to_faust(ir))
    return out


def measure(cli: Path, n_lines: int, backend: str, reloads: int) -> dict:
    versions = codes(n_lines, reloads + 1)
    with tempfile.TemporaryDirectory() as tmp:
        live = HotReload(FS, path=Path(tmp) / "live.dsp", min_interval_s=0, emit=lambda c: c)
        live.publish(versions[0])
        host = subprocess.Popen([str(cli), str(live.path), str(FS), "--backend", backend], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)

        def ask(line):
            host.stdin.write(line + "\n")
            host.stdin.flush()
            return host.stdout.readline().split()

        assert ask("wait 1 60000") == ["ok"]
        latencies, compiles = [], []
        for expected, code in enumerate(versions[1:], start=2):
            host.stdin.write("realtime 100\n")
            host.stdin.flush()
            time.sleep(0.02)
            published = time.monotonic_ns() // 1000
            live.publish(code)
            assert host.stdout.readline().split() == ["ok"]
            # keep playing in real time until the new DSP has started (activations count it)
            while int(ask("status")[2]) < expected:
                assert ask("realtime 20") == ["ok"]
            activated = int(ask("activation")[1])
            latencies.append((activated - published) / 1000)
            compiles.append(float(ask("status")[4]))
        # render cost: ns per sample of processing 10 s of audio with the final DSP (no crossfade)
        start = time.perf_counter()
        ask(f"run {10 * FS}")
        render_ns = (time.perf_counter() - start) * 1e9 / (10 * FS)
        host.stdin.write("quit\n")
        host.stdin.flush()
        host.wait()
    return {"lines": n_lines, "backend": backend, "median_ms": statistics.median(latencies), "worst_ms": max(latencies),
            "compile_ms_median": statistics.median(compiles), "render_ns_per_sample": render_ns, "reloads": len(latencies)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m bench.hotreload_latency", description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=20)
    args = parser.parse_args(argv)
    cli = build_host(plugin=False)["cli"]
    rows = []
    for n in (4, 16, 64):
        for backend in ("llvm", "interpreter"):
            row = measure(cli, n, backend, args.reloads)
            rows.append(row)
            print(f"N={n:3d} {backend:11s} latency median {row['median_ms']:7.1f} ms  worst {row['worst_ms']:7.1f} ms  "
                  f"compile {row['compile_ms_median']:7.1f} ms  render {row['render_ns_per_sample']:8.1f} ns/sample", flush=True)
    for n in (4, 16, 64):
        llvm = next(r for r in rows if r["lines"] == n and r["backend"] == "llvm")
        interp = next(r for r in rows if r["lines"] == n and r["backend"] == "interpreter")
        print(f"N={n:3d} llvm / interpreter: compile {llvm['compile_ms_median'] / interp['compile_ms_median']:.2f}x, "
              f"render {llvm['render_ns_per_sample'] / interp['render_ns_per_sample']:.2f}x")
    out = ROOT / "bench" / "results" / "hotreload.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
