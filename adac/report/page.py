"""A plugin's report page: ``build/<Name>/report/index.html``, static and self-contained (no network).

    adac report MANIFEST IR.json X.dsp X.cert.json OUT/index.html [--bundles X.bundles.json]

(the SCons target ``plugins/<Name>/report`` runs it). The folder holds ``index.html``, the figures
(``img/*.png``, drawn once here with matplotlib), ``report.json`` (the numbers), the dry test sounds
(``sounds/*.wav``), ``audition.js`` (the panel, :file:`adac/report/audition.js`) and ``audition-data.js``
(the ``.dsp`` compiled by ``faust -lang wasm``, its controls and the sounds, base64). It opens from disk
(``file://``) or any local server: scripts are plain ``<script src>``, the WebAssembly and the sounds are
inlined, the AudioWorklet's code comes from a Blob.
"""
from __future__ import annotations

import base64
import html
import io
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..analysis.octaves import OCTAVES, octave_t30  # noqa: E402
from ..analysis.rt60 import energy_decay_curve  # noqa: E402
from ..common import toolchain  # noqa: E402
from ..common.errors import AdacError  # noqa: E402
from ..common.fileio import read_json, read_text, write_bytes_atomic  # noqa: E402
from ..common.machine import machine  # noqa: E402
from ..common.resources import data_dir  # noqa: E402
from ..ir import load_ir  # noqa: E402
from . import measure  # noqa: E402

STATIC = Path(__file__).resolve().parent  # audition.js, report.css
SWEEP_POINTS = 5


# ------------------------------------------------------------------------------------------- audition

def compile_wasm(dsp_path: Path) -> tuple[bytes, dict, float]:
    """``faust -lang wasm`` of the ``.dsp``: the module's bytes, FAUST's JSON description (size, inputs,
    outputs, ui) and the compile time in seconds."""
    with tempfile.TemporaryDirectory(prefix="adac-wasm-") as tmp:
        out = Path(tmp) / "dsp.wasm"
        start = time.perf_counter()
        toolchain.run([toolchain.faust(), "-lang", "wasm", "-I", str(data_dir("faust")), str(dsp_path), "-o", str(out)],
                      "faust -lang wasm")
        seconds = time.perf_counter() - start
        wasm = out.read_bytes()
        glue = (Path(tmp) / "dsp.js").read_text()
    start, end = glue.index("return '") + len("return '"), glue.rindex("';")
    return wasm, json.loads(glue[start:end]), seconds


def ui_controls(description: dict) -> list[dict]:
    """The sliders of FAUST's JSON ``ui`` tree: name, address, memory index, init, range, step, unit."""
    found = []

    def walk(items):
        for item in items:
            if "items" in item:
                walk(item["items"])
            elif item.get("type") in ("hslider", "vslider", "nentry"):
                unit = next((m["unit"] for m in item.get("meta", []) if "unit" in m), "")
                found.append({"name": item["label"], "address": item["address"], "index": int(item["index"]),
                              "init": item["init"], "min": item["min"], "max": item["max"], "step": item["step"],
                              "unit": unit})

    walk(description.get("ui", []))
    return found


def dry_sounds(fs: int) -> list[dict]:
    """The dry test sounds, generated (seeded): an impulse, a click train, a drum pattern. Mono float arrays."""
    rng = np.random.default_rng(7)
    impulse = np.zeros(int(0.05 * fs))
    impulse[0] = 0.9
    clicks = np.zeros(int(2.0 * fs))
    clicks[(np.arange(8) * 0.25 * fs).astype(int)] = 0.8
    t = np.arange(int(0.4 * fs)) / fs
    kick = np.sin(2 * np.pi * (45 * t + 60 * (1 - np.exp(-t / 0.03)) * 0.03)) * np.exp(-t / 0.12)
    snare = (0.6 * rng.standard_normal(len(t)) * np.exp(-t / 0.06)
             + 0.4 * np.sin(2 * np.pi * 185 * t) * np.exp(-t / 0.05))
    hat = rng.standard_normal(len(t)) * np.exp(-t / 0.01)
    hat = np.diff(hat, prepend=0.0)  # brighter
    beat = int(0.25 * fs)
    drums = np.zeros(8 * beat + len(t))
    for step in range(8):
        hit = kick if step % 4 == 0 else snare if step % 4 == 2 else 0.4 * hat
        drums[step * beat:step * beat + len(t)] += hit
    drums *= 0.8 / np.abs(drums).max()
    return [{"name": "impulse", "label": "impulse", "signal": impulse},
            {"name": "clicks", "label": "click train", "signal": clicks},
            {"name": "drums", "label": "drum loop (synthesised)", "signal": drums}]


