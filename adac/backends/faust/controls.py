"""The macro-controls in FAUST: sliders at their stable addresses, smoothed, around the model's process.

What the controls mean, their ranges and defaults: :mod:`adac.analysis.controls`.
"""
from __future__ import annotations

import math
from typing import Callable

from ...analysis.controls import GROUP, PRE_DELAY_SMOOTHING, MAX_SAMPLE_RATE, RT60_STEP, address, normalise_controls
from ...common.errors import AdacError
from .emit import number


def _slider(name: str, c: dict, unit: str, step: float) -> str:
    return (f'hgroup("{GROUP}", hslider("{name} [unit:{unit}]", {number(c["default"])}, {number(c["min"])}, '
            f'{number(c["max"])}, {number(step)}))')


def _smoothed(slider: str, default: float | str, seconds: float | None = None) -> str:
    """A slider (or an expression of one) smoothed from its default value (a number or a constant
    expression): FAUST's smoothers start at 0, so smooth the offset from the default."""
    smoother = "si.smoo" if seconds is None else f"si.smooth(ba.tau2pole({number(seconds)}))"
    default = default if isinstance(default, str) else number(default)
    return f"(({slider} - {default}) : {smoother} : +({default}))"


def prepare_controls(ir: dict, controls: dict, ctx) -> Callable[..., str]:
    """Set the emission context for the controls (``ctx.loop_decay``, definitions) and return
    the wrapper of the model's process expression."""
    normalised = normalise_controls(controls, ir, ctx.fractional_order)
    n_in, n_out = ir["input_channels"], ir["output_channels"]
    definitions = [f'declare adac_controls "{" ".join(address(n) for n in normalised)}";']
    if "rt60" in normalised:
        c = normalised["rt60"]
        if c["trained"] is None:  # a lossless prototype: T0 is infinite, gamma = 10^(-3/(SR T))
            definitions += [
                'declare adac_rt60_trained "inf";',
                f"adac_rt60 = {_slider('rt60', c, 's', RT60_STEP)};",
                "// the model is lossless (no trained decay): 10^(-3/(SR T)), clamped to the certified maximum",
                f"adac_rt60_gamma(t) = min({number(c['gamma_max'])}, pow(10.0, -3.0 / (ma.SR * t)));",
            ]
        else:
            definitions += [
                f'declare adac_rt60_trained "{number(c["trained"])}";',
                f"adac_rt60 = {_slider('rt60', c, 's', RT60_STEP)};",
                "// the trained T60 at the running rate (delays are in samples); exactly T0 at fs",
                f"adac_rt60_trained = {number(c['trained'])} * ({number(ir['fs'])} / ma.SR);",
                "// 10^(-3/SR (1/T - 1/T0)), written so that T == T0 gives exactly 1.0; clamped to the certified maximum",
                f"adac_rt60_gamma(t) = min({number(c['gamma_max'])}, pow(10.0, 3.0 / ma.SR * (t - adac_rt60_trained) "
                "/ (t * adac_rt60_trained)));",
            ]
        definitions += [
            "// gain of a d-sample delay in a loop: gamma^d once per block (control rate), then smoothed per line",
            "adac_rt60_gain(d) = " + _smoothed("pow(adac_rt60_gamma(adac_rt60), d)",
                                               f"pow(adac_rt60_gamma({number(c['default'])}), d)") + ";",
        ]
        ctx.loop_decay = "adac_rt60_gain"
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
        max_samples = int(math.ceil(c["max"] / 1000 * MAX_SAMPLE_RATE)) + 2
        # a gliding delay time through a linearly interpolated line: no click when moved, exact at whole samples
        definitions.append(f"adac_pre_delay = {_smoothed(_slider('pre_delay', c, 'ms', 0.1), c['default'], PRE_DELAY_SMOOTHING)}"
                           " * ma.SR / 1000;")
        definitions.append(f"adac_pre_delay_line = de.fdelay({max_samples}, adac_pre_delay);")
    ctx.definitions.extend(definitions)

    def wrap(model: str, extra_in: int = 0, extra_out: int = 0) -> str:
        """The controls around ``model``; ``extra_in`` / ``extra_out``: channels ``model`` takes after its inputs
        and gives after its outputs besides the model's own, passed by untouched (the native backend's loops)."""
        def beside(expr: str, extra: int) -> str:
            return f"({expr}, si.bus({extra}))" if extra else expr

        chain = model
        if "pre_delay" in normalised:
            chain = f"({beside(f'par(i, {n_in}, adac_pre_delay_line)', extra_in)} : {chain})"
        if "dry_wet" not in normalised:
            return chain
        dry = "si.bus({0})".format(n_in) if n_in == n_out else f"(_ <: si.bus({n_out}))"
        if not (extra_in or extra_out):
            return (f"(si.bus({n_in}) <: ({dry} : par(i, {n_out}, *(adac_dry_gain))), "
                    f"({chain} : par(i, {n_out}, *(adac_wet_gain))) :> si.bus({n_out}))")
        split = beside(f"(si.bus({n_in}) <: ({dry} : par(i, {n_out}, *(adac_dry_gain))), si.bus({n_in}))", extra_in)
        wet = f"({chain} : {beside(f'par(i, {n_out}, *(adac_wet_gain))', extra_out)})"
        return f"({split} : (si.bus({n_out}), {wet}) : {beside(f'(si.bus({2 * n_out}) :> si.bus({n_out}))', extra_out)})"

    return wrap
