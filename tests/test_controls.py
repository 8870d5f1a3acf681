"""Macro-controls, measured on the compiled DSP rendered for real."""
import json
import subprocess

import numpy as np
import pytest

import adac
from adac.certificate import certify, gate
from adac.analysis.controls import normalise_controls
from adac.common.errors import AdacError
from adac.common.errors import StabilityError
from adac.backends.faust.render import render_impulse_responses, render_signal
from adac.analysis.response import Realisation, response
from adac.analysis.rt60 import T20, decay_time, ir_decay_time
from adac.analysis.simulate import simulate
from conftest import FLOAT32_TOL
from flamo_models import FS, fdn, line_gains, shell

pytestmark = pytest.mark.usefixtures("faust_available")
ALL = {"rt60": True, "dry_wet": True, "pre_delay": True}
# measured T30 of the render against the slider, 0.5x..2x T0 (docs/certificate.md): lossless prototype within
# 0.9 % (each line decays by exactly gamma^d), lossy model within 5.0 % (at 2x T0: its lowpass bands decay at
# different rates and the slowest one dominates the broadband T30 more as T grows); pinned slightly above.
# (At 0.25x T0 these tiny FDNs, delays of 0.8..4 ms, measure ~8 % long: the T30 window then starts within the
# first few loop trips; see docs/certificate.md.)
RT60_TOLERANCE = {"lossless_prototype": 0.015, "lossy": 0.06}


@pytest.fixture(scope="module")
def lossy():
    """Trained-like lossy model: per-line gains and lowpass attenuation filters, stereo out, no direct path."""
    return adac.flamo_to_json(fdn(8, t60=0.5, attenuation="biquad", n_in=1, n_out=2, direct=False), FS)


@pytest.fixture(scope="module")
def lossless_prototype():
    """Lossless prototype with homogeneous decay from its gains for T60 = 0.5 s."""
    return adac.flamo_to_json(fdn(8, t60=0.5, attenuation="none", n_in=1, n_out=1, direct=False), FS)


def test_defaults_are_the_trained_model(lossy):
    """At the defaults the plugin is the trained model: gamma is exactly 1.0, so bit for bit (float32 build)."""
    n = FS
    plain = render_impulse_responses(adac.json_to_faust(lossy), FS, n)
    code = adac.json_to_faust(lossy, ALL)
    controlled = render_impulse_responses(code, FS, n)
    assert np.abs(controlled - plain).max() <= FLOAT32_TOL * np.abs(plain).max()
    assert np.array_equal(controlled, plain)
    trained = normalise_controls({"rt60": True}, lossy)["rt60"]["trained"]
    assert f'declare adac_rt60_trained "{trained!r}";' in code
    # one slider step away it is no longer the same model
    moved = render_impulse_responses(code, FS, n, params={"/adac/rt60": trained + 0.001})
    assert not np.array_equal(moved, plain)