def _pcm16(x: np.ndarray) -> str:
    return base64.b64encode(np.round(np.clip(x, -1, 32767 / 32768) * 32768).astype("<i2").tobytes()).decode()


# -------------------------------------------------------------------------------------------- figures

def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _path_grid(n_out: int, n_in: int, width: float = 5.2, height: float = 2.8):
    fig, axes = plt.subplots(n_out, n_in, figsize=(width * n_in, height * n_out), squeeze=False, sharex=True)
    return fig, axes


def fig_responses(res: dict) -> tuple[bytes, bytes]:
    """Impulse responses and energy decay curves per path, compiled against FLAMO."""
    compiled, reference, fs = res["compiled"], res["reference"], res["fs"]
    t = np.arange(compiled.shape[0]) / fs
    n_out, n_in = compiled.shape[1:]
    fig, axes = _path_grid(n_out, n_in)
    for o in range(n_out):
        for i in range(n_in):
            ax = axes[o][i]
            ax.plot(t, reference[:, o, i], lw=1.6, alpha=0.5, label="FLAMO (float64)", rasterized=True)
            ax.plot(t, compiled[:, o, i], lw=0.4, label="compiled (FAUST, float32)", rasterized=True)
            ax.set(title=f"out {o + 1} <- in {i + 1}", xlim=(0, min(t[-1], 0.25)))
    axes[0][0].legend(loc="upper right", fontsize=8)
    axes[-1][0].set(xlabel="time (s)")
    fig.tight_layout()
    ir_png = _png(fig)
    fig, axes = _path_grid(n_out, n_in)
    for o in range(n_out):
        for i in range(n_in):
            ax = axes[o][i]
            ax.plot(t, energy_decay_curve(reference[:, o, i]), lw=2.5, alpha=0.5, label="FLAMO")
            ax.plot(t, energy_decay_curve(compiled[:, o, i]), "--", lw=1.0, label="compiled")
            ax.set(title=f"EDC out {o + 1} <- in {i + 1}", ylim=(-90, 3), ylabel="dB")
    axes[0][0].legend(fontsize=8)
    axes[-1][0].set(xlabel="time (s)")
    fig.tight_layout()
    return ir_png, _png(fig)


def fig_bands(t30: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    x = np.arange(len(OCTAVES))
    for k, (label, values) in enumerate(t30.items()):
        ax.bar(x + (k - 0.5) * 0.38, [v if v is not None else 0 for v in values], 0.38, label=label)
    ax.set(xticks=x, xticklabels=[f"{c:g}" for c in OCTAVES], xlabel="octave band (Hz)", ylabel="T30 (s)",
           title="reverberation time per octave band")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def fig_certificate(loops: list[dict], certificate: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 3.4))
    for loop, entry in zip(loops, certificate["loops"]):
        line, = ax.semilogx(np.maximum(loop["hz"], 1.0), loop["bound"], lw=1.0, label=loop["path"])
        if entry.get("worst_frequency_hz") is not None:
            worst, top = max(entry["worst_frequency_hz"], 1.0), entry["max_bound"]
            ax.plot([worst], [top], "o", color=line.get_color())
            ax.annotate(f"max {top:.6f} at {entry['worst_frequency_hz']:.1f} Hz\nmargin {entry['margin']:.4g}",
                        (worst, top), textcoords="offset points", xytext=(12, -24), fontsize=8)
    ax.axhline(1.0, color="k", lw=0.8, ls="--", label="1 (small-gain limit)")
    ax.set(xlabel="frequency (Hz)", ylabel="loop bound", title=f"small-gain bound per loop: {certificate['verdict']} "
           f"(loop factor {certificate['loop_gamma']:.6g}: rt60 at its maximum)")
    ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return _png(fig)


def fig_sweep(targets, measured, trained: float) -> bytes:
    fig, ax = plt.subplots(figsize=(5, 3.4))
    ax.plot(targets, targets, ":", color="grey", label="slider = measured")
    ax.plot(targets, measured, "o-", label="measured T30 (compiled)")
    ax.axvline(trained, color="k", lw=0.6, ls="--", label=f"trained {trained:.3f} s (default)")
    ax.set(xlabel="rt60 slider (s)", ylabel="measured T30 (s)", title="rt60 slider sweep")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def fig_magnitude(mag: dict) -> bytes:
    fig, ax = plt.subplots(figsize=(8, 3.2))
    n_out, n_in = mag["db"].shape[1:]
    for o in range(n_out):
        for i in range(n_in):
            ax.semilogx(mag["hz"], mag["db"][:, o, i], lw=0.5, label=f"out {o + 1} <- in {i + 1}")
    ax.set(xlabel="frequency (Hz)", ylabel="dB", title="magnitude response of the model (IR, as emitted)")
    ax.legend(fontsize=8, ncol=n_out * n_in)
    fig.tight_layout()
    return _png(fig)


