"""Macro-controls: what they mean, their ranges and defaults (every backend and the certificate read this).

Host-visible sliders that do not touch the trained parameters.

Addresses are fixed (one group ``adac``, fixed labels), so hosts, saved sessions
and the hot-reload host find a slider again after any rebuild:

=====================  ======  =========================================  ==================================
address                unit    default                                    range (unless set)
=====================  ======  =========================================  ==================================
``/adac/rt60``         s       T0: the trained model's broadband T30      T0/4 .. 2 T0
``/adac/dry_wet``      0..1    1 (the model alone)                        0 .. 1
``/adac/pre_delay``    ms      0                                          0 .. 100
=====================  ======  =========================================  ==================================

* ``rt60``: T0 is measured on the IR (exact float64 simulation, Schroeder
  backward integration, T30 fit: :func:`adac.rt60.ir_decay_time`), rounded to the
  slider's 1 ms step and written into the ``.dsp`` (``declare adac_rt60_trained``).
  Every delay of ``d`` samples inside a loop is scaled by ``gamma^d`` with
  ``gamma = 10^(-3/SR * (1/T - 1/T0'))`` where ``T0' = T0 * fs/SR`` is the trained
  decay at the running rate: the whole loop's decay rate changes from 60 dB per
  T0 to 60 dB per T (``1/T_total = 1/T0 + (1/T - 1/T0)``) on a lossless prototype
  and on a trained lossy model alike; the decay already trained in is replaced,
  not stacked on. The expression is written as ``10^(3/SR * (T - T0')/(T T0'))``
  so that at the default (``T == T0'`` exactly) it is exactly 1.0: the plugin is
  bit for bit the trained model. ``gamma`` is clamped to ``gamma_max``, its value
  at the slider's maximum at the IR's rate ``fs``, which is what the certificate
  certifies: the certificate then holds at every sample rate (at rates above fs
  the longest reachable T60 is ``max * fs / SR``). Each line's ``gamma^d`` is
  computed from the slider once per block and then smoothed (a per-sample
  ``pow`` per line would cost more than the whole FDN); a smoothed gain is a
  running average of values at most ``gamma_max^d``, so the bound still holds.
  A lossless prototype (:func:`lossless_loops`) has no trained decay: T0 is infinite,
  ``gamma = 10^(-3/(SR T))``, and ``default`` must be given (range default/4 .. 2 default).
* ``dry_wet``: equal-power mix by default (dry ``sqrt(1-m)``, wet ``sqrt(m)``:
  ``dry^2 + wet^2 = 1`` and exact zeros at both ends, which cos/sin in float32
  would not give), ``law: linear`` for ``(1-m, m)``. The dry signal is the input,
  duplicated from mono to N outputs; a model with other channel counts refuses it.
* ``pre_delay``: a delay before the model; the delay time glides (one-pole, 50 ms)
  through a linearly interpolated delay line, so moving it never clicks. Its
  buffer is sized for ``max`` at 192 kHz.

Smoothers start at the slider's default (they smooth the offset from the
default, which is 0 at load), so nothing ramps from zero when the plugin loads.
Ranges are enforced: an out-of-range default is an error, never clamped.
"""
from __future__ import annotations

import json
import math
from functools import lru_cache

import numpy as np

from ..common.errors import AdacError
from ..ir.document import MAX_DELAY_SAMPLES, iter_nodes
from ..ir.fractional import DEFAULT_ORDER
from .response import Realisation, response
from .rt60 import ir_decay_time

NAMES = ("rt60", "dry_wet", "pre_delay")
GROUP = "adac"
MAX_SAMPLE_RATE = 192000
RT60_STEP = 0.001  # s: the slider's step, and the grid T0 is rounded to
PRE_DELAY_SMOOTHING = 0.05  # s: time constant of the pre-delay glide


def address(name: str) -> str:
    """The FAUST address of a control (stable across rebuilds)."""
    return f"/{GROUP}/{name}"


@lru_cache(maxsize=32)
def _trained_t60(graph_json: str, fs: int, in_ch: int, out_ch: int, name: str, fractional_order: int) -> float:
    ir = {"graph": json.loads(graph_json), "fs": fs, "input_channels": in_ch, "output_channels": out_ch, "name": name}
    return ir_decay_time(ir, fractional_order=fractional_order)


def trained_t60(ir: dict, fractional_order: int = DEFAULT_ORDER) -> float:
    """The trained model's broadband T60 (T30 fit) in seconds, as realised with Lagrange order
    ``fractional_order`` for its fractional delays; cached per graph."""
    graph = json.dumps(ir["graph"], sort_keys=True)
    try:
        return _trained_t60(graph, ir["fs"], ir["input_channels"], ir["output_channels"], ir.get("name", "?"),
                            fractional_order)
    except AdacError as exc:
        raise AdacError(f"controls.rt60: no trained reverberation time to scale: {exc}") from None