def test_simulation_is_the_exact_response(lossy):
    """adac.analysis.simulate.simulate (time domain, blocks) against the inverse FFT of the exact frequency response."""
    ir = adac.flamo_to_json(fdn(6, t60=0.1, n_in=2, n_out=2), FS)
    n = 1 << 14
    w = 2 * np.pi * np.arange(n // 2 + 1) / n
    exact = np.fft.irfft(response(ir["graph"], w, Realisation(dtype=np.float64)), n=n, axis=0)
    simulated = simulate(ir, n)
    assert np.abs(simulated - exact).max() < 1e-9 * np.abs(exact).max()


def test_trained_t60_matches_the_rendered_model(lossy):
    """T0 (simulation, float64) against the T30 and T20 of the compiled float32 render."""
    y = render_impulse_responses(adac.json_to_faust(lossy), FS, 2 * FS)
    assert ir_decay_time(lossy) == pytest.approx(decay_time(y, FS), rel=1e-3)
    assert ir_decay_time(lossy, fit=T20) == pytest.approx(decay_time(y, FS, fit=T20), rel=1e-3)


def test_rt60_needs_a_loop():
    ir = adac.flamo_to_json(shell(line_gains([0.5])), FS)
    with pytest.raises(AdacError, match="controls.rt60: .* has no feedback loop"):
        adac.json_to_faust(ir, {"rt60": True})


@pytest.mark.parametrize("which", ["lossy", "lossless_prototype"])
@pytest.mark.parametrize("factor", [0.5, 1.0, 2.0])
def test_measured_rt60_follows_the_slider(which, factor, request):
    ir = request.getfixturevalue(which)
    trained = normalise_controls({"rt60": True}, ir)["rt60"]["default"]
    assert trained == pytest.approx(ir_decay_time(ir), rel=1e-3)
    code = adac.json_to_faust(ir, {"rt60": {"max": 2.5 * trained, "min": 0.1}})
    target = factor * trained
    y = render_impulse_responses(code, FS, int(FS * max(1.5, 4 * target)), params={"/adac/rt60": target})
    measured = decay_time(y, FS)
    assert measured == pytest.approx(target, rel=RT60_TOLERANCE[which]), (which, target, measured)


def _loop_delays_scaled(config: dict, gamma: float, short: int = 0) -> dict:
    """``config`` with every loop's delay lines followed by their gains ``gamma^(d - short)``."""
    out = json.loads(json.dumps(config))

    def visit(node):
        if node["kind"] == "recursion":
            lines = node["feedforward"]
            assert lines["kind"] == "delay" and lines["diagonal"]
            scale = {"id": lines["id"] + "_rt60", "kind": "gain", "path": lines["path"] + ".rt60", "in": lines["out"],
                     "out": lines["out"], "diagonal": True, "gains": [gamma ** (d - short) for d in lines["samples"]]}
            node["feedforward"] = {"id": lines["id"] + "_scaled", "kind": "series", "path": lines["path"], "in": lines["in"],
                                   "out": lines["out"], "children": [lines, scale]}
        for child in node.get("children", []) + [node[k] for k in ("feedforward", "feedback") if k in node]:
            visit(child)

    visit(out["graph"])
    return out


def test_rt60_scales_each_line_by_gamma_to_its_whole_length(lossy):
    """Settled at a new slider value, the compiled FDN is exactly the model with each line's gain times gamma^d,
    d the line's whole length, the sample FAUST's ~ supplies included (its gain is computed per block and
    smoothed, so the impulse comes after the glide)."""
    trained = normalise_controls({"rt60": True}, lossy)["rt60"]["trained"]
    target = 0.5 * trained
    code = adac.json_to_faust(lossy, {"rt60": True})
    start, n = 40000, 6000  # the per-line smoothers (pole 0.999) have settled to 1e-17 by then
    signal = np.zeros((start + n, 1))
    signal[start] = 1.0
    y = render_signal(code, FS, signal, double=True, params={"/adac/rt60": target})[start:]
    gamma = 10 ** (-3 / FS * (1 / target - 1 / trained))
    reference = simulate(_loop_delays_scaled(lossy, gamma), n)[:, :, 0]
    assert np.abs(y - reference).max() <= 1e-9 * np.abs(reference).max()
    # the comparison sees one sample's worth of decay per line
    one_short = simulate(_loop_delays_scaled(lossy, gamma, short=1), n)[:, :, 0]
    assert np.abs(y - one_short).max() > 1e-6 * np.abs(reference).max()


def test_stacking_would_be_wrong(lossy):
    """Guard against the stacked form: 2x T0 on the slider must not measure ~T0 * 2/3."""
    trained = normalise_controls({"rt60": True}, lossy)["rt60"]["default"]
    code = adac.json_to_faust(lossy, {"rt60": {"max": 3 * trained}})
    y = render_impulse_responses(code, FS, FS * 3, params={"/adac/rt60": 2 * trained})
    assert decay_time(y, FS) > 1.5 * trained


def test_fully_wet_leaks_no_dry_impulse_at_load(lossy):
    code = adac.json_to_faust(lossy, {"dry_wet": True})
    y = render_impulse_responses(code, FS, 64)
    assert np.all(y[:30] == 0.0)  # the loop's shortest path is longer than 30 samples: any output is dry leak


@pytest.mark.parametrize("law,dry,wet", [("equal_power", 0.5 ** 0.5, 0.5 ** 0.5), ("linear", 0.5, 0.5)])
def test_mix_law(lossy, law, dry, wet):
    plain = render_impulse_responses(adac.json_to_faust(lossy), FS, 4000, double=True)
    mixed = render_impulse_responses(adac.json_to_faust(lossy, {"dry_wet": {"law": law, "default": 0.5}}), FS, 4000, double=True)
    expected = wet * plain
    expected[0] += dry  # mono input duplicated to both outputs
    assert np.abs(mixed - expected).max() < 1e-9


def test_pre_delay_shifts_the_response(lossy):
    plain = render_impulse_responses(adac.json_to_faust(lossy), FS, 4000, double=True)
    code = adac.json_to_faust(lossy, {"pre_delay": {"default": 10.0, "max": 50.0}})
    delayed = render_impulse_responses(code, FS, 4000, double=True)
    shift = 480  # 10 ms at 48 kHz
    assert np.all(delayed[:shift] == 0.0)
    assert np.abs(delayed[shift:] - plain[:-shift]).max() < 1e-9


def test_pre_delay_moves_smoothly():
    """A 200 Hz sine through a pre-delay moved from 0 to 20 ms: the output glides (no step), then settles
    on the sine delayed by 960 samples."""
    ir = adac.flamo_to_json(shell(line_gains([1.0])), FS)  # the model is a wire: only the pre-delay acts
    code = adac.json_to_faust(ir, {"pre_delay": {"max": 50.0}})
    n, change = int(1.2 * FS), FS // 4
    x = np.sin(2 * np.pi * 200 * np.arange(n) / FS)
    y = render_signal(code, FS, x[:, None], double=True, changes=[(change, "/adac/pre_delay", 20.0)])[:, 0]
    assert np.array_equal(y[:change], x[:change])  # exact before the move
    step = np.abs(np.diff(x)).max()
    assert np.abs(np.diff(y)).max() < 2 * step  # a jump would be ~100x the sine's own step
    assert np.abs(y[-FS // 10:] - x[-FS // 10 - 960:-960]).max() < 1e-3


def test_ranges_are_enforced_not_clamped(lossy):
    with pytest.raises(AdacError, match=r"controls.pre_delay.default: default 200.0 must lie in \[min, max\]"):
        adac.json_to_faust(lossy, {"pre_delay": {"default": 200.0, "max": 100.0}})
    with pytest.raises(AdacError, match="unknown control 'size'"):
        adac.json_to_faust(lossy, {"size": True})
    with pytest.raises(AdacError, match="controls.rt60.min"):
        adac.json_to_faust(lossy, {"rt60": {"min": 0.0}})
    with pytest.raises(AdacError, match="controls.dry_wet.max"):
        adac.json_to_faust(lossy, {"dry_wet": {"max": 1.5}})
    with pytest.raises(AdacError, match="controls.dry_wet.law"):
        adac.json_to_faust(lossy, {"dry_wet": {"law": "cosine"}})
    with pytest.raises(AdacError, match="controls.pre_delay.max: max 5.0 must be greater than min 10.0"):
        adac.json_to_faust(lossy, {"pre_delay": {"min": 10.0, "max": 5.0, "default": 10.0}})
    with pytest.raises(AdacError, match="controls.rt60.default: must be a finite number"):
        adac.json_to_faust(lossy, {"rt60": {"default": float("nan")}})
    with pytest.raises(AdacError, match=r"controls.rt60: unknown field\(s\) law"):
        adac.json_to_faust(lossy, {"rt60": {"law": "linear"}})


def test_dry_wet_needs_a_dry_signal():
    ir = adac.flamo_to_json(fdn(4, n_in=2, n_out=3, direct=False), FS)
    with pytest.raises(AdacError, match="2-in/3-out model has no dry signal"):
        adac.json_to_faust(ir, {"dry_wet": True})


def test_slider_addresses_are_stable(lossy, lossless_prototype, tmp_path):
    for ir in (lossy, lossless_prototype):
        path = tmp_path / "m.dsp"
        path.write_text(adac.json_to_faust(ir, ALL))
        subprocess.run(["faust", "-json", str(path), "-o", "/dev/null"], check=True, capture_output=True)
        ui = (tmp_path / "m.dsp.json").read_text()
        addresses = sorted(set(json.loads('{"a": [' + ",".join(f'"{a}"' for a in __import__("re").findall(r'"address": "([^"]*)"', ui)) + "]}")["a"]))
        assert addresses == ["/adac/dry_wet", "/adac/pre_delay", "/adac/rt60"]


def test_certificate_covers_the_slider_range(lossy):
    trained = normalise_controls({"rt60": True}, lossy)["rt60"]["default"]
    ok = certify(lossy, {"rt60": {"max": 2 * trained}})
    assert ok["verdict"] == "certified-stable" and ok["controls"]["rt60"]["max"] == 2 * trained
    # a slider reaching far beyond the trained decay: the loop loses its margin at the top of the range
    assert ok["loop_gamma"] == ok["controls"]["rt60"]["gamma_max"] > 1
    gate(ok)
    too_long = certify(lossy, {"rt60": {"max": 1000 * trained}})
    assert too_long["verdict"] == "not-certified"
    assert too_long["loops"][0]["max_bound"] > ok["loops"][0]["max_bound"]
    with pytest.raises(StabilityError, match=r"not-certified.*loop core.*margin -"):
        gate(too_long)
    # and the top of that range really grows (rendered): the certificate was right to refuse it
    code = adac.json_to_faust(lossy, {"rt60": {"max": 1000 * trained}})
    y = render_impulse_responses(code, FS, 4 * FS, params={"/adac/rt60": 1000 * trained})
    energy = (y.reshape(len(y), -1) ** 2).sum(axis=1)
    assert energy[-FS // 10:].sum() > energy[FS // 10:FS // 5].sum()


def test_gamma_is_clamped_to_the_certified_maximum_at_other_rates(lossless_prototype):
    """At 96 kHz the slider keeps its meaning below the clamp; above, gamma stops at gamma_max (the certified
    factor): the longest T60 there is max * fs / SR, never an uncertified loop gain."""
    c = normalise_controls({"rt60": True}, lossless_prototype)["rt60"]
    code = adac.json_to_faust(lossless_prototype, {"rt60": {"max": 2 * c["trained"]}})
    sr = 2 * FS
    below = render_impulse_responses(code, sr, 3 * sr, params={"/adac/rt60": 0.75 * c["trained"]})
    assert decay_time(below, sr) == pytest.approx(0.75 * c["trained"], rel=RT60_TOLERANCE["lossless_prototype"])
    top = render_impulse_responses(code, sr, 3 * sr, params={"/adac/rt60": 2 * c["trained"]})
    assert decay_time(top, sr) == pytest.approx(2 * c["trained"] * FS / sr, rel=RT60_TOLERANCE["lossless_prototype"])


def test_the_trained_t60_is_measured_with_the_chosen_fractional_order(lossy, monkeypatch):
    """The rt60 control's trained T60 (in the .dsp and in the certificate) is measured on the realisation the
    code uses: the Lagrange order given to json_to_faust / certify (a manifest's fractional_order), not 15."""
    import adac.analysis.controls as controls

    orders = []

    def measured(ir, fractional_order):
        orders.append(fractional_order)
        return 0.5

    monkeypatch.setattr(controls, "ir_decay_time", measured)
    controls._trained_t60.cache_clear()
    adac.json_to_faust(lossy, {"rt60": True}, fractional_order=7)
    certify(lossy, {"rt60": True}, fractional_order=5)
    controls._trained_t60.cache_clear()
    assert orders == [7, 5]