# ----------------------------------------------------------------------------------------------- page

def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _fmt(value, spec=".4g") -> str:
    return "—" if value is None else format(value, spec)


def _html(name: str, data: dict) -> str:
    e = html.escape
    cert = data["certificate"]
    verify_rows = [[r["precision"], r["out"] + 1, r["in"] + 1, f"{r['max_abs_error']:.3e}", f"{r['relative_error']:.3e}"]
                   for r in data["verify"]]
    band_rows = [[f"{c:g}", _fmt(a, ".3f"), _fmt(b, ".3f")]
                 for c, a, b in zip(OCTAVES, data["t30"]["compiled"], data["t30"]["FLAMO"])]
    loop_rows = [[loop["path"], loop["verdict"], _fmt(loop.get("max_bound"), ".9f"),
                  _fmt(loop.get("worst_frequency_hz"), ".2f"), _fmt(loop.get("margin"), ".4g")] for loop in cert["loops"]]
    control_rows = [[k, v.get("min", ""), v.get("max", ""), v.get("default", ""), v.get("covers", v.get("law", ""))]
                    for k, v in (cert.get("controls") or {}).items()]
    sweep_rows = [[f"{t:.3f}", f"{m:.4f}", f"{100 * (m / t - 1):+.2f} %"] for t, m in zip(*data["sweep"].values())]
    cost = data["cost"]
    rtf = cost["plugin"]
    rtf_text = (f"<p class=error>{e(rtf['error'])}</p>" if "error" in rtf else
                f"<p>One instance of the {e(rtf['format'])} plugin (pedalboard host, blocks of {rtf['block']} "
                f"samples, {rtf['seconds']:g} s of stereo noise, median of {rtf['repeats']}): real-time factor "
                f"<b>{rtf['real_time_factor']:.4f}</b> (about {rtf['instances_per_core']:.0f} instances per core).</p>")
    m = cost["machine"]
    time_rows = [[step, f"{seconds:.2f}"] for step, seconds in cost["step_seconds"].items()]
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{e(name)}: adac report</title>
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="data:,">
<link rel="stylesheet" href="report.css"></head>
<body>
<h1>{e(name)} <small>adac report, {e(data['built'])}</small></h1>
<nav><a href="#audition">audition</a> <a href="#equivalence">compiled vs FLAMO</a> <a href="#certificate">certificate</a>
<a href="#controls">rt60 and response</a> <a href="#cost">cost</a></nav>

<section id="audition"><h2>Audition</h2>
<p>The compiled <code>.dsp</code> as WebAssembly (<code>faust -lang wasm</code>) in an AudioWorklet, at {data['fs']} Hz.</p>
<div id="audition-controls"></div>
<div id="audition-sounds"></div>
<div class="ab">listen to: <label><input type="radio" name="ab" value="wet" checked> wet (the plugin)</label>
<label><input type="radio" name="ab" value="dry"> dry (bypass)</label> <span id="audition-status">loading…</span></div>
</section>

<section id="equivalence"><h2>Compiled DSP against FLAMO</h2>
<p>The shipped <code>.dsp</code> (controls at their defaults, float32) against FLAMO's float64 response over
{data['seconds']:.2f} s: max |error| / peak = <b>{data['relative_error']:.3e}</b>.</p>
<img src="img/impulse.png" alt="impulse responses per path"><img src="img/edc.png" alt="energy decay per path">
<img src="img/bands.png" alt="T30 per octave band">
{_table(["octave (Hz)", "T30 compiled (s)", "T30 FLAMO (s)"], band_rows)}
<h3>adac verify ({measure.VERIFY_SAMPLES} samples)</h3>
{_table(["precision", "out", "in", "max abs error", "error / peak"], verify_rows)}
</section>

<section id="certificate"><h2>Stability certificate: <span class="verdict">{e(cert['verdict'])}</span></h2>
<img src="img/certificate.png" alt="bound against frequency per loop">
{_table(["loop", "verdict", "max bound", "worst frequency (Hz)", "margin"], loop_rows)}
<h3>Controls the certificate covers</h3>
{_table(["control", "min", "max", "default", "covers"], control_rows)}
</section>

<section id="controls"><h2>rt60 slider and frequency response</h2>
<img src="img/sweep.png" alt="rt60 sweep"><img src="img/magnitude.png" alt="magnitude response">
{_table(["rt60 slider (s)", "measured T30 (s)", "difference"], sweep_rows)}
</section>