def rt60_gamma(t60: float, trained: float | None, fs: float) -> float:
    """Per-sample loop factor that turns a trained decay ``trained`` into ``t60`` (seconds) at rate ``fs``;
    ``trained`` None (or infinity): a lossless model, ``gamma = 10^(-3/(fs T))``."""
    inverse_trained = 0.0 if trained is None or math.isinf(trained) else 1 / trained
    return 10 ** (-3 / fs * (1 / t60 - inverse_trained))


LOSSLESS_TOLERANCE = 1e-5  # |singular value - 1| of a lossless loop's open-loop response (float32 constants)
LOSSLESS_GRID = 257


def lossless_loops(ir: dict, fractional_order: int = DEFAULT_ORDER) -> list[str]:
    """Paths of the loops that keep their energy: every singular value of the open-loop response
    ``G(w) F(w)`` is 1 (within :data:`LOSSLESS_TOLERANCE`) at every frequency of a uniform grid (an
    orthogonal matrix and pure delays: a lossless prototype). Such a model has no finite reverberation time."""
    w = np.linspace(0.0, math.pi, LOSSLESS_GRID)
    real = Realisation(dtype=np.float64, fractional_order=fractional_order)
    found = []
    for node, _ in iter_nodes(ir["graph"]):
        if node["kind"] != "recursion":
            continue
        loop = response(node["feedback"], w, real, True) @ response(node["feedforward"], w, real, True)
        if not np.isfinite(loop).all():
            continue
        sigma = np.linalg.svd(loop, compute_uv=False)
        if np.abs(sigma - 1).max() <= LOSSLESS_TOLERANCE:
            found.append(node.get("path") or node["id"])
    return found


MEASURE = object()  # normalise_controls' ``trained``: measure the trained T60 on the model


def normalise_controls(controls: dict | None, ir: dict, fractional_order: int = DEFAULT_ORDER, *,
                       trained=MEASURE) -> dict:
    """``{name: {default, min, max[, law | trained, gamma_max]}}`` for the enabled controls.

    ``fractional_order``: the Lagrange order the model's fractional delays are realised with (the
    trained T60 is measured on that realisation). ``trained``: the rt60 control's trained T60 (s, on the slider's
    grid) when it is already known for this model, ``None`` for a lossless one; by default it is measured
    (:func:`trained_t60`, a simulation of the model's impulse response).

    ``True`` or ``{}`` takes every default; ``False`` or ``{"enabled": false}`` drops a
    control. Errors name the control and the field; values are never clamped.
    """
    if not controls:
        return {}
    if not isinstance(controls, dict):
        raise AdacError(f"controls: expected a mapping of {', '.join(NAMES)}, got {type(controls).__name__}")
    out = {}
    for name, spec in controls.items():
        if name not in NAMES:
            raise AdacError(f"controls: unknown control {name!r} (known: {', '.join(NAMES)})")
        if spec is False or spec is None or (isinstance(spec, dict) and spec.get("enabled") is False):
            continue
        if spec is not True and not isinstance(spec, dict):
            raise AdacError(f"controls.{name}: expected true, false or a mapping, got {spec!r}")
        spec = {} if spec is True else dict(spec)
        spec.pop("enabled", None)
        unknown = set(spec) - {"default", "min", "max"} - ({"law"} if name == "dry_wet" else set())
        if unknown:
            raise AdacError(f"controls.{name}: unknown field(s) {', '.join(sorted(unknown))}")
        for field in ("default", "min", "max"):
            value = spec.get(field)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)):
                raise AdacError(f"controls.{name}.{field}: must be a finite number, got {value!r}")
        c = out[name] = _defaults(name, spec, ir, fractional_order, trained)
        if not c["min"] < c["max"]:
            raise AdacError(f"controls.{name}.max: max {c['max']} must be greater than min {c['min']}")
        if not c["min"] <= c["default"] <= c["max"]:
            raise AdacError(f"controls.{name}.default: default {c['default']} must lie in [min, max] = "
                            f"[{c['min']}, {c['max']}] (values are not clamped)")
    if "rt60" in out and out["rt60"]["min"] <= 0:
        raise AdacError("controls.rt60.min: a reverberation time must be positive")
    if "pre_delay" in out and out["pre_delay"]["min"] < 0:
        raise AdacError("controls.pre_delay.min: a delay cannot be negative")
    if "pre_delay" in out and out["pre_delay"]["max"] / 1000 * MAX_SAMPLE_RATE > MAX_DELAY_SAMPLES:
        raise AdacError(f"controls.pre_delay.max: {out['pre_delay']['max']} ms needs a buffer of "
                        f"{out['pre_delay']['max'] / 1000 * MAX_SAMPLE_RATE:.6g} samples at {MAX_SAMPLE_RATE} Hz, above the "
                        f"limit of {MAX_DELAY_SAMPLES} samples for one delay "
                        f"({MAX_DELAY_SAMPLES / MAX_SAMPLE_RATE * 1000:.6g} ms)")
    if "dry_wet" in out:
        c = out["dry_wet"]
        if c["min"] < 0:
            raise AdacError(f"controls.dry_wet.min: the mix lies in [0, 1], got {c['min']}")
        if c["max"] > 1:
            raise AdacError(f"controls.dry_wet.max: the mix lies in [0, 1], got {c['max']}")
        if c["law"] not in ("equal_power", "linear"):
            raise AdacError(f"controls.dry_wet.law: 'equal_power' or 'linear', got {c['law']!r}")
    return out


