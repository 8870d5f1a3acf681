"""Stability certificate: one hand-built case per verdict, including one a coarse grid certifies wrongly."""
import json
import math

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system

import adac
from adac.certificate import StabilityWarning, bound, certify, gate, write_certificate
from adac.common.errors import SchemaError, StabilityError
from adac.common.schema import check_schema
from adac.backends.faust.render import render_impulse_responses
from adac.analysis.response import Realisation
from flamo_models import CPU, FS, delay_lines, line_gains, fdn, set_delays_samples


def _loop(feedforward, feedback):
    return system.Shell(system.Recursion(feedforward, feedback))


def _window_peaks(y, fs=FS, window=0.1):
    """Peak |y| of consecutive windows (of all paths)."""
    n = int(window * fs)
    y = np.abs(y.reshape(y.shape[0], -1)).max(axis=1)
    return np.array([y[i:i + n].max() for i in range(0, len(y) - n + 1, n)])


def _sos(b, a):
    module = dsp.parallelSOSFilter(size=(1,), n_sections=1, fs=FS, **CPU)
    module.assign_value(torch.tensor([[[b[0]], [b[1]], [b[2]], [1.0], [a[0]], [a[1]]]], dtype=torch.float32))
    return module


def narrow_resonance_loop(delay=1000, peak_gain=1.01, grid=1024, radius=1 - 5e-4):
    """A `delay`-sample loop through a narrow resonator (pole radius 1 - 5e-4).

    Its peak sits at w0 = 2 pi 10 / delay, where the loop phase is a multiple of
    2 pi, and halfway between two points of a `grid`-point uniform grid. With a
    peak loop gain of 1.01 the closed loop has a pole of modulus 1.0000033
    (measured below from the render): x100 in 30 s at 48 kHz.
    """
    w0 = 2 * math.pi * 10 / delay
    assert abs((w0 / (math.pi / (grid - 1))) % 1 - 0.5) < 0.1  # between two grid points
    r = radius
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


def test_certified_loop_decays_when_rendered():
    ir = adac.flamo_to_json(fdn(8, t60=0.3), FS)
    assert certify(ir)["verdict"] == "certified-stable"
    gate(certify(ir))  # silent
    peaks = _window_peaks(render_impulse_responses(adac.json_to_faust(ir), FS, FS))
    assert peaks[-1] < 1e-3 * peaks[0]  # 0.9 s of a 0.3 s T60: about -60 dB * 3


@pytest.mark.parametrize("matrix", ["orthogonal", "householder", "hadamard"])
def test_lossless_loop_is_marginally_stable(matrix):
    model = fdn(8, attenuation="none", matrix=matrix, t60=1e12, direct=False)
    ir = adac.flamo_to_json(model, FS)
    cert = certify(ir)
    assert cert["verdict"] == "marginally-stable", cert["loops"][0]
    assert abs(cert["loops"][0]["margin"]) <= 1e-6
    with pytest.warns(StabilityWarning, match="marginally-stable"):
        gate(cert, strict=True)  # marginal loops are exported, with a warning
    if matrix == "orthogonal":  # observable: the render neither grows nor decays (2 s, float32)
        peaks = _window_peaks(render_impulse_responses(adac.json_to_faust(ir), FS, 2 * FS))[2:]
        assert 0.5 < peaks[-1] / peaks[0] < 2 and peaks.max() < 2 * peaks.min()


def test_loop_gain_above_one_is_not_certified():
    ir = adac.flamo_to_json(_loop(delay_lines([50]), line_gains([1.01])), FS)
    cert = certify(ir)
    assert cert["verdict"] == "not-certified"
    assert cert["loops"][0]["max_bound"] == pytest.approx(1.01, rel=1e-6)
    with pytest.raises(StabilityError, match=r"not-certified.*loop core: bound 1\.0099999.*margin -0\.01"):
        gate(cert)
    with pytest.warns(StabilityWarning, match="strict is false"):
        gate(cert, strict=False)
    # observable: the compiled loop grows by 1.01 every 50 samples
    y = render_impulse_responses(adac.json_to_faust(ir), FS, 5001, double=True)[:, 0, 0]
    assert y[5000] == pytest.approx(1.01 ** 99, rel=1e-6)  # y[n] = x[n - 50] + 1.01 y[n - 50]


def test_small_margin_is_still_certified():
    cert = certify(adac.flamo_to_json(_loop(delay_lines([50]), line_gains([0.9999])), FS))
    assert cert["verdict"] == "certified-stable"
    assert cert["loops"][0]["margin"] == pytest.approx(1e-4, rel=1e-3)


def test_float32_rounding_decides():
    """A gain of 1 + 1e-8 is exactly 1.0 in float32 (as emitted): marginal; not-certified in a -double build."""
    ir = adac.flamo_to_json(_loop(delay_lines([50]), line_gains([1.0])), FS)
    ir["graph"]["feedback"]["gains"] = [1.0 + 1e-8]
    assert certify(ir)["verdict"] == "marginally-stable"
    assert certify(ir, precision="float64")["verdict"] == "not-certified"


