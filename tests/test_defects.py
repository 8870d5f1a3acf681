"""Defects found by adversarial testing (issue 14, "Compiler and verification"): each test failed before its fix."""
import copy
import json
import math

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system

import adac
from adac.analysis.controls import normalise_controls
from adac.analysis.rt60 import decay_time
from adac.backends.faust.render import render_impulse_responses
from adac.certificate import certify, gate
from adac.common.errors import AdacError, StabilityError
from flamo_models import CPU, FS, delay_lines, fdn, line_gains, set_delays_samples, shell

pytestmark = pytest.mark.usefixtures("faust_available")


# --- rt60 on a lossless prototype -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def lossless():
    """A lossless FLAMO FDN: orthogonal matrix, unit gains, no attenuation (marginally stable)."""
    return adac.flamo_to_json(fdn(8, t60=math.inf, attenuation="none", n_in=1, n_out=1, direct=False), FS)


def test_lossless_prototype_needs_a_default_reverberation_time(lossless):
    assert certify(lossless)["verdict"] == "marginally-stable"
    with pytest.raises(AdacError, match=r"controls\.rt60\.default: .*lossless.*default"):
        adac.json_to_faust(lossless, {"rt60": True})


def test_rt60_turns_a_lossless_prototype_into_a_certified_reverb(lossless):
    controls = {"rt60": {"default": 1.0}}
    c = normalise_controls(controls, lossless)["rt60"]
    assert (c["default"], c["min"], c["max"], c["trained"]) == (1.0, 0.25, 2.0, None)
    cert = certify(lossless, controls)
    assert cert["verdict"] == "certified-stable", cert["loops"]
    gate(cert)
    json.dumps(cert, allow_nan=False)  # no infinity in the certificate
    code = adac.json_to_faust(lossless, controls)
    for target in (0.5, 1.0, 2.0):
        y = render_impulse_responses(code, FS, int(FS * 4 * target), params={"/adac/rt60": target})
        assert decay_time(y, FS) == pytest.approx(target, rel=0.05), target


def test_rt60_still_refuses_a_growing_loop():
    growing = adac.flamo_to_json(fdn(8, t60=-2.0, attenuation="none", n_in=1, n_out=1, direct=False), FS)
    for call in (lambda: certify(growing, {"rt60": {"default": 1.0}}),
                 lambda: adac.json_to_faust(growing, {"rt60": {"default": 1.0}})):
        with pytest.raises(AdacError, match="controls.rt60"):
            call()


# --- unstable filter sections ------------------------------------------------------------------------------------

def _sos_module(b, a):
    module = dsp.parallelSOSFilter(size=(1,), n_sections=1, fs=FS, **CPU)
    module.assign_value(torch.tensor([[[b[0]], [b[1]], [b[2]], [1.0], [a[0]], [a[1]]]], dtype=torch.float32))
    return module


@pytest.mark.parametrize("in_loop", [False, True])
def test_geq_designed_unstable_at_44k1_is_refused_at_compile_time(in_loop):
    """FLAMO's octave-band GEQ at 44.1 kHz designs sections with poles of radius ~1.06: refused, naming them."""
    geq = dsp.parallelGEQ(size=(2,), octave_interval=1, fs=44100, **CPU)
    model = system.Shell(system.Recursion(delay_lines([100, 113], fs=44100), system.Series(geq, line_gains([0.5, 0.5])))
                         if in_loop else geq)
    with pytest.raises(AdacError, match=r"core.*parallelGEQ.*fs = 44100 Hz.*section \d+ .*pole of radius 1\.0\d+.*(fs|band)"):
        adac.flamo_to_faust(model, 44100)


def test_a_loop_with_an_unstable_section_is_not_reported_certified():
    model = system.Shell(system.Recursion(delay_lines([100]), system.Series(_sos_module([0.1, 0.0, 0.0], [0.0, -1.0001]),
                                                                         line_gains([0.5]))))
    cert = certify(adac.flamo_to_json(model, FS))
    assert cert["verdict"] == "unstable"
    assert [loop["verdict"] for loop in cert["loops"]] == ["unstable"]


def test_a_section_outside_any_loop_is_part_of_the_verdict():
    model = system.Shell(system.Series(_sos_module([1.0, 0.0, 0.0], [0.0, -1.0001]),
                                       system.Recursion(delay_lines([100]), line_gains([0.5]))))
    cert = certify(adac.flamo_to_json(model, FS))
    assert [loop["verdict"] for loop in cert["loops"]] == ["certified-stable"]
    assert cert["verdict"] == "unstable" and cert["unstable_sections"][0]["path"] == "core.0"
    with pytest.raises(StabilityError, match="unstable.*core.0 section 0"):
        gate(cert)


