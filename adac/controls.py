"""Macro-controls: host-visible sliders that do not touch the trained parameters.

Addresses are stable (``/adac/rt60``, ``/adac/dry_wet``, ``/adac/pre_delay``):
hosts, saved sessions and the hot-reload host find a slider again after a rebuild.

* ``rt60`` (s): the broadband T60 T0 of the trained model (T30 of its exact
  response) is the slider's default. Every delay of ``d`` samples inside a loop
  is scaled by ``gamma^d`` with ``gamma = 10^(-3/fs * (1/T - 1/T0))``: the
  whole loop's decay rate changes from 60 dB per T0 to 60 dB per T, on a lossless
  prototype and on a trained lossy model alike (the decay already trained in is
  subtracted, not stacked on). At the default gamma is exactly 1: the plugin is
  the trained model. The certificate covers the slider's maximum (slowest decay).
* ``dry_wet`` (0..1, default 1 = the model alone): equal-power mix by default
  (dry sqrt(1-m), wet sqrt(m): exact zeros at both ends), ``law: linear`` for
  (1-m, m). The dry signal is the input, duplicated from mono to N outputs.
* ``pre_delay`` (ms, default 0, range 0..max, 100 ms unless set): a delay before
  the model; moved smoothly (a smoothed, linearly interpolated delay time), so
  it glides instead of clicking.

Smoothers start at the slider's value, so nothing ramps from zero at load.
"""
from __future__ import annotations

import math
from typing import Callable

from .errors import AdacError

NAMES = ("rt60", "dry_wet", "pre_delay")
GROUP = "adac"
MAX_SAMPLE_RATE = 192000


def address(name: str) -> str:
    return f"/{GROUP}/{name}"


def normalise_controls(controls: dict | None, config: dict) -> dict:
    """``{name: {default, min, max[, law]}}`` for the enabled controls; errors name the control and field."""
    if not controls:
        return {}
    if not isinstance(controls, dict):
        raise AdacError(f"controls: expected a mapping of {', '.join(NAMES)}, got {type(controls).__name__}")
    out = {}
    for name, spec in controls.items():
        if name not in NAMES:
            raise AdacError(f"controls: unknown control {name!r} (known: {', '.join(NAMES)})")
        if spec is False or (isinstance(spec, dict) and spec.get("enabled") is False):
            continue
        spec = {} if spec is True else dict(spec)
        spec.pop("enabled", None)
        unknown = set(spec) - {"default", "min", "max", "law"}
        if unknown:
            raise AdacError(f"controls.{name}: unknown field(s) {', '.join(sorted(unknown))}")
        out[name] = _defaults(name, spec, config)
        c = out[name]
        for field in ("default", "min", "max"):
            if not isinstance(c[field], (int, float)) or not math.isfinite(c[field]):
                raise AdacError(f"controls.{name}.{field}: must be a finite number, got {c[field]!r}")
        if not c["min"] <= c["default"] <= c["max"] or c["min"] == c["max"]:
            raise AdacError(f"controls.{name}: default {c['default']} must lie in [min, max] = [{c['min']}, {c['max']}] "
                            "with min < max (values are not clamped)")
    if "rt60" in out and out["rt60"]["min"] <= 0:
        raise AdacError("controls.rt60.min: a reverberation time must be positive")
    if "pre_delay" in out and out["pre_delay"]["min"] < 0:
        raise AdacError("controls.pre_delay.min: a delay cannot be negative")
    if "dry_wet" in out and (out["dry_wet"]["min"] < 0 or out["dry_wet"]["max"] > 1):
        raise AdacError("controls.dry_wet: the mix lies in [0, 1]")
    if "dry_wet" in out and out["dry_wet"].get("law", "equal_power") not in ("equal_power", "linear"):
        raise AdacError(f"controls.dry_wet.law: 'equal_power' or 'linear', got {out['dry_wet']['law']!r}")
    return out


