"""The compiled FAUST, rendered for real, against FLAMO's own response, sample by sample.

Reference: FLAMO in float64 with alias_decay_db = 0 and nfft >= 4x the compared
length; adac.verify refuses an nfft whose last quarter still carries energy, so
circular time aliasing cannot hide or fake an error.
"""
import copy

import numpy as np
import pytest
import torch
from flamo.processor import dsp, system

import adac
from adac.frontend.flamo.reference import flamo_reference
from adac.common.errors import AdacError
from adac.backends.faust.render import render_impulse_responses
from conftest import DOUBLE_TOL, FLOAT32_TOL
from flamo_models import CPU, FS, delay_lines, line_gains, SINGLE_KINDS, fdn, gains_for_t60, set_delays_samples, single

pytestmark = pytest.mark.usefixtures("faust_available")

# Filters with low-frequency bands ring longer: a longer FFT keeps the reference alias-free.
NFFT = {"parallelPEQ": 1 << 18, "PEQ": 1 << 17}


def assert_equivalent(report, float32_tol=FLOAT32_TOL, double_tol=DOUBLE_TOL):
    assert report["float32"].peak > 0, "a silent model proves nothing"
    assert report["float32"].max_relative_error <= float32_tol, report.summary()
    assert report["double"].max_relative_error <= double_tol, report.summary()


@pytest.mark.parametrize("kind", SINGLE_KINDS)
def test_every_module_kind_renders_like_flamo(kind):
    report = adac.verify(single(kind), FS, 2048, nfft=NFFT.get(kind, 1 << 15))
    assert_equivalent(report)


def test_full_fdn_eight_lines_orthogonal_attenuation_direct_path():
    model = fdn(8, t60=0.15, n_in=1, n_out=2, attenuation="biquad", matrix="orthogonal", direct=True)
    report = adac.verify(model, FS, 24000, nfft=1 << 17)
    assert report["double"].errors.shape == (2, 1)
    assert_equivalent(report)


@pytest.mark.parametrize("matrix", ["householder", "hadamard"])
def test_fdn_sixteen_lines_structured_matrix(matrix):
    model = fdn(16, t60=0.1, n_in=1, n_out=1, attenuation="none", matrix=matrix, direct=False)
    assert_equivalent(adac.verify(model, FS, 12000, nfft=1 << 16))


def test_two_in_two_out_all_four_paths():
    model = fdn(8, t60=0.1, n_in=2, n_out=2, attenuation="biquad", direct=True)
    report = adac.verify(model, FS, 12000, nfft=1 << 16)
    assert report["double"].errors.shape == (2, 2)
    for precision, tol in (("float32", FLOAT32_TOL), ("double", DOUBLE_TOL)):
        for path in report[precision].paths():
            assert path["relative_error"] <= tol, (precision, path)
    # each path really carries signal: the comparison is not vacuous
    reference, _ = flamo_reference(model, 12000, 1 << 16)
    assert np.all(np.abs(reference).max(axis=0) > 1e-3)


def _loop(forward, backward):
    return system.Recursion(forward, backward)






def _matrix(n, seed=1):
    torch.manual_seed(seed)
    return dsp.Matrix(size=(n, n), matrix_type="orthogonal", **CPU)


def test_delays_in_series_inside_the_loop():
    # two delay stages in the feedforward path, none in the feedback path: one sample is taken from one of them
    forward = system.Series(delay_lines([20, 31]), line_gains([1.0, 1.0]), delay_lines([7, 1]))
    model = system.Shell(_loop(forward, system.Series(_matrix(2), line_gains([0.8, 0.7]))))
    assert_equivalent(adac.verify(model, FS, 4000, nfft=1 << 15))


def test_delays_only_in_the_feedback_path():
    forward = line_gains([0.9, 0.8, 0.7])
    backward = system.Series(_matrix(3), delay_lines([13, 17, 23]))
    assert_equivalent(adac.verify(system.Shell(_loop(forward, backward)), FS, 4000, nfft=1 << 15))


def test_unit_delays_only():
    # every loop path is exactly one sample long: nothing left after compensation
    model = system.Shell(_loop(line_gains([0.5, -0.3]), system.Series(_matrix(2), delay_lines([1, 1]))))
    assert_equivalent(adac.verify(model, FS, 512, nfft=1 << 12))


