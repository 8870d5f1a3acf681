"""Fractional delays: Lagrange realisation against FLAMO's ideal delay, per frequency band.

FLAMO's fractional delay is exp(-j w d) on the rfft grid: its time response is a
periodic sinc that never decays, so these tests compare frequency responses.
The bounds pinned below were measured (order 15, fs-independent, relative to
the response peak) and match the analytic Lagrange error of adac.ir.fractional.
"""
import numpy as np
import pytest
import torch
from flamo.processor import dsp, system

from adac.equivalence import band_errors
from adac.ir.fractional import DEFAULT_ORDER, lagrange, lagrange_band_errors
from flamo_models import CPU, FS, fdn, set_delays_samples

pytestmark = pytest.mark.usefixtures("faust_available")

# measured per band (fractions of Nyquist) for order 15, with headroom x2
ORDER15_BOUNDS = {(0.0, 0.25): 1e-7, (0.25, 0.5): 2.6e-3, (0.5, 0.75): 0.25}


def test_lagrange_taps():
    base, taps = lagrange(33.5, 15)
    assert base + 7.5 == pytest.approx(33.5)
    assert taps.sum() == pytest.approx(1.0, abs=1e-12)
    # an integral delay is reproduced exactly: a single unit tap
    base, taps = lagrange(40.0, 15)
    assert np.count_nonzero(np.abs(taps) > 1e-12) == 1


def test_error_falls_with_order_at_low_frequency():
    errors = [lagrange_band_errors(33.5, order)[0]["max_abs_error"] for order in (3, 7, 15)]
    assert errors[0] > errors[1] > errors[2]


def test_feedforward_fractional_delays_per_band():
    torch.manual_seed(0)
    lines = dsp.parallelDelay(size=(3,), max_len=100, isint=False, fs=FS, **CPU)
    set_delays_samples(lines, [10.25, 33.5, 57.8])
    bands = band_errors(system.Shell(lines), FS, 1 << 12, fractional_order=DEFAULT_ORDER)
    for band in bands:
        bound = ORDER15_BOUNDS.get(tuple(band["band"]))
        if bound is not None:
            assert band["max_relative_error"] <= bound, band
    # and the compiled error is the interpolator's, not something else: it matches the analytic error
    analytic = lagrange_band_errors(33.5, DEFAULT_ORDER)
    assert bands[1]["max_relative_error"] == pytest.approx(max(analytic[1]["max_abs_error"], 0), rel=0.5)


def test_fractional_delays_inside_an_fdn_loop():
    model = fdn(8, isint=False, delays=[101.3, 157.7, 199.5, 241.25, 283.9, 331.1, 379.6, 421.45],
                attenuation="none", direct=False, t60=0.1)
    bands = band_errors(model, FS, 1 << 15)
    assert bands[0]["max_relative_error"] <= 1e-7, bands[0]
    assert bands[1]["max_relative_error"] <= 5e-3, bands[1]