def _defaults(name: str, spec: dict, config: dict) -> dict:
    if name == "rt60":
        from .rt60 import ir_decay_time

        t0 = round(ir_decay_time(config), 3)  # the trained model's T30, on the slider's 1 ms grid
        return {"trained": t0, "default": spec.get("default", t0), "min": spec.get("min", round(t0 / 4, 3)),
                "max": spec.get("max", round(t0 * 2, 3))}
    if name == "dry_wet":
        return {"default": spec.get("default", 1.0), "min": spec.get("min", 0.0), "max": spec.get("max", 1.0),
                "law": spec.get("law", "equal_power")}
    return {"default": spec.get("default", 0.0), "min": spec.get("min", 0.0), "max": spec.get("max", 100.0)}


def loop_gamma_range(normalised: dict, config: dict) -> tuple[float, dict]:
    """Largest per-sample loop gain factor over the sliders' ranges, and what the certificate covers."""
    if "rt60" not in normalised:
        return 1.0, {name: {k: v for k, v in c.items()} for name, c in normalised.items()} or None
    c = normalised["rt60"]
    gamma = 10 ** (-3 / config["fs"] * (1 / c["max"] - 1 / c["trained"]))
    return gamma, {name: dict(v) for name, v in normalised.items()}


def _slider(name: str, c: dict, unit: str, step: float) -> str:
    from .faust_backend import number

    return (f'hgroup("{GROUP}", hslider("{name} [unit:{unit}]", {number(c["default"])}, {number(c["min"])}, '
            f'{number(c["max"])}, {number(step)}))')


def _smoothed(slider: str, default: float) -> str:
    """A slider smoothed from its default: si.smoo starts at 0, so smooth the offset from the default."""
    from .faust_backend import number

    return f"(({slider} - {number(default)}) : si.smoo : +({number(default)}))"


def prepare_controls(config: dict, controls: dict, ctx) -> Callable[[str], str]:
    """Set the emission context for the controls and return the wrapper of the model expression."""
    from .faust_backend import number

    normalised = normalise_controls(controls, config)
    n_in, n_out = config["input_channels"], config["output_channels"]
    definitions = []
    if "rt60" in normalised:
        c = normalised["rt60"]
        t = _smoothed(_slider("rt60", c, "s", 0.001), c["default"])
        trained_at_sr = f"({number(c['trained'])} * {config['fs']} / ma.SR)"
        definitions.append(f"adac_rt60 = {t};")
        definitions.append(f"adac_rt60_gamma = pow(10, -3 / ma.SR * (1 / adac_rt60 - 1 / {trained_at_sr}));")
        ctx.loop_decay = "adac_rt60_gamma"
    if "dry_wet" in normalised:
        c = normalised["dry_wet"]
        if n_in != n_out and n_in != 1:
            raise AdacError(f"controls.dry_wet: a {n_in}-in/{n_out}-out model has no dry signal to mix "
                            "(it needs as many inputs as outputs, or one input)")
        definitions.append(f"adac_mix = {_smoothed(_slider('dry_wet', c, '', 0.001), c['default'])};")
        if c["law"] == "linear":
            definitions += ["adac_dry_gain = 1 - adac_mix;", "adac_wet_gain = adac_mix;"]
        else:
            definitions += ["adac_dry_gain = sqrt(max(0, 1 - adac_mix));", "adac_wet_gain = sqrt(max(0, adac_mix));"]
    if "pre_delay" in normalised:
        c = normalised["pre_delay"]
        max_samples = int(math.ceil(c["max"] / 1000 * MAX_SAMPLE_RATE)) + 1
        # a smoothly moving delay (linear interpolation): no click when moved, exact at integral sample counts
        definitions.append(f"adac_pre_delay = {_smoothed(_slider('pre_delay', c, 'ms', 0.1), c['default'])} * ma.SR / 1000;")
        definitions.append(f"adac_pre_delay_line = de.fdelay({max_samples}, adac_pre_delay);")
    ctx.definitions.extend(definitions)

    def wrap(model: str) -> str:
        chain = model
        if "pre_delay" in normalised:
            chain = f"(par(i, {n_in}, adac_pre_delay_line) : {chain})"
        if "dry_wet" not in normalised:
            return chain
        dry = "si.bus({0})".format(n_in) if n_in == n_out else f"(_ <: si.bus({n_out}))"
        return (f"(si.bus({n_in}) <: ({dry} : par(i, {n_out}, *(adac_dry_gain))), "
                f"({chain} : par(i, {n_out}, *(adac_wet_gain))) :> si.bus({n_out}))")

    return wrap
