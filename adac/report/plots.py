"""Plots of a compiled model: impulse response, energy decay (compiled vs FLAMO), rt60 slider sweep.

    python3 -m adac.report.plots --ir build/AdacFDN/AdacFDN.json --out docs/img/rt60.png

The sweep renders the compiled ``.dsp`` (FAUST, float32) with ``/adac/rt60`` set to
each value and measures its broadband T30 (:func:`adac.report.measure.rt60_sweep`); the table of
slider vs measured values is printed too. The report page (:mod:`adac.report.page`) shows the same and more.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..analysis.controls import normalise_controls  # noqa: E402
from ..analysis.rt60 import energy_decay_curve  # noqa: E402
from ..backends.faust import json_to_faust  # noqa: E402
from ..backends.faust.render import render_impulse_responses  # noqa: E402
from ..common.errors import exit_code_for_user_errors  # noqa: E402
from ..common.fileio import write_bytes_atomic  # noqa: E402
from ..frontend.flamo.reference import flamo_reference  # noqa: E402
from ..ir import load_ir  # noqa: E402
from .measure import rt60_sweep  # noqa: E402


def plot(ir_path: Path, out: Path, seconds: float | None = None, sweep=(0.5, 0.75, 1.0, 1.5, 2.0)) -> Path:
    ir = load_ir(ir_path)
    fs = ir["fs"]
    trained = normalise_controls({"rt60": True}, ir)["rt60"]["default"]
    n = int(fs * (seconds or max(1.0, 1.5 * trained)))
    compiled = render_impulse_responses(json_to_faust(ir), fs, n)
    reference, _ = flamo_reference(ir, n, 1 << int(np.ceil(np.log2(4 * n))), alias_tolerance=1e-9)
    code = json_to_faust(ir, {"rt60": {"min": min(sweep) * trained * 0.9, "max": max(sweep) * trained * 1.1}})
    targets = [round(factor * trained, 3) for factor in sweep]
    measured = rt60_sweep(code, fs, targets)
    for target, value in zip(targets, measured):
        print(f"rt60 slider {target:.3f} s: measured T30 {value:.4f} s ({100 * (value / target - 1):+.2f} %)")

    t = np.arange(n) / fs
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    axes[0].plot(t, compiled[:, 0, 0], lw=0.5, label="compiled (FAUST, float32)")
    axes[0].set(title=f"{ir['name']}: impulse response (out 1, in 1)", xlabel="time (s)", ylabel="amplitude")
    axes[0].legend(loc="upper right")
    axes[1].plot(t, energy_decay_curve(reference), label="FLAMO (float64)", lw=2.5, alpha=0.6)
    axes[1].plot(t, energy_decay_curve(compiled), "--", label="compiled (FAUST)", lw=1.2)
    axes[1].set(title="energy decay curve (Schroeder)", xlabel="time (s)", ylabel="dB", ylim=(-90, 3))
    axes[1].legend()
    axes[2].plot(targets, targets, ":", color="grey", label="slider = measured")
    axes[2].plot(targets, measured, "o-", label="measured T30 of the compiled DSP")
    axes[2].axvline(trained, color="k", lw=0.6, ls="--", label=f"trained T60 {trained:.3f} s (default)")
    axes[2].set(title="rt60 slider sweep", xlabel="rt60 slider (s)", ylabel="measured (s)")
    axes[2].legend()
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    write_bytes_atomic(out, tmp.read_bytes())
    tmp.unlink()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m adac.report.plots", description=__doc__.splitlines()[0])
    parser.add_argument("ir_path", nargs="?", type=Path, help="IR .json (e.g. build/<Name>/<Name>.json)")
    parser.add_argument("--ir", type=Path, help="the same, as an option")
    parser.add_argument("--out", type=Path, required=True, help="PNG file to write")
    parser.add_argument("--seconds", type=float, help="length of the impulse response panel (default 1.5 x T0)")
    args = parser.parse_args(argv)
    ir = args.ir or args.ir_path
    if ir is None:
        parser.error("give the IR: --ir path.json")
    return exit_code_for_user_errors(lambda: print(plot(ir, args.out, args.seconds)))


if __name__ == "__main__":
    sys.exit(main())
