"""FAUST code generation: names, literals, structures; the FAUST compiler accepts the output."""
import re
from collections import OrderedDict

import numpy as np
import pytest
import scipy.signal
import torch
from flamo.processor import dsp, system

import adac
from adac.common.errors import AdacError
from adac.backends.faust.emit import HELPERS, number
from adac.ir.sections import emitted_section, svf_parameters
from adac.backends.faust.render import faust_to_cpp, render_impulse_responses
from flamo_models import CPU, FS, fdn, set_delays_samples

pytestmark = pytest.mark.usefixtures("faust_available")


def _hostile_model():
    """Attribute names that are FAUST keywords or library prefixes."""
    lines = dsp.parallelDelay(size=(2,), max_len=40, isint=True, fs=FS, **CPU)
    set_delays_samples(lines, [17, 23])
    gains = dsp.parallelGain(size=(2,), **CPU)
    gains.assign_value(torch.tensor([0.5, 0.4]))
    loop = system.Recursion(lines, system.Series(OrderedDict(process=dsp.Matrix(size=(2, 2), matrix_type="orthogonal", **CPU),
                                                             ma=gains)))
    return system.Shell(system.Series(OrderedDict([("fi", dsp.Gain(size=(2, 1), **CPU)), ("de", loop),
                                                   ("with", dsp.Gain(size=(1, 2), **CPU))])))


def test_generated_names_are_unique_and_clear_of_faust_names():
    code = adac.flamo_to_faust(_hostile_model(), FS, name='My "Reverb"; process = 0;')
    definitions = re.findall(r"^(\w+) =", code, flags=re.M)
    assert len(definitions) == len(set(definitions))
    generated = [d for d in definitions if not d.startswith("adac_") and d != "process"]
    assert generated and all(re.fullmatch(r"n\d+_\w*", d) for d in generated)
    assert len(re.findall(r"^process =", code, flags=re.M)) == 1
    assert 'declare name "My _Reverb_; process _ 0;";' in code
    faust_to_cpp(code)  # the FAUST compiler accepts it
    assert adac.verify(_hostile_model(), FS, 2000, nfft=1 << 14)["double"].max_relative_error < 1e-9


def test_float_literals_round_trip():
    for value in (0.1, -1e-05, 3.0, 1.2345678901234567e-300, 2.5e+20):
        text = number(value)
        assert "." in text.split("e")[0]
        assert float(text) == value


def test_svf_realisation_has_the_sections_transfer_function():
    rng = np.random.default_rng(1)
    for _ in range(50):
        r, theta = rng.uniform(0.05, 0.999), rng.uniform(0, np.pi)
        b = rng.normal(size=3)
        section = [b[0], b[1], b[2], 1.0, -2 * r * np.cos(theta), r * r]
        a1c, a2c, g, c0, c1, c2 = svf_parameters(section)
        assert a2c == pytest.approx(g * a1c, rel=1e-15)
        k = (1 / a1c - 1) / g - g
        # the SVF outputs v0 (input), v1 = g(1-z^-2)/D, v2 = g^2(1+z^-1)^2/D with D its bilinear denominator
        d = np.array([1 + k * g + g * g, 2 * g * g - 2, 1 - k * g + g * g])
        num = c0 * d + c1 * g * np.array([1, 0, -1]) + c2 * g * g * np.array([1, 2, 1])
        w, h_svf = scipy.signal.freqz(num, d, worN=64)
        _, h_sec = scipy.signal.freqz(section[:3], section[3:], worN=64)
        assert np.allclose(h_svf, h_sec, rtol=1e-9, atol=1e-12)
    assert svf_parameters([1, 0, 0, 1, -2.0, 1.0]) is None  # double pole at z = 1: no SVF, direct form is used


def test_emitted_section_is_what_the_svf_code_computes():
    """emitted_section (the certificate's view of a section) against the adac_svf code itself, rendered in
    double with constants rounded to float32 as the float build stores them; and with double constants it
    gives back the section."""
    rng = np.random.default_rng(2)
    for _ in range(5):
        r, theta = rng.uniform(0.3, 0.99), rng.uniform(0.01, np.pi)
        section = [*rng.normal(size=3), 1.0, -2 * r * np.cos(theta), r * r]
        assert np.allclose(emitted_section(section, np.float64), section, rtol=1e-12, atol=1e-13)
        rounded = [float(np.float32(v)) for v in svf_parameters(section)]
        code = ('import("stdfaust.lib");\n' + HELPERS + "process = adac_svf(" + ", ".join(number(v) for v in rounded) + ");\n")
        rendered = render_impulse_responses(code, FS, 256, double=True)[:, 0, 0]
        impulse = np.zeros(256)
        impulse[0] = 1.0
        expected = scipy.signal.lfilter(*np.split(emitted_section(section, np.float32), 2), impulse)
        assert np.abs(rendered - expected).max() <= 1e-12 * np.abs(expected).max()


def test_unstable_section_still_compiles_with_direct_form():
    sos = dsp.parallelSOSFilter(size=(1,), n_sections=1, fs=FS, **CPU)
    sos.assign_value(torch.tensor([[[1.0], [0.0], [0.0], [1.0], [-2.0], [1.0]]]))
    code = adac.flamo_to_faust(system.Shell(sos), FS)
    assert "adac_biquad(" in code
    y = render_impulse_responses(code, FS, 8, double=True)[:, 0, 0]
    assert np.allclose(y, np.arange(1, 9))  # 1/(1 - z^-1)^2: a ramp, rendered exactly


def test_fractional_order_must_be_odd():
    ir = adac.flamo_to_json(fdn(4), FS)
    with pytest.raises(AdacError, match="odd"):
        adac.json_to_faust(ir, fractional_order=4)


def test_householder_is_emitted_rank_one():
    code = adac.flamo_to_faust(fdn(16, matrix="householder", attenuation="none", direct=False), FS)
    assert "ro.interleave(16, 2)" in code
    feedback = [line for line in code.splitlines() if line.startswith("n") and "feedback_0 =" in line][0]
    assert feedback.count("*(") <= 2 * 16 + 1  # O(N) multiplications, not N^2