def _defaults(name: str, spec: dict, ir: dict, fractional_order: int, trained=MEASURE) -> dict:
    if name == "rt60":
        if loop_count(ir) == 0:
            raise AdacError(f"controls.rt60: the model of {ir.get('name')!r} has no feedback loop to scale")
        if trained is MEASURE:
            lossless = lossless_loops(ir, fractional_order)
            if lossless:
                return _lossless_rt60(spec, ir, lossless)
            t0 = round(trained_t60(ir, fractional_order), 3)  # the trained model's T30, on the slider's 1 ms grid
        elif trained is None:
            return _lossless_rt60(spec, ir, [])
        else:
            t0 = trained
        if t0 <= 0:
            raise AdacError(f"controls.rt60: the trained reverberation time {t0} s rounds to zero")
        c = {"trained": t0, "default": spec.get("default", t0), "min": spec.get("min", round(t0 / 4, 3)),
             "max": spec.get("max", round(t0 * 2, 3))}
        if not c["min"] > 0:
            raise AdacError("controls.rt60.min: a reverberation time must be positive")
        # the loop factor at the top of the range, as the float32 build stores it: the clamp and the certificate
        c["gamma_max"] = float(np.float32(rt60_gamma(c["max"], t0, ir["fs"])))
        return c
    if name == "dry_wet":
        return {"default": spec.get("default", 1.0), "min": spec.get("min", 0.0), "max": spec.get("max", 1.0),
                "law": spec.get("law", "equal_power")}
    return {"default": spec.get("default", 0.0), "min": spec.get("min", 0.0), "max": spec.get("max", 100.0)}


def _lossless_rt60(spec: dict, ir: dict, lossless: list[str]) -> dict:
    """rt60 on a lossless prototype (``lossless``: its lossless loops' paths, when measured): T0 is infinite,
    gamma = 10^(-3/(SR T)); the default must be given."""
    if spec.get("default") is None:
        loops = f"loop {', '.join(lossless)} keeps" if lossless else "its loops keep"
        raise AdacError(f"controls.rt60.default: the model of {ir.get('name')!r} is lossless ({loops} its energy: "
                        "no trained reverberation time to start from); "
                        "give the reverberation time the knob starts at, e.g. controls: {rt60: {default: 1.5}} "
                        "(range default/4 .. 2 default unless min/max are set)")
    default = spec["default"]
    if not default > 0:
        raise AdacError(f"controls.rt60.default: a reverberation time must be positive, got {default}")
    c = {"trained": None, "lossless": True, "default": default, "min": spec.get("min", round(default / 4, 3)),
         "max": spec.get("max", round(default * 2, 3))}
    if not c["min"] > 0:
        raise AdacError("controls.rt60.min: a reverberation time must be positive")
    c["gamma_max"] = float(np.float32(rt60_gamma(c["max"], None, ir["fs"])))
    return c


def rate_controls(controls: dict | None, ir: dict, fractional_order: int = DEFAULT_ORDER) -> dict | None:
    """The controls of the model ``ir`` lowered again for another rate (:mod:`adac.ir.rate`): the model's own
    ranges and defaults, so that every rate's sliders are the same and seconds and milliseconds keep their meaning."""
    if not controls:
        return None
    keep = ("default", "min", "max", "law")
    return {name: {k: v for k, v in c.items() if k in keep}
            for name, c in normalise_controls(controls, ir, fractional_order).items()}


def loop_gamma_range(normalised: dict, ir: dict) -> tuple[float, dict | None]:
    """Largest per-sample loop factor over the sliders' ranges, and what the certificate covers."""
    covered = {name: dict(v) for name, v in normalised.items()} or None
    if "rt60" not in normalised:
        return 1.0, covered
    c = normalised["rt60"]
    covered["rt60"]["covers"] = (f"every slider position {c['min']}..{c['max']} s at fs = {ir['fs']} Hz; at any rate "
                                 f"the loop factor is clamped to gamma_max, so the certificate holds at every sample rate")
    return c["gamma_max"], covered  # the bound grows with gamma, and gamma with the slider


def loop_count(ir: dict) -> int:
    """Number of feedback loops (nested ones too) in an IR's graph."""
    return sum(node["kind"] == "recursion" for node, _ in iter_nodes(ir["graph"]))
