"""The example plugin at every host rate: the table docs/sample_rate.md quotes.

    python3 -m bench.sample_rates        (after `scons plugins/AdacFDN` and `pytest tests/test_sample_rate.py`,
                                          which build the relowered and the resampling VST3)

For 44.1, 88.2 and 96 kHz, three realisations of the shipped model (trained at 48 kHz) against FLAMO's
response at 48 kHz resampled to the host rate (adac.analysis.octaves.at_rate), each as a ratio to that
baseline measured in the same run:

* ``as compiled``: the model's code at the host's rate (delays in samples, filters for 48 kHz), rendered by
  FAUST: what the plugin did before it followed the host's rate;
* ``relowered``: the VST3 built with ``sample_rate.mode: relowered``, in pedalboard;
* ``resample``: the VST3 built with ``sample_rate.mode: resample``, in pedalboard (latency compensated).

Columns: T30 error per octave (125 Hz .. 8 kHz, %), energy error per octave (dB), spectral centroid of the
first 0.5 s (%), sample-level error below 0.9 x the lower Nyquist (x peak), latency (samples). Writes
bench/results/sample_rates.json.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from adac.analysis.octaves import OCTAVES, at_rate, band_limited, compare  # noqa: E402
from adac.backends.faust import json_to_faust  # noqa: E402
from adac.backends.faust.render import render_impulse_responses  # noqa: E402
from adac.build.manifest import load_manifest  # noqa: E402
from adac.frontend.flamo.reference import flamo_reference  # noqa: E402
from adac.ir import load_ir  # noqa: E402
from test_sample_rate import RESAMPLED, WORK, impulse_responses, offsets  # noqa: E402

RATES = (44100, 88200, 96000)
SECONDS = 3


def _bundle(listing: Path):
    import pedalboard

    if not listing.is_file():
        return None
    return pedalboard.load_plugin(json.loads(listing.read_text())["bundles"]["VST3"]["path"])


def _sample_error(render, reference, fs0, fs):
    """Max |rendered - expected| below 0.9 x the lower Nyquist over the first half, x peak (impulse a little in)."""
    host_offset, model_offset = offsets(fs0, fs)
    expected = at_rate(np.pad(reference, ((model_offset, 0), (0, 0), (0, 0))), fs0, fs)
    rendered = render(expected.shape[0], host_offset)
    edge = 0.9 * min(fs, fs0) / 2
    kept = slice(0, expected.shape[0] // 2)
    return float(np.abs(band_limited(rendered, fs, edge) - band_limited(expected, fs, edge))[kept].max()
                 / np.abs(expected).max())


def main() -> int:
    manifest = load_manifest(ROOT / "plugins" / "AdacFDN" / "plugin.yaml")
    ir = load_ir(ROOT / "build" / "AdacFDN" / "AdacFDN.json")
    fs0, n_in = ir["fs"], ir["input_channels"]
    reference, _ = flamo_reference(ir, fs0 * SECONDS, 1 << 19)
    code = json_to_faust(ir, manifest.controls or None, **manifest.codegen_options)
    plugins = {"relowered": _bundle(ROOT / "build" / "AdacFDN" / "AdacFDN.bundles.json"),
               "resample": _bundle(WORK / RESAMPLED / "out" / f"{RESAMPLED}.bundles.json")}
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}; "
          f"model {ir['name']!r} at {fs0} Hz; baseline: FLAMO at {fs0} Hz resampled to the host rate")
    rows = []
    for fs in RATES:
        expected = at_rate(reference, fs0, fs)
        n = expected.shape[0]
        compiled = render_impulse_responses(code, fs, n)  # (n, out, in)
        cases = {"as compiled": (compiled, None, 0)}
        for mode, plugin in plugins.items():
            if plugin is None:
                print(f"  ({mode}: no VST3 built; run scons plugins/AdacFDN and pytest tests/test_sample_rate.py)")
                continue
            rendered = impulse_responses(plugin, n_in, n, fs)
            sample = _sample_error(lambda m, off: impulse_responses(plugin, n_in, m, fs, off), reference, fs0, fs) \
                if mode == "resample" else None
            cases[mode] = (rendered, sample, plugin.reported_latency_samples)
        for mode, (rendered, sample, latency) in cases.items():
            c = compare(expected, rendered, fs)
            rows.append({"fs": fs, "mode": mode, "t30": c["t30"], "energy_db": c["energy_db"], "centroid": c["centroid"],
                         "sample_error": sample, "latency": latency})
    head = " | ".join(f"T30 {c}" for c in OCTAVES) + " | " + " | ".join(f"dB {c}" for c in OCTAVES)
    print(f"\n| rate | realisation | {head} | centroid | sample error | latency |")
    print("|" + "---|" * (5 + 2 * len(OCTAVES)))
    for r in rows:
        t30 = " | ".join(f"{100 * r['t30'][c]:+.1f} %" for c in OCTAVES)
        energy = " | ".join(f"{r['energy_db'][c]:+.2f}" for c in OCTAVES)
        sample = "—" if r["sample_error"] is None else f"{r['sample_error']:.1e}"
        print(f"| {r['fs']} | {r['mode']} | {t30} | {energy} | {100 * r['centroid']:+.1f} % | {sample} | {r['latency']} |")
    out = ROOT / "bench" / "results" / "sample_rates.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=1, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
