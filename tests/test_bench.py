"""The benchmarks' own pieces stay runnable: their baseline (the naive emission) realises the same model.

bench/ is not run by the suite (its figures need a quiet machine), but what it compares must be right: the naive
emission (dense matrix sums, no gain folding) has to render the same impulse response as adac's emission, or the
ratios bench/run.py prints compare different reverbs.
"""
import numpy as np
import pytest

import adac
from adac.backends.faust.render import render_impulse_responses
from bench.naive import naive_faust
from conftest import DOUBLE_TOL
from flamo_models import fdn

FS = 48000


@pytest.mark.parametrize("matrix", ["orthogonal", "householder", "hadamard"])
def test_the_naive_emission_is_the_same_model(faust_available, matrix):
    ir = adac.flamo_to_json(fdn(8, matrix=matrix), FS)
    naive, emitted = naive_faust(ir), adac.json_to_faust(ir)
    assert naive != emitted  # a different realisation (no folding, dense sums)...
    reference = render_impulse_responses(emitted, FS, 4000, double=True)
    rendered = render_impulse_responses(naive, FS, 4000, double=True)
    peak = np.abs(reference).max()
    assert peak > 0
    assert np.abs(rendered - reference).max() <= DOUBLE_TOL * peak  # ...of the same model


def test_the_benchmark_driver_imports():
    import bench.run  # noqa: F401  (it imports the library's emission and FLAMO builders by name)
