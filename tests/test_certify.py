"""Stability certificate: one hand-built case per verdict, including one a coarse grid certifies wrongly."""
import json
import math

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system

import adac
from adac.certify import bound, certify, gate, write_certificate
from adac.errors import StabilityError
from adac.render import render_impulse_responses
from adac.response import Realisation
from flamo_models import CPU, FS, delay_lines, line_gains, fdn, set_delays_samples


def _loop(feedforward, feedback):
    return system.Shell(system.Recursion(feedforward, feedback))






def _sos(b, a):
    module = dsp.parallelSOSFilter(size=(1,), n_sections=1, fs=FS, **CPU)
    module.assign_value(torch.tensor([[[b[0]], [b[1]], [b[2]], [1.0], [a[0]], [a[1]]]], dtype=torch.float32))
    return module


def narrow_resonance_loop(delay=1000, peak_gain=1.01, grid=1024):
    """A `delay`-sample loop through a narrow resonator (pole radius 1 - 5e-4).

    Its peak sits at w0 = 2 pi 10 / delay, where the loop phase is a multiple of
    2 pi, and halfway between two points of a `grid`-point uniform grid. With a
    peak loop gain of 1.01 the closed loop has a pole of modulus 1.0000033
    (measured below from the render): x100 in 30 s at 48 kHz.
    """
    w0 = 2 * math.pi * 10 / delay
    assert abs((w0 / (math.pi / (grid - 1))) % 1 - 0.5) < 0.1  # between two grid points
    r = 1 - 5e-4
    a = [-2 * r * math.cos(w0), r * r]
    z = np.exp(-1j * w0)
    c = peak_gain / abs((1 - z * z) / (1 + a[0] * z + a[1] * z * z))
    return _loop(delay_lines([delay]), _sos([c, 0.0, -c], a))


def test_certified_stable_fdn_with_attenuation_filters():
    cert = certify(adac.flamo_to_json(fdn(8, t60=0.5), FS))
    assert cert["verdict"] == "certified-stable"
    loop = cert["loops"][0]
    assert 0 < loop["margin"] < 0.2 and loop["max_bound"] < 1
    # the filter is bounded by its own peak gain, not counted as 1
    assert any(e["kind"] == "sos" and e["max_norm"] != 1.0 for e in loop["elements"])


@pytest.mark.parametrize("matrix", ["orthogonal", "householder", "hadamard"])
def test_lossless_loop_is_marginally_stable(matrix):
    model = fdn(8, attenuation="none", matrix=matrix, t60=1e12, direct=False)
    cert = certify(adac.flamo_to_json(model, FS))
    assert cert["verdict"] == "marginally-stable", cert["loops"][0]
    gate(cert, strict=True)  # marginal loops are exported


def test_loop_gain_above_one_is_not_certified():
    cert = certify(adac.flamo_to_json(_loop(delay_lines([50]), line_gains([1.01])), FS))
    assert cert["verdict"] == "not-certified"
    assert cert["loops"][0]["max_bound"] == pytest.approx(1.01, rel=1e-6)
    with pytest.raises(StabilityError, match=r"not-certified.*loop core: bound 1\.0099999.*margin -0\.01"):
        gate(cert)
    gate(cert, strict=False)


def test_unstable_filter_section():
    model = system.Shell(_sos([1.0, 0.0, 0.0], [0.0, -1.0001]))  # poles at +-1.00005
    cert = certify(adac.flamo_to_json(model, FS))
    assert cert["verdict"] == "unstable"
    assert cert["unstable_sections"][0]["pole_modulus"] == pytest.approx(math.sqrt(1.0001), rel=1e-6)
    with pytest.raises(StabilityError, match="unstable.*pole of modulus 1.00005"):
        gate(cert)


def test_nested_loop_that_cannot_be_bounded_is_indeterminate():
    inner = system.Recursion(delay_lines([7]), line_gains([1.0]))  # lossless inner comb: unbounded closed loop
    model = _loop(system.Series(delay_lines([31]), inner), line_gains([0.5]))
    cert = certify(adac.flamo_to_json(model, FS))
    assert cert["verdict"] == "indeterminate"
    outer = next(loop for loop in cert["loops"] if loop["path"] == "core")
    assert outer["verdict"] == "indeterminate" and "core.feedforward.1" in outer["reason"]
    with pytest.raises(StabilityError, match="indeterminate"):
        gate(cert)


def test_narrow_resonance_between_grid_points():
    """Pole modulus 1.0000033: a 1024-point grid with a 1e-4 tolerance passes it; it grows x100 in 30 s."""
    model = narrow_resonance_loop()
    ir = adac.flamo_to_json(model, FS)
    real = Realisation()
    coarse = np.linspace(0, math.pi, 1024)
    loop = ir["graph"]
    coarse_bound = (bound(loop["feedforward"], coarse, real, True) * bound(loop["feedback"], coarse, real, True)).max()
    assert coarse_bound < 1 - 1e-4  # the trap: a coarse grid would call it stable
    cert = certify(ir)
    assert cert["verdict"] == "not-certified"
    assert cert["loops"][0]["max_bound"] > 1
    # and it really is unstable: the compiled DSP, rendered for 31 s, grows about x100 in 30 s
    y = render_impulse_responses(adac.json_to_faust(ir), FS, 31 * FS, double=True)[:, 0, 0]
    envelope = [math.log(np.abs(y[i * FS:(i + 1) * FS]).max()) for i in range(5, 31)]
    pole_modulus = math.exp(np.polyfit(np.arange(5, 31) * FS, envelope, 1)[0])
    assert pole_modulus == pytest.approx(1.0000033, abs=3e-7)
    assert pole_modulus ** (30 * FS) > 50


def test_certificate_records_versions_grid_and_is_written_atomically(tmp_path):
    ir = adac.flamo_to_json(fdn(4), FS)
    cert = write_certificate(ir, tmp_path / "m.cert.json")
    on_disk = json.loads((tmp_path / "m.cert.json").read_text())
    assert on_disk == cert
    assert cert["adac_version"] == adac.__version__ and cert["ir_version"] == ir["version"]
    assert cert["precision"] == "float32" and cert["grid"]["points"] > 4097 - 1
    assert [p.name for p in tmp_path.iterdir()] == ["m.cert.json"]