def test_nested_loops():
    # a loop whose feedforward path holds another loop (a comb inside a comb), and a loop in a feedback path
    inner = _loop(delay_lines([11, 5]), line_gains([0.5, -0.4]))
    outer = _loop(system.Series(delay_lines([29, 37]), inner), system.Series(_matrix(2), line_gains([0.4, 0.5])))
    assert_equivalent(adac.verify(system.Shell(outer), FS, 6000, nfft=1 << 15))
    in_feedback = _loop(delay_lines([41, 43]), system.Series(line_gains([0.5, 0.5]), _loop(delay_lines([3, 4]), line_gains([0.3, 0.2]))))
    assert_equivalent(adac.verify(system.Shell(in_feedback), FS, 6000, nfft=1 << 15))


def test_several_loops_in_one_model():
    def comb(samples, gain, seed):
        return _loop(delay_lines(samples), system.Series(_matrix(2, seed=seed), line_gains([gain, gain])))

    in_series = system.Series(comb([19, 23], 0.6, 3), comb([7, 9], 0.5, 4))
    side_by_side = system.Parallel(comb([11, 29], 0.5, 5), comb([31, 5], 0.4, 6), sum_output=False)
    model = system.Shell(system.Series(in_series, side_by_side, dsp.Gain(size=(2, 4), **CPU)))
    assert_equivalent(adac.verify(model, FS, 6000, nfft=1 << 15))


def test_delay_free_loop_is_refused():
    model = system.Shell(_loop(line_gains([0.5]), line_gains([0.5])))
    with pytest.raises(AdacError, match="delay-free loop"):
        adac.flamo_to_faust(model, FS)


def test_an_off_by_one_delay_is_caught():
    """The comparison fails when the compiled code is wrong by a single sample."""
    model = fdn(8, t60=0.1, attenuation="none", direct=False)
    ir = adac.flamo_to_json(model, FS)
    broken = copy.deepcopy(ir)
    loop = broken["graph"]["children"][1]
    loop["feedforward"]["samples"][3] += 1
    reference, _ = flamo_reference(model, 4000, 1 << 15)
    right = render_impulse_responses(adac.json_to_faust(ir), FS, 4000, double=True)
    wrong = render_impulse_responses(adac.json_to_faust(broken), FS, 4000, double=True)
    peak = np.abs(reference).max()
    assert np.abs(right - reference).max() <= DOUBLE_TOL * peak
    assert np.abs(wrong - reference).max() > 1e-2 * peak


def test_reference_refuses_an_nfft_that_aliases():
    model = fdn(8, t60=0.5, attenuation="none", direct=False)
    with pytest.raises(AdacError, match="has not decayed"):
        flamo_reference(model, 2048, nfft=4096)


def test_trainable_delays_unit_and_own_fs():
    """Delays in seconds through softplus, a unit of 1 and a module fs of 16 kHz: effective values come from FLAMO."""
    torch.manual_seed(0)
    lines = dsp.parallelDelay(size=(2,), max_len=100, isint=True, unit=1, fs=16000, requires_grad=True, **CPU)
    raw = torch.log(torch.expm1(torch.tensor([37.0, 53.0]) / 16000))  # softplus^-1 of the seconds
    lines.assign_value(raw)
    model = system.Shell(_loop(lines, system.Series(_matrix(2), line_gains([0.7, 0.7]))))
    ir = adac.flamo_to_json(model, 16000)
    assert ir["graph"]["feedforward"]["samples"] == [37.0, 53.0]
    assert_equivalent(adac.verify(model, 16000, 3000, nfft=1 << 14))


def test_gain_delay_in_a_loop():
    torch.manual_seed(2)
    lines = dsp.parallelGainDelay(size=(3,), max_len=60, isint=True, fs=FS, **CPU)
    with torch.no_grad():
        lines.param[0] = torch.tensor(gains_for_t60([40, 50, 60], 0.05))
        lines.param[1] = lines.sample2s(torch.tensor([41.0, 53.0, 59.0]))
    model = system.Shell(_loop(lines, _matrix(3)))
    assert_equivalent(adac.verify(model, FS, 4000, nfft=1 << 15))


def test_verify_from_the_ir_with_long_delays_and_a_long_tail():
    """The IR path rebuilds the model in float64; a float32 frequency grid would show as a 1e-6 floor."""
    model = fdn(8, t60=0.6, delays=[809, 877, 937, 1049, 1151, 1249, 1373, 1499], n_in=2, n_out=2)
    ir = adac.flamo_to_json(model, FS)
    report = adac.verify(ir, n_samples=96000, nfft=1 << 19)
    assert_equivalent(report)
