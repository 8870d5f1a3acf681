"""The numbers of a plugin's report page: responses against FLAMO, decay per octave band, the certificate's
bound per loop against frequency, the rt60 sweep, the magnitude response, the plugin's cost.

Every function takes the artefacts the build made (IR document, ``.dsp`` text, certificate) and returns
plain numbers and arrays; :mod:`adac.report.page` draws and writes them.
"""
from __future__ import annotations

import json
import math
import statistics
import time
from pathlib import Path

import numpy as np

from ..analysis.response import Realisation, response
from ..analysis.rt60 import decay_time
from ..backends.faust.render import render_impulse_responses
from ..certificate.stability import frequency_grid, loop_bound
from ..equivalence import verify
from ..frontend.flamo.reference import flamo_reference
from ..ir import iter_nodes
from ..ir.fractional import DEFAULT_ORDER
from ..ir.passes import fold_gains

VERIFY_SAMPLES = 8192


def responses(ir: dict, code: str, seconds: float) -> dict:
    """The shipped ``.dsp`` (controls at their defaults, float32) and FLAMO (float64), ``(n, out, in)`` each."""
    fs = ir["fs"]
    n = int(round(fs * seconds))
    compiled = render_impulse_responses(code, fs, n)
    reference, nfft = flamo_reference(ir, n, alias_tolerance=1e-9)
    peak = float(np.abs(reference).max())
    return {"fs": fs, "compiled": compiled, "reference": reference, "nfft": nfft, "peak": peak,
            "relative_error": float(np.abs(compiled - reference).max() / peak) if peak else 0.0}


def verify_table(ir: dict, codegen_options: dict) -> list[dict]:
    """``adac verify``'s table: float32 and -double renders against FLAMO, per path (max abs error / peak)."""
    report = verify(ir, n_samples=VERIFY_SAMPLES, **codegen_options)
    return [{"precision": p, **path} for p in ("float32", "double") for path in report[p].paths()]


def rt60_sweep(code: str, fs: int, targets) -> list[float]:
    """Measured broadband T30 (s) of ``code`` with its ``/adac/rt60`` slider at each target (s)."""
    measured = []
    for target in targets:
        y = render_impulse_responses(code, fs, int(fs * max(1.0, 3 * target)), params={"/adac/rt60": float(target)})
        measured.append(decay_time(y, fs))
    return measured


def loop_bounds(ir: dict, certificate: dict, fractional_order: int | None = None) -> list[dict]:
    """Each loop's small-gain bound against frequency, as the certificate evaluates it (its grid, its
    precision, its loop factor at the rt60 slider's maximum): ``{"path", "hz", "bound"}`` per loop."""
    real = Realisation(dtype=np.float32 if certificate["precision"] == "float32" else np.float64,
                       fractional_order=fractional_order or DEFAULT_ORDER, loop_gamma=certificate["loop_gamma"])
    ir = dict(ir, graph=fold_gains(ir["graph"]))
    grid = frequency_grid(ir, real)
    loops = []
    for node, _ in iter_nodes(ir["graph"]):
        if node["kind"] == "recursion":
            loops.append({"path": node.get("path", node["id"]), "hz": grid * ir["fs"] / (2 * math.pi),
                          "bound": loop_bound(node, grid, real)})
    return loops


def magnitude_response(ir: dict, fractional_order: int | None = None, points: int = 2048) -> dict:
    """The model's transfer matrix magnitude in dB, ``(points, out, in)``, on a log grid 20 Hz .. fs/2."""
    fs = ir["fs"]
    hz = np.geomspace(20.0, fs / 2, points)
    h = response(fold_gains(ir["graph"]), 2 * math.pi * hz / fs, Realisation(fractional_order=fractional_order or DEFAULT_ORDER))
    with np.errstate(divide="ignore"):
        return {"hz": hz, "db": 20 * np.log10(np.abs(h))}


# ------------------------------------------------------------------------------------------------ cost

def plugin_real_time_factor(listing: dict, fs: int, seconds: float = 10.0, repeats: int = 5,
                            block: int = 512) -> dict:
    """Real-time factor of one instance of the built plugin (VST3, else LV2) hosted by pedalboard: processing
    time / audio time for ``seconds`` of stereo noise in blocks of ``block`` (median of ``repeats``)."""
    try:
        import pedalboard  # the test extra; only the cost measurement needs it
    except ImportError:
        return {"error": "pedalboard is not installed (pip install pedalboard==0.9.26): the cost was not measured"}
    bundles = listing.get("bundles", {})
    fmt = next((f for f in ("VST3", "LV2") if f in bundles), None)
    if fmt is None:
        return {"error": "no VST3 or LV2 bundle was built: the cost was not measured"}
    plugin = pedalboard.load_plugin(str(bundles[fmt]["path"]))
    noise = np.random.default_rng(1).uniform(-0.5, 0.5, (2, int(fs * seconds))).astype(np.float32)
    plugin(noise[:, :block * 8], fs, buffer_size=block)  # warm up
    timings = []
    for _ in range(repeats):
        plugin.reset()
        start = time.perf_counter()
        plugin(noise, fs, buffer_size=block)
        timings.append(time.perf_counter() - start)
    rtf = statistics.median(timings) / seconds
    return {"format": fmt, "block": block, "seconds": seconds, "repeats": repeats, "real_time_factor": rtf,
            "instances_per_core": 1 / rtf if rtf > 0 else None}


def step_times(folder: Path) -> dict[str, float]:
    """Wall-clock seconds of each build step, as ``adac`` recorded them beside the artefacts (``.times/``)."""
    times = {}
    for path in sorted((Path(folder) / ".times").glob("*.json")):
        try:
            times[path.stem] = float(json.loads(path.read_text())["seconds"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a record being rewritten by a step running now: left out
    return times