def test_unstable_filter_section():
    model = system.Shell(_sos([1.0, 0.0, 0.0], [0.0, -1.0001]))  # poles at +-1.00005
    cert = certify(adac.flamo_to_json(model, FS))
    assert cert["verdict"] == "unstable"
    assert cert["unstable_sections"][0]["pole_modulus"] == pytest.approx(math.sqrt(1.0001), rel=1e-6)
    with pytest.raises(StabilityError, match="unstable.*pole of modulus 1.00005"):
        gate(cert)
    # observable: 1 / (1 - 1.0001 z^-2) grows as 1.0001^(n/2), x11 in one second
    y = render_impulse_responses(adac.json_to_faust(adac.flamo_to_json(model, FS)), FS, FS + 1, double=True)[:, 0, 0]
    assert y[FS] == pytest.approx(float(np.float32(1.0001)) ** (FS // 2), rel=1e-6) and y[FS] > 10


def test_unstable_filter_inside_a_certified_looking_loop():
    """A section with poles at +-1.00005 in the feedback path: the unit-circle bound alone would miss it."""
    model = _loop(delay_lines([100]), system.Series(_sos([0.1, 0.0, 0.0], [0.0, -1.0001]), line_gains([0.5])))
    cert = certify(adac.flamo_to_json(model, FS))
    assert cert["verdict"] == "unstable"
    with pytest.raises(StabilityError, match=r"unstable.*pole of modulus.*loop core"):
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


@pytest.mark.parametrize("mechanism", ["both", "pole angles only", "refinement only"])
def test_resonance_narrower_than_the_certificate_grid(mechanism, monkeypatch):
    """Bandwidth 4e-5 rad, peak between two points of the 4097-point grid: the uniform grid alone misses it
    (checked); pole angles in the grid or the local maximiser each find it."""
    import adac.certificate.stability as certify_module

    model = narrow_resonance_loop(delay=867, grid=1024, radius=1 - 2e-5)
    ir = adac.flamo_to_json(model, FS)
    loop = ir["graph"]
    uniform = np.linspace(0, math.pi, certify_module.UNIFORM_POINTS)
    real = Realisation()
    assert (bound(loop["feedforward"], uniform, real, True) * bound(loop["feedback"], uniform, real, True)).max() < 1
    if mechanism == "pole angles only":
        monkeypatch.setattr(certify_module, "REFINED_PEAKS", 0)
    if mechanism == "refinement only":
        monkeypatch.setattr(certify_module, "frequency_grid", lambda ir, real: uniform)
    cert = certify(ir)
    assert cert["verdict"] == "not-certified" and cert["loops"][0]["max_bound"] > 1.005, mechanism


def test_certificate_records_versions_grid_and_is_written_atomically(tmp_path):
    ir = adac.flamo_to_json(fdn(4), FS)
    cert = write_certificate(ir, tmp_path / "m.cert.json")
    on_disk = json.loads((tmp_path / "m.cert.json").read_text())
    assert on_disk == cert
    assert cert["adac_version"] == adac.__version__ and cert["ir_version"] == ir["version"]
    assert cert["precision"] == "float32" and cert["grid"]["points"] > 4097 - 1
    assert "minimize_scalar" in cert["grid"]["method"] and cert["grid"]["refined"] >= 1
    assert cert["loop_gamma"] == 1.0 and cert["controls"] is None
    loop = cert["loops"][0]
    assert loop["id"].startswith("n") and loop["path"] and 0 <= loop["worst_frequency_hz"] <= FS / 2
    assert [p.name for p in tmp_path.iterdir()] == ["m.cert.json"]
    # the schema is enforced: a certificate without a verdict is refused
    broken = dict(cert)
    del broken["verdict"]
    with pytest.raises(SchemaError, match="verdict"):
        check_schema(broken, "cert.schema.json", source="certificate")


def test_written_either_way_then_gated(tmp_path):
    ir = adac.flamo_to_json(_loop(delay_lines([50]), line_gains([1.01])), FS)
    cert = write_certificate(ir, tmp_path / "bad.cert.json")
    assert json.loads((tmp_path / "bad.cert.json").read_text())["verdict"] == "not-certified"
    with pytest.raises(StabilityError):
        gate(cert)


def test_adac_certify_is_the_function_whatever_is_imported_first():
    """adac.certify(ir) is the function and adac.certificate.gate(cert) the gate, whichever module is
    imported first (fresh interpreters): no module is also a function."""
    import subprocess
    import sys

    for first in ("import adac.build.steps", "import adac.certificate.stability", "pass"):
        code = (f"{first}\nimport adac, sys\nsys.path.insert(0, 'tests')\nfrom flamo_models import fdn, FS\n"
                "import adac.certificate\ng = adac.certificate.gate\ncert = adac.certify(adac.flamo_to_json(fdn(4), FS))\n"
                "g(cert)\nprint(cert['verdict'])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=str(__import__("pathlib").Path(__file__).parent.parent))
        assert out.stdout.strip() == "certified-stable", out.stderr