<section id="cost"><h2>Cost</h2>
{rtf_text}
<p>Measured on <b>{e(m['cpu'])}</b>, {m['cores']} cores, {e(m['os'])} (host {e(m['host'])}, load average
{' '.join(map(str, m['load_average']))}).</p>
<h3>Build steps (wall clock, as last run)</h3>
{_table(["step", "seconds"], time_rows) if time_rows else "<p>No step times recorded (artefacts from a cache).</p>"}
</section>
<script src="audition-data.js"></script>
<script src="audition.js"></script>
</body></html>
"""


def build_report(manifest, ir_path: Path, dsp_path: Path, cert_path: Path, out: Path,
                 bundles: Path | None = None) -> Path:
    """Write the report folder ``out.parent`` (``out`` is its ``index.html``); returns ``out``.

    ``manifest`` is the plugin's :class:`adac.build.manifest.Manifest` (controls, code-generation options);
    ``bundles`` its ``<Name>.bundles.json`` (the cost is measured on that plugin when given).
    """
    out = Path(out)
    if out.name != "index.html":
        raise AdacError(f"{out}: the report's output must be a folder's index.html")
    ir = load_ir(ir_path)
    code = read_text(dsp_path, "FAUST file")
    certificate = read_json(cert_path, "certificate")
    fs = ir["fs"]
    options = manifest.codegen_options
    rt60 = (certificate.get("controls") or {}).get("rt60")
    trained = rt60["trained"] if rt60 else None
    seconds = max(1.0, 1.5 * (trained or 1.0))

    res = measure.responses(ir, code, seconds)
    t30 = {name: list(octave_t30(res[key], fs, undecayed="none").values()) for name, key in (("compiled", "compiled"), ("FLAMO", "reference"))}
    loops = measure.loop_bounds(ir, certificate, options.get("fractional_order"))
    mag = measure.magnitude_response(ir, options.get("fractional_order"))
    sweep = {"slider": [], "measured": []}
    if rt60:
        sweep["slider"] = [round(v, 3) for v in np.linspace(rt60["min"], rt60["max"], SWEEP_POINTS)]
        sweep["measured"] = measure.rt60_sweep(code, fs, sweep["slider"])
    wasm, description, wasm_seconds = compile_wasm(Path(dsp_path))
    step_seconds = measure.step_times(Path(ir_path).parent)
    step_seconds["wasm (this page)"] = wasm_seconds
    listing = read_json(bundles, "bundle listing") if bundles else None
    cost = {"machine": machine(), "step_seconds": step_seconds,
            "plugin": measure.plugin_real_time_factor(listing, fs) if listing else
            {"error": "the plugin was not built with this report: its cost was not measured"}}
    data = {"plugin": manifest.name, "name": ir.get("name", manifest.name), "fs": fs, "seconds": seconds, "built": time.strftime("%Y-%m-%d %H:%M"),
            "relative_error": res["relative_error"], "verify": measure.verify_table(ir, options),
            "t30": t30, "certificate": certificate, "sweep": sweep, "cost": cost}

    sounds = dry_sounds(fs)
    audition = {"fs": fs, "inputs": description["inputs"], "outputs": description["outputs"],
                "size": description["size"], "controls": ui_controls(description),
                "wasm": base64.b64encode(wasm).decode(),
                "sounds": [{"name": s["name"], "label": s["label"], "pcm16": _pcm16(s["signal"])} for s in sounds]}
    ir_png, edc_png = fig_responses(res)
    files = {
        "index.html": _html(manifest.display_name or manifest.name, data).encode(),
        "report.json": json.dumps(data, indent=1).encode(),
        "report.css": (STATIC / "report.css").read_bytes(),
        "audition.js": (STATIC / "audition.js").read_bytes(),
        "audition-data.js": f"window.ADAC_AUDITION = {json.dumps(audition)};\n".encode(),
        "img/impulse.png": ir_png, "img/edc.png": edc_png, "img/bands.png": fig_bands(t30),
        "img/certificate.png": fig_certificate(loops, certificate),
        "img/sweep.png": fig_sweep(sweep["slider"], sweep["measured"], trained) if rt60 else b"",
        "img/magnitude.png": fig_magnitude(mag),
    }
    for s in sounds:
        buffer = io.BytesIO()
        soundfile.write(buffer, s["signal"], fs, format="WAV", subtype="PCM_16")
        files[f"sounds/{s['name']}.wav"] = buffer.getvalue()
    return _write_folder(out.parent, files) / "index.html"


def _write_folder(folder: Path, files: dict[str, bytes]) -> Path:
    """The report folder replaced as a whole: written beside it, then renamed (no half-written page)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
    tmp.chmod(0o755)  # mkdtemp makes 0700: a web server (or a colleague) reads the page
    try:
        for name, data in files.items():
            write_bytes_atomic(tmp / name, data)
        if folder.exists():
            shutil.rmtree(folder)
        tmp.rename(folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