# --- delay-free loops: one answer from certify and emit ------------------------------------------------------------

def test_zero_delay_loop_is_refused_by_certify_and_emit_alike():
    lines = dsp.parallelDelay(size=(1,), max_len=10, isint=True, fs=FS, **CPU)
    set_delays_samples(lines, [0])
    model = system.Shell(system.Recursion(lines, line_gains([0.5])))
    ir = adac.flamo_to_json(model, FS)
    messages = []
    for call in (lambda: adac.json_to_faust(ir), lambda: certify(ir)):
        with pytest.raises(AdacError, match="delay-free loop") as info:
            call()
        messages.append(str(info.value))
    assert messages[0] == messages[1]


# --- delay lengths and total delay memory are bounded -------------------------------------------------------------

def _long_delay_ir(samples, lines=1):
    ir = adac.flamo_to_json(system.Shell(system.Recursion(delay_lines([100 + i for i in range(lines)]),
                                                          line_gains([0.5] * lines))), FS)
    ir = copy.deepcopy(ir)
    ir["graph"]["feedforward"]["samples"] = [float(samples + i) for i in range(lines)]
    return ir


@pytest.mark.parametrize("controls", [None, {"rt60": True}])
def test_a_huge_delay_is_refused_with_a_clear_error(controls):
    ir = _long_delay_ir(1e9)
    for call in (lambda: adac.json_to_faust(ir, controls), lambda: certify(ir, controls)):
        with pytest.raises(AdacError, match=r"core.feedforward.*1e\+09 samples.*limit.*delay_limits"):
            call()


def test_total_delay_memory_is_bounded_and_the_limits_can_be_raised():
    ir = _long_delay_ir(3_000_000, lines=16)  # each line below the per-line limit, 48M samples together
    with pytest.raises(AdacError, match=r"total delay memory.*limit.*delay_limits"):
        adac.json_to_faust(ir)
    limits = {"max_samples": 4_000_000, "max_memory": 64_000_000}
    assert "@(2999999)" in adac.json_to_faust(ir, delay_limits=limits)
    assert certify(ir, delay_limits=limits)["verdict"] == "certified-stable"
    with pytest.raises(AdacError, match="2147483647"):  # FAUST's delay lengths are 32-bit integers
        adac.json_to_faust(_long_delay_ir(3e9), delay_limits={"max_samples": 4_000_000_000})


def test_the_manifest_carries_the_delay_limits(tmp_path):
    from adac.build.manifest import load_manifest, step_parameters
    from pathlib import Path
    src = Path(__file__).resolve().parent.parent / "plugins" / "AdacFDN" / "plugin.yaml"
    text = open(src).read() + "\ndelay_limits: {max_samples: 10000000, max_memory: 100000000}\n"
    folder = tmp_path / "AdacFDN"
    folder.mkdir()
    (folder / "plugin.yaml").write_text(text)
    manifest = load_manifest(folder / "plugin.yaml")
    limits = {"max_samples": 10000000, "max_memory": 100000000}
    assert manifest.codegen_options["delay_limits"] == limits  # what the .dsp and certificate steps pass
    assert step_parameters(manifest)["dsp"]["delay_limits"] == limits
    assert step_parameters(manifest)["cert"]["delay_limits"] == limits
    (folder / "plugin.yaml").write_text(open(src).read() + "\ndelay_limits: {max_samples: 3000000000}\n")
    with pytest.raises(AdacError, match="delay_limits"):
        load_manifest(folder / "plugin.yaml")


# --- checkpoints with complex tensors -------------------------------------------------------------------------------

def test_a_checkpoint_with_complex_tensors_is_refused(tmp_path):
    from types import SimpleNamespace
    from adac.frontend.flamo import load_model
    (tmp_path / "factory.py").write_text(
        "from flamo.processor import dsp, system\n"
        "def build(fs):\n    return system.Shell(dsp.parallelGain(size=(2,), device='cpu'))\n")
    state = {"_Shell__core.param": torch.tensor([0.5 + 0.25j, 1.0 + 0j])}
    torch.save(state, tmp_path / "model.pt")
    manifest = SimpleNamespace(path=tmp_path / "plugin.yaml", folder=tmp_path, name="Cx", factory="factory.py:build",
                               checkpoint=tmp_path / "model.pt", fs=FS, allow_pickle=False)
    with pytest.raises(AdacError, match=r"model.pt.*complex.*_Shell__core.param"):
        load_model(manifest)
    torch.save({"_Shell__core.param": torch.tensor([0.5, 1.0])}, tmp_path / "model.pt")
    assert load_model(manifest).get_core().param.tolist() == [0.5, 1.0]


# --- verify: the reference is independent of the model's own nfft, and the model is left as it was ----------------

def _delays_model(requires_grad=False):
    delays = dsp.parallelDelay(size=(2,), max_len=64, isint=True, requires_grad=requires_grad, fs=FS, **CPU)
    if requires_grad:
        delays.map = lambda x: x  # the user's own map (FLAMO's default for a trained delay is softplus)
    set_delays_samples(delays, [10, 20])
    return system.Shell(system.Series(delays, line_gains([0.5, -0.25])))


def _snapshot(model):
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    maps = {name: m.__dict__.get("map") for name, m in model.named_modules() if isinstance(m, dsp.DSP)}
    settings = {name: (m.nfft, m.param.dtype, float(m.alias_decay_db)) for name, m in model.named_modules()
                if isinstance(m, dsp.DSP)}
    return state, maps, settings


def test_verify_with_the_models_own_nfft():
    model = _delays_model()
    own = next(m for m in model.modules() if isinstance(m, dsp.DSP)).nfft
    report = adac.verify(model, FS, n_samples=own // 4, nfft=own, precisions=("double",))
    assert report["double"].max_relative_error < 1e-9


def test_verify_does_not_mutate_the_users_model():
    model = _delays_model(requires_grad=True)
    state, maps, settings = _snapshot(model)
    report = adac.verify(model, FS, n_samples=256, nfft=4096, precisions=("double",), keep_signals=True)
    peaks = np.argmax(np.abs(report.reference[:, :, :]), axis=0)
    assert peaks[0, 0] == 10 and peaks[1, 1] == 20, peaks
    assert report["double"].max_relative_error < 1e-9
    after_state, after_maps, after_settings = _snapshot(model)
    assert after_maps == maps and after_settings == settings
    assert state.keys() == after_state.keys()
    assert all(torch.equal(state[k], after_state[k]) for k in state)


# --- the round trip keeps a Shell's layers -------------------------------------------------------------------------

def _layered_shell():
    core = fdn(4, t60=0.1, n_in=1, n_out=1).get_core()
    core.set_alias_decay_db(20.0)
    return system.Shell(core, input_layer=dsp.FFTAntiAlias(nfft=2048, alias_decay_db=20.0, **CPU),
                        output_layer=dsp.iFFTAntiAlias(nfft=2048, alias_decay_db=20.0, **CPU))


def test_round_trip_keeps_anti_alias_layers():
    model = _layered_shell()
    ir = adac.flamo_to_json(model, FS)
    rebuilt = adac.json_to_flamo(ir)
    for get in ("get_inputLayer", "get_outputLayer"):
        a, b = getattr(model, get)(), getattr(rebuilt, get)()
        assert type(a) is type(b) and (a.nfft, a.norm, a.alias_decay_db) == (b.nfft, b.norm, b.alias_decay_db)
    assert json.dumps(adac.flamo_to_json(rebuilt, FS)) == json.dumps(ir)
    x = torch.randn(1, 2048, 1)
    with torch.no_grad():
        assert torch.allclose(model(x), rebuilt(x), rtol=0, atol=1e-6 * float(model(x).abs().max()))


def test_a_custom_transform_layer_is_refused_by_the_round_trip():
    model = system.Shell(line_gains([0.5]), input_layer=dsp.Transform(lambda x: 2 * x))
    ir = adac.flamo_to_json(model, FS)
    with pytest.raises(AdacError, match=r"input layer.*Transform.*cannot"):
        adac.json_to_flamo(ir)


def test_accurate_geq_with_custom_band_edges_says_what_is_missing():
    from flamo_models import _accurate_geq
    geq = _accurate_geq(dsp.parallelAccurateGEQ(size=(2,), start_freq=62.5, end_freq=8000.0, fs=FS, **CPU))
    ir = adac.flamo_to_json(system.Shell(geq), FS)
    with pytest.raises(AdacError, match=r"core: parallelAccurateGEQ .*band edges.*start_freq.*end_freq.*not stored") as info:
        adac.json_to_flamo(ir)
    assert "custom map" not in str(info.value)


def test_the_pre_delay_buffer_is_bounded_too():
    ir = adac.flamo_to_json(shell(line_gains([0.5])), FS)
    with pytest.raises(AdacError, match=r"controls.pre_delay.max: .*above the limit"):
        adac.json_to_faust(ir, {"pre_delay": {"max": 1e9}})
    assert "adac_pre_delay" in adac.json_to_faust(ir, {"pre_delay": {"max": 1000}})
